//! Who may call each RPC of the dispatch service: roles from the caller's verified token,
//! any one of which suffices. Deny by default: a method without a row is refused to
//! everyone. README's permission table is this one.

use aftersales_platform::{
    audit,
    auth::roles::{ADMIN, AGENT, ANALYST, GATEWAY, MANAGER, RETURNS, SUPERVISOR},
};

macro_rules! rpc {
    ($method:literal) => {
        concat!("/aftersales.dispatch.v1.DispatchService/", $method)
    };
}
macro_rules! keys {
    ($method:literal) => {
        concat!("/aftersales.dispatch.v1.PartnerKeyService/", $method)
    };
}

/// RPC path → the roles that may call it.
pub const PERMISSIONS: &[(&str, &[&str])] = &[
    (rpc!("RegisterPartner"), &[ADMIN]),
    (rpc!("UpdatePartner"), &[ADMIN]),
    (
        rpc!("GetPartner"),
        &[AGENT, SUPERVISOR, MANAGER, ANALYST, ADMIN],
    ),
    (
        rpc!("ListPartners"),
        &[AGENT, SUPERVISOR, MANAGER, ANALYST, ADMIN],
    ),
    (rpc!("CreateJob"), &[AGENT, SUPERVISOR, MANAGER, RETURNS]),
    (rpc!("GetJob"), &[AGENT, SUPERVISOR, MANAGER, GATEWAY]),
    (rpc!("ListJobs"), &[AGENT, SUPERVISOR, MANAGER, GATEWAY]),
    (rpc!("ListOffers"), &[SUPERVISOR, MANAGER, GATEWAY]),
    (rpc!("CancelJob"), &[AGENT, SUPERVISOR, MANAGER]),
    (rpc!("RespondToOffer"), &[SUPERVISOR, GATEWAY]),
    (rpc!("ScheduleVisit"), &[SUPERVISOR, GATEWAY]),
    (rpc!("RecordVisit"), &[SUPERVISOR, GATEWAY]),
    (rpc!("SubmitQuote"), &[SUPERVISOR, GATEWAY]),
    (rpc!("ReviewQuote"), &[SUPERVISOR, MANAGER]),
    (rpc!("CompleteJob"), &[SUPERVISOR, GATEWAY]),
    (rpc!("ResolveRemotely"), &[SUPERVISOR, GATEWAY]),
    (rpc!("GetScorecard"), &[SUPERVISOR, MANAGER, ANALYST, ADMIN]),
    (rpc!("GenerateSettlement"), &[ADMIN]),
    (rpc!("GetSettlement"), &[ADMIN, MANAGER, ANALYST, GATEWAY]),
    (rpc!("ListSettlements"), &[ADMIN, MANAGER, ANALYST, GATEWAY]),
    (rpc!("UpdateSettlementStatus"), &[ADMIN]),
    (rpc!("RegisterPart"), &[ADMIN]),
    (rpc!("RegisterPartSite"), &[ADMIN]),
    (rpc!("ReceiveParts"), &[SUPERVISOR, MANAGER, ADMIN]),
    (rpc!("RequestParts"), &[SUPERVISOR, GATEWAY]),
    (rpc!("ShipTransfer"), &[SUPERVISOR, MANAGER, ADMIN]),
    (rpc!("ReceiveTransfer"), &[SUPERVISOR, MANAGER, ADMIN]),
    (rpc!("SetStockThreshold"), &[MANAGER, ADMIN]),
    (rpc!("RecordStocktake"), &[SUPERVISOR, MANAGER, ADMIN]),
    (
        rpc!("ListStock"),
        &[AGENT, SUPERVISOR, MANAGER, ANALYST, ADMIN],
    ),
    (
        rpc!("GetPartsTurnover"),
        &[SUPERVISOR, MANAGER, ANALYST, ADMIN],
    ),
    (keys!("IssuePartnerKey"), &[ADMIN]),
    (keys!("RotatePartnerKey"), &[ADMIN]),
    (keys!("RevokePartnerKey"), &[ADMIN]),
    (keys!("ListPartnerKeys"), &[ADMIN]),
    (keys!("AuthenticatePartnerKey"), &[GATEWAY]),
    (audit::LIST_AUDIT_RECORDS, &[ADMIN]),
];

/// The RPCs every call of which is audited (partner and settlement administration,
/// the parts catalogue, stock thresholds and stocktakes, partner keys, reading the trail); partners' reads of customer contact are audited where
/// they happen.
pub const AUDITED: &[&str] = &[
    rpc!("RegisterPartner"),
    rpc!("UpdatePartner"),
    rpc!("GenerateSettlement"),
    rpc!("UpdateSettlementStatus"),
    rpc!("RegisterPart"),
    rpc!("RegisterPartSite"),
    rpc!("SetStockThreshold"),
    rpc!("RecordStocktake"),
    keys!("IssuePartnerKey"),
    keys!("RotatePartnerKey"),
    keys!("RevokePartnerKey"),
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
                "aftersales.dispatch.v1.DispatchService",
                "aftersales.dispatch.v1.PartnerKeyService",
                audit::SERVICE,
            ],
        );
        assert_eq!(table, Ok(()));
    }
}
