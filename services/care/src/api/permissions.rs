//! Who may call each RPC of the care service: roles from the caller's verified token,
//! any one of which suffices. Deny by default: a method without a row is refused to
//! everyone. README's permission table is this one.

use aftersales_platform::{
    audit,
    auth::roles::{ADMIN, AGENT, ANALYST, MANAGER, PII_READ, STOREFRONT, SUPERVISOR},
};

macro_rules! rpc {
    ($method:literal) => {
        concat!("/aftersales.care.v1.CareService/", $method)
    };
}

/// RPC path → the roles that may call it.
pub const PERMISSIONS: &[(&str, &[&str])] = &[
    (
        rpc!("UpsertCustomer"),
        &[AGENT, SUPERVISOR, MANAGER, STOREFRONT],
    ),
    (rpc!("GetCustomer"), &[AGENT, SUPERVISOR, MANAGER, PII_READ]),
    (
        rpc!("GetCustomerTimeline"),
        &[AGENT, SUPERVISOR, MANAGER, ANALYST],
    ),
    (rpc!("ListFollowUps"), &[AGENT, SUPERVISOR, MANAGER]),
    (rpc!("RecordFollowUp"), &[AGENT, SUPERVISOR, MANAGER]),
    (
        rpc!("RecordSurvey"),
        &[AGENT, SUPERVISOR, MANAGER, STOREFRONT],
    ),
    (
        rpc!("UpsertWarranty"),
        &[AGENT, SUPERVISOR, MANAGER, STOREFRONT],
    ),
    (rpc!("ListCareTasks"), &[AGENT, SUPERVISOR, MANAGER]),
    (rpc!("BroadcastNotice"), &[SUPERVISOR, MANAGER]),
    (rpc!("GetKpis"), &[ANALYST, SUPERVISOR, MANAGER]),
    (rpc!("GetQualityReport"), &[ANALYST, SUPERVISOR, MANAGER]),
    (rpc!("GetCostReport"), &[ANALYST, SUPERVISOR, MANAGER]),
    (rpc!("ExportCustomerData"), &[PII_READ]),
    (rpc!("EraseCustomer"), &[ADMIN]),
    (rpc!("UpsertTierRules"), &[ADMIN]),
    (rpc!("DeclareIncident"), &[SUPERVISOR, MANAGER]),
    (rpc!("GetIncident"), &[AGENT, SUPERVISOR, MANAGER, ANALYST]),
    (
        rpc!("ListIncidents"),
        &[AGENT, SUPERVISOR, MANAGER, ANALYST],
    ),
    (
        rpc!("ListIncidentTickets"),
        &[AGENT, SUPERVISOR, MANAGER, ANALYST],
    ),
    (rpc!("LinkIncidentTickets"), &[SUPERVISOR, MANAGER]),
    (rpc!("RecordIncidentAction"), &[SUPERVISOR, MANAGER]),
    (rpc!("UpdateIncidentTickets"), &[SUPERVISOR, MANAGER]),
    (rpc!("CloseIncident"), &[MANAGER]),
    (rpc!("ListSpotChecks"), &[SUPERVISOR, MANAGER]),
    (rpc!("RecordSpotCheckScore"), &[SUPERVISOR, MANAGER]),
    (audit::LIST_AUDIT_RECORDS, &[ADMIN]),
];

/// The RPCs every call of which is audited: exports and erasures of personal data, tier
/// rule changes and reading the trail; a clear read by GetCustomer is audited where it
/// happens.
pub const AUDITED: &[&str] = &[
    rpc!("ExportCustomerData"),
    rpc!("EraseCustomer"),
    rpc!("UpsertTierRules"),
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
            &["aftersales.care.v1.CareService", audit::SERVICE],
        );
        assert_eq!(table, Ok(()));
    }
}
