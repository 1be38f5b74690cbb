//! Who may call each RPC of the returns service: roles from the caller's verified token,
//! any one of which suffices. Deny by default: a method without a row is refused to
//! everyone. README's permission table is this one.

use aftersales_platform::{
    audit,
    auth::roles::{ADMIN, AGENT, ANALYST, GATEWAY, MANAGER, REFUNDS, STOREFRONT, SUPERVISOR},
};

macro_rules! rpc {
    ($method:literal) => {
        concat!("/aftersales.returns.v1.ReturnService/", $method)
    };
}

/// RPC path → the roles that may call it.
pub const PERMISSIONS: &[(&str, &[&str])] = &[
    (
        rpc!("RequestReturn"),
        &[AGENT, SUPERVISOR, MANAGER, STOREFRONT],
    ),
    (
        rpc!("GetReturn"),
        &[AGENT, SUPERVISOR, MANAGER, ANALYST, REFUNDS, STOREFRONT],
    ),
    (
        rpc!("ListReturns"),
        &[AGENT, SUPERVISOR, MANAGER, ANALYST, REFUNDS, STOREFRONT],
    ),
    (rpc!("ReviewReturn"), &[AGENT, SUPERVISOR, MANAGER]),
    (
        rpc!("CancelReturn"),
        &[AGENT, SUPERVISOR, MANAGER, STOREFRONT],
    ),
    (rpc!("BookPickup"), &[AGENT, SUPERVISOR, MANAGER]),
    (rpc!("RecordTrackingEvent"), &[GATEWAY, SUPERVISOR]),
    (rpc!("ReceiveReturn"), &[AGENT, SUPERVISOR, MANAGER]),
    (rpc!("RecordInspection"), &[AGENT, SUPERVISOR, MANAGER]),
    (rpc!("ResolveReturn"), &[REFUNDS]),
    (rpc!("CloseReturn"), &[AGENT, SUPERVISOR, MANAGER]),
    (
        rpc!("GetRefund"),
        &[AGENT, SUPERVISOR, MANAGER, ANALYST, REFUNDS, STOREFRONT],
    ),
    (rpc!("UpsertReturnPolicy"), &[ADMIN]),
    (rpc!("CarrierReconciliation"), &[ADMIN, ANALYST, MANAGER]),
    (
        rpc!("RequestThirdPartyInspection"),
        &[AGENT, SUPERVISOR, MANAGER],
    ),
    (
        rpc!("RecordThirdPartyResult"),
        &[AGENT, SUPERVISOR, MANAGER],
    ),
    (rpc!("AgreePartialRefund"), &[REFUNDS]),
    (rpc!("RequestPriceDifferenceRefund"), &[REFUNDS]),
    (rpc!("RequestCompensation"), &[AGENT, SUPERVISOR, MANAGER]),
    (rpc!("ApproveCompensation"), &[AGENT, SUPERVISOR, MANAGER]),
    (rpc!("RejectCompensation"), &[AGENT, SUPERVISOR, MANAGER]),
    (
        rpc!("GetCompensation"),
        &[AGENT, SUPERVISOR, MANAGER, ANALYST, REFUNDS],
    ),
    (
        rpc!("ListCompensations"),
        &[AGENT, SUPERVISOR, MANAGER, ANALYST, REFUNDS],
    ),
    (audit::LIST_AUDIT_RECORDS, &[ADMIN]),
];

/// The RPCs every call of which is audited: refunds (every variant), compensation and its
/// approvals, policy changes, and reading the trail.
pub const AUDITED: &[&str] = &[
    rpc!("ResolveReturn"),
    rpc!("AgreePartialRefund"),
    rpc!("RequestPriceDifferenceRefund"),
    rpc!("RequestCompensation"),
    rpc!("ApproveCompensation"),
    rpc!("RejectCompensation"),
    rpc!("UpsertReturnPolicy"),
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
            &["aftersales.returns.v1.ReturnService", audit::SERVICE],
        );
        assert_eq!(table, Ok(()));
    }
}
