//! Who may call each RPC of the tickets service: roles from the caller's verified token,
//! any one of which suffices. Deny by default: a method without a row is refused to
//! everyone. README's permission table is this one.

use aftersales_platform::{
    audit,
    auth::roles::{ADMIN, AGENT, ANALYST, CARE, MANAGER, STOREFRONT, SUPERVISOR},
};

macro_rules! rpc {
    ($method:literal) => {
        concat!("/aftersales.tickets.v1.TicketService/", $method)
    };
}

macro_rules! desk {
    ($method:literal) => {
        concat!("/aftersales.tickets.v1.DeskService/", $method)
    };
}

/// RPC path → the roles that may call it.
pub const PERMISSIONS: &[(&str, &[&str])] = &[
    (
        rpc!("CreateTicket"),
        &[AGENT, SUPERVISOR, MANAGER, STOREFRONT],
    ),
    (
        rpc!("GetTicket"),
        &[AGENT, SUPERVISOR, MANAGER, ANALYST, CARE, STOREFRONT],
    ),
    (
        rpc!("ListTickets"),
        &[AGENT, SUPERVISOR, MANAGER, ANALYST, CARE, STOREFRONT],
    ),
    (rpc!("AddReply"), &[AGENT, SUPERVISOR, MANAGER]),
    (rpc!("ReleaseHeldReply"), &[SUPERVISOR, MANAGER]),
    (rpc!("ChangeStatus"), &[AGENT, SUPERVISOR, MANAGER]),
    (rpc!("Assign"), &[AGENT, SUPERVISOR, MANAGER]),
    (rpc!("SetSeverity"), &[SUPERVISOR, MANAGER]),
    // The agent working the ticket judges how hard it is to solve.
    (rpc!("SetComplexity"), &[AGENT, SUPERVISOR, MANAGER]),
    (rpc!("Escalate"), &[AGENT, SUPERVISOR, MANAGER]),
    (rpc!("ReopenTicket"), &[AGENT, SUPERVISOR, MANAGER, CARE]),
    (
        rpc!("GetSlaStatus"),
        &[AGENT, SUPERVISOR, MANAGER, ANALYST, CARE],
    ),
    (rpc!("UpsertSlaPolicy"), &[ADMIN]),
    (
        rpc!("ListSlaPolicies"),
        &[ADMIN, SUPERVISOR, MANAGER, ANALYST],
    ),
    (rpc!("UpsertBusinessCalendar"), &[ADMIN]),
    (
        rpc!("ListThread"),
        &[AGENT, SUPERVISOR, MANAGER, STOREFRONT],
    ),
    (rpc!("ListActivity"), &[AGENT, SUPERVISOR, MANAGER, ANALYST]),
    (rpc!("AddWatcher"), &[AGENT, SUPERVISOR, MANAGER]),
    (rpc!("RemoveWatcher"), &[AGENT, SUPERVISOR, MANAGER]),
    (rpc!("UpsertSupportGroup"), &[ADMIN]),
    (
        rpc!("ListSupportGroups"),
        &[ADMIN, AGENT, SUPERVISOR, MANAGER, ANALYST],
    ),
    (rpc!("UpsertAgent"), &[ADMIN]),
    (rpc!("ListAgents"), &[ADMIN, SUPERVISOR, MANAGER, ANALYST]),
    // Shift leaders keep their group's roster.
    (rpc!("UpsertShift"), &[ADMIN, SUPERVISOR, MANAGER]),
    (
        rpc!("ListShifts"),
        &[ADMIN, AGENT, SUPERVISOR, MANAGER, ANALYST],
    ),
    (
        rpc!("CheckCoverage"),
        &[ADMIN, SUPERVISOR, MANAGER, ANALYST],
    ),
    (rpc!("UpsertRoutingRule"), &[ADMIN]),
    (
        rpc!("ListRoutingRules"),
        &[ADMIN, SUPERVISOR, MANAGER, ANALYST],
    ),
    (rpc!("ClaimNext"), &[AGENT, SUPERVISOR, MANAGER]),
    (rpc!("ListQueue"), &[AGENT, SUPERVISOR, MANAGER, ANALYST]),
    // The complaint flow: the desk records, proposes, notes the customer's decision (given
    // by phone or chat) and schedules the remedy.
    (rpc!("RecordComplaint"), &[AGENT, SUPERVISOR, MANAGER]),
    (rpc!("ProposeSolution"), &[AGENT, SUPERVISOR, MANAGER]),
    (rpc!("DecideSolution"), &[AGENT, SUPERVISOR, MANAGER]),
    (rpc!("ScheduleRemedy"), &[AGENT, SUPERVISOR, MANAGER]),
    // The live desk: the desk's own streams.
    (desk!("WatchTicket"), &[AGENT, SUPERVISOR, MANAGER]),
    (desk!("WatchGroup"), &[AGENT, SUPERVISOR, MANAGER]),
    (audit::LIST_AUDIT_RECORDS, &[ADMIN]),
];

/// The RPCs every call of which is audited: SLA policy, calendar, team and routing
/// changes, and reading the trail.
pub const AUDITED: &[&str] = &[
    rpc!("UpsertSlaPolicy"),
    rpc!("UpsertBusinessCalendar"),
    rpc!("UpsertSupportGroup"),
    rpc!("UpsertAgent"),
    rpc!("UpsertShift"),
    rpc!("UpsertRoutingRule"),
    audit::LIST_AUDIT_RECORDS,
];

#[cfg(test)]
mod tests {
    use aftersales_platform::{audit, auth::Permissions};

    #[test]
    fn every_rpc_and_every_audited_one_has_its_row_and_no_row_is_stray() {
        let table = Permissions::table_problems(
            super::PERMISSIONS,
            super::AUDITED,
            aftersales_protos::FILE_DESCRIPTOR_SET,
            &[
                "aftersales.tickets.v1.TicketService",
                "aftersales.tickets.v1.DeskService",
                audit::SERVICE,
            ],
        );
        assert_eq!(table, Ok(()));
    }
}
