//! A carrier's signed tracking event and the acknowledgement of it.

use aftersales_platform::codes::ProtoEnum;
use aftersales_protos::returns::v1 as returns;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{TrackingKind, timestamp};

/// A carrier's tracking event, signed with the carrier's secret.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct TrackingBody {
    /// The carrier's own id of the event: a repeat delivery of it changes nothing.
    #[schema(min_length = 1, max_length = 128)]
    pub event_id: String,
    #[schema(min_length = 1, max_length = 128)]
    pub tracking_number: String,
    pub kind: TrackingKind,
    #[serde(default)]
    pub occurred_at: Option<DateTime<Utc>>,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub detail: String,
}

impl TrackingBody {
    pub fn into_request(self, carrier: String) -> returns::RecordTrackingEventRequest {
        returns::RecordTrackingEventRequest {
            carrier,
            carrier_event_id: self.event_id,
            tracking_number: self.tracking_number,
            kind: self.kind.to_proto(),
            occurred_at: timestamp(self.occurred_at),
            detail: self.detail,
        }
    }
}

/// The event was recorded (or had been already).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TrackingAck {
    pub carrier: String,
    pub event_id: String,
}
