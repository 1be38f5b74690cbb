//! Who may call each RPC of the webhooks service: roles from the caller's verified token,
//! any one of which suffices. Deny by default. Internal subscribers are managed by admins;
//! the gateway manages partners' endpoints on their behalf (the partner comes from the
//! key it verified). README's permission table is this one.

use aftersales_platform::{
    audit,
    auth::roles::{ADMIN, GATEWAY},
};

macro_rules! rpc {
    ($method:literal) => {
        concat!("/aftersales.webhooks.v1.WebhookService/", $method)
    };
}

/// RPC path → the roles that may call it.
pub const PERMISSIONS: &[(&str, &[&str])] = &[
    (rpc!("CreateEndpoint"), &[ADMIN, GATEWAY]),
    (rpc!("GetEndpoint"), &[ADMIN, GATEWAY]),
    (rpc!("ListEndpoints"), &[ADMIN, GATEWAY]),
    (rpc!("UpdateEndpoint"), &[ADMIN, GATEWAY]),
    (rpc!("RotateEndpointSecret"), &[ADMIN, GATEWAY]),
    (rpc!("DeleteEndpoint"), &[ADMIN, GATEWAY]),
    (rpc!("ListDeliveries"), &[ADMIN, GATEWAY]),
    (rpc!("ReplayDelivery"), &[ADMIN, GATEWAY]),
    (rpc!("ListEventTypes"), &[ADMIN, GATEWAY]),
    (audit::LIST_AUDIT_RECORDS, &[ADMIN]),
];

/// Every change to an endpoint or its secret, every replay, and reading the trail.
pub const AUDITED: &[&str] = &[
    rpc!("CreateEndpoint"),
    rpc!("UpdateEndpoint"),
    rpc!("RotateEndpointSecret"),
    rpc!("DeleteEndpoint"),
    rpc!("ReplayDelivery"),
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
            &["aftersales.webhooks.v1.WebhookService", audit::SERVICE],
        );
        assert_eq!(table, Ok(()));
    }
}
