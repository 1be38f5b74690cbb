//! Decoding and validating requests: who the endpoint's owner is (from the caller's
//! token and, for the gateway, the partner it names), and every field checked with the
//! field it is in.

use aftersales_platform::{
    auth::{Caller, roles::GATEWAY},
    idempotency::Idempotency,
    paging::{decode_cursor, page_size},
    status::Violations,
};
use aftersales_protos::webhooks::v1 as pb;
use chrono::Duration;
use prost::Message;
use tonic::Status;

use crate::{
    domain::{DeliveryState, EndpointState, Owner, target::MAX_URL},
    usecases::EndpointChange,
};

const MAX_DESCRIPTION: usize = 500;
const MAX_TYPE_LEN: usize = 100;

/// The owner a call acts for: the gateway always acts for the partner it names (it took
/// it from the partner's key); an admin acts for the company (`partner_id` empty) or for
/// the partner it names.
pub fn owner(caller: &Caller, partner_id: &str) -> Result<Owner, Status> {
    let mut v = Violations::new();
    v.optional_id("partner_id", partner_id);
    if caller.has_role(GATEWAY) && !caller.is_unrestricted() && partner_id.trim().is_empty() {
        v.add(
            "partner_id",
            "is required when the gateway acts for a partner",
        );
    }
    v.finish()?;
    Ok(Owner::from_partner_id(partner_id.trim()))
}

fn key<M: Message + Clone>(
    v: &mut Violations,
    key: &str,
    request: &M,
    clear: impl FnOnce(&mut M),
) -> Option<Idempotency> {
    v.idempotency(key, request, clear)
}

fn types(v: &mut Violations, types: &[String]) {
    v.max_count("event_types", types, crate::domain::catalogue::MAX_TYPES);
    for (i, t) in types.iter().enumerate() {
        v.text(&format!("event_types[{i}]"), t, MAX_TYPE_LEN);
    }
}

pub struct Create {
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    pub idem: Option<Idempotency>,
}

pub fn create(r: &pb::CreateEndpointRequest) -> Result<Create, Status> {
    let mut v = Violations::new();
    v.required_text("url", &r.url, MAX_URL);
    types(&mut v, &r.event_types);
    v.text("description", &r.description, MAX_DESCRIPTION);
    let idem = key(&mut v, &r.idempotency_key, r, |r| r.idempotency_key.clear());
    v.finish()?;
    Ok(Create {
        url: r.url.trim().to_owned(),
        event_types: r.event_types.iter().map(|t| t.trim().to_owned()).collect(),
        description: r.description.trim().to_owned(),
        idem,
    })
}

pub fn update(
    r: &pb::UpdateEndpointRequest,
) -> Result<(EndpointChange, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    v.id("endpoint_id", &r.endpoint_id);
    if let Some(url) = &r.url {
        v.required_text("url", url, MAX_URL);
    }
    if let Some(list) = &r.event_types {
        types(&mut v, &list.event_types);
    }
    if let Some(description) = &r.description {
        v.text("description", description, MAX_DESCRIPTION);
    }
    let state = match pb::EndpointState::try_from(r.state) {
        Ok(pb::EndpointState::Unspecified) => None,
        Ok(pb::EndpointState::Enabled) => Some(EndpointState::Enabled),
        Ok(pb::EndpointState::Paused) => Some(EndpointState::Paused),
        Ok(pb::EndpointState::Disabled) => {
            v.add("state", "may be set to ENABLED or PAUSED");
            None
        }
        Err(_) => {
            v.add("state", format!("unknown value {}", r.state));
            None
        }
    };
    let idem = key(&mut v, &r.idempotency_key, r, |r| r.idempotency_key.clear());
    v.finish()?;
    Ok((
        EndpointChange {
            url: r.url.as_ref().map(|u| u.trim().to_owned()),
            event_types: r
                .event_types
                .as_ref()
                .map(|l| l.event_types.iter().map(|t| t.trim().to_owned()).collect()),
            state,
            description: r.description.as_ref().map(|d| d.trim().to_owned()),
        },
        idem,
    ))
}

pub fn rotate(
    r: &pb::RotateEndpointSecretRequest,
) -> Result<(Option<Duration>, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    v.id("endpoint_id", &r.endpoint_id);
    let idem = key(&mut v, &r.idempotency_key, r, |r| r.idempotency_key.clear());
    v.finish()?;
    let overlap = (r.overlap_seconds > 0).then(|| Duration::seconds(i64::from(r.overlap_seconds)));
    Ok((overlap, idem))
}

pub fn delete(r: &pb::DeleteEndpointRequest) -> Result<Option<Idempotency>, Status> {
    let mut v = Violations::new();
    v.id("endpoint_id", &r.endpoint_id);
    let idem = key(&mut v, &r.idempotency_key, r, |r| r.idempotency_key.clear());
    v.finish()?;
    Ok(idem)
}

pub fn replay(r: &pb::ReplayDeliveryRequest) -> Result<Option<Idempotency>, Status> {
    let mut v = Violations::new();
    v.id("endpoint_id", &r.endpoint_id);
    v.id("delivery_id", &r.delivery_id);
    let idem = key(&mut v, &r.idempotency_key, r, |r| r.idempotency_key.clear());
    v.finish()?;
    Ok(idem)
}

/// The cursor and size of a page.
pub fn page(token: &str, size: u32) -> Result<(Option<String>, u64), Status> {
    let mut v = Violations::new();
    let cursor = decode_cursor(&mut v, token);
    v.finish()?;
    Ok((cursor, page_size(size)))
}

pub fn list_deliveries(
    r: &pb::ListDeliveriesRequest,
) -> Result<(Option<DeliveryState>, Option<String>, u64), Status> {
    let mut v = Violations::new();
    v.id("endpoint_id", &r.endpoint_id);
    let state = match pb::DeliveryState::try_from(r.state) {
        Ok(pb::DeliveryState::Unspecified) => None,
        Ok(pb::DeliveryState::Pending) => Some(DeliveryState::Pending),
        Ok(pb::DeliveryState::Delivered) => Some(DeliveryState::Delivered),
        Ok(pb::DeliveryState::Failed) => Some(DeliveryState::Failed),
        Err(_) => {
            v.add("state", format!("unknown value {}", r.state));
            None
        }
    };
    let cursor = decode_cursor(&mut v, &r.page_token);
    v.finish()?;
    Ok((state, cursor, page_size(r.page_size)))
}

pub use aftersales_platform::validate::id;
