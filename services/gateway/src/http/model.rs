//! The JSON the HTTP face speaks, with its OpenAPI schemas: snake_case fields, enums as
//! lower-case strings, money as `{minor_units, currency}`, instants as RFC 3339. Each
//! type converts from or into the gRPC messages the core works on; an enum value this
//! build does not know (or UNSPECIFIED) is left out rather than invented.

mod commands;
mod enums;
mod jobs;
mod parts;
mod settlements;
mod tracking;
mod webhooks;

pub use commands::{
    CompleteBody, DeclineBody, QuoteBody, QuoteLineInput, ResolveRemotelyBody, ScheduleBody,
    VisitBody,
};
pub use enums::{
    AreaKind, CompletionMode, CompletionOutcome, DeliveryState, EndpointState, EndpointStateChange,
    JobStatus, OfferStatus, Payer, QuoteLineKind, QuoteStatus, ReservationStatus, SettlementStatus,
    TrackingKind, Urgency,
};
pub use jobs::{
    Completion, Contact, GeoPoint, Job, JobPage, Location, Offer, OfferList, Photo, Quote,
    QuoteLine,
};
pub use parts::{JobParts, PartLineInput, PartsRequestBody, Reservation};
pub use settlements::{Settlement, SettlementLine, SettlementPage};
pub use tracking::{TrackingAck, TrackingBody};
pub use webhooks::{
    Attempt, CreateEndpointBody, Delivery, DeliveryListParams, DeliveryPage, Endpoint,
    EndpointPage, EndpointWithSecret, EventTypeList, RotateSecretBody, UpdateEndpointBody,
};

use aftersales_platform::codes;
use aftersales_protos::common::v1 as common;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

fn instant(t: Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    t.as_ref().and_then(codes::instant)
}

fn timestamp(t: Option<DateTime<Utc>>) -> Option<prost_types::Timestamp> {
    t.map(codes::timestamp)
}

/// An amount in integer minor units (fen, cents) of an ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Money {
    #[schema(minimum = 0)]
    pub minor_units: i64,
    #[schema(example = "CNY", pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

impl From<common::Money> for Money {
    fn from(m: common::Money) -> Self {
        Self {
            minor_units: m.minor_units,
            currency: m.currency,
        }
    }
}

impl From<Money> for common::Money {
    fn from(m: Money) -> Self {
        Self {
            minor_units: m.minor_units,
            currency: m.currency,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// Every error answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The gRPC status name in snake_case (`invalid_argument`, `not_found`, …), or
    /// `payload_too_large` / `method_not_allowed` for HTTP-only failures.
    pub code: String,
    pub message: String,
    pub field_violations: Vec<FieldViolation>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// Paging of a list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// At most this many items; 0 or omitted means the default.
    #[param(value_type = Option<u32>)]
    pub page_size: Option<String>,
    /// From the previous page's `next_page_token`.
    #[param(max_length = 1024)]
    pub page_token: Option<String>,
}

/// Paging and a status filter.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobListParams {
    /// At most this many jobs; 0 or omitted means the default.
    #[param(value_type = Option<u32>)]
    pub page_size: Option<String>,
    /// From the previous page's `next_page_token`.
    #[param(max_length = 1024)]
    pub page_token: Option<String>,
    /// Only jobs in these statuses, comma-separated; omitted means all.
    #[param(value_type = Option<Vec<JobStatus>>, style = Form, explode = false)]
    pub status: Option<String>,
}
