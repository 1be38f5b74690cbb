//! Spare parts a partner reserves for a job: the request body and the job with its
//! reservations, converted to and from the gRPC messages the core works on.

use aftersales_platform::codes::ProtoEnum;
use aftersales_protos::{dispatch::v1 as dispatch, partner::v1 as partner};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Job, ReservationStatus, instant};

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PartLineInput {
    #[schema(min_length = 1, max_length = 128)]
    pub part_id: String,
    #[schema(minimum = 1)]
    pub quantity: u32,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PartsRequestBody {
    /// Where the parts are drawn from: a warehouse, a regional parts centre or your own
    /// outlet (another partner's outlet answers 404).
    #[schema(min_length = 1, max_length = 128)]
    pub site_id: String,
    #[schema(min_items = 1, max_items = 50)]
    pub lines: Vec<PartLineInput>,
}

impl PartsRequestBody {
    pub fn into_request(
        self,
        job_id: String,
        idempotency_key: String,
    ) -> partner::RequestJobPartsRequest {
        partner::RequestJobPartsRequest {
            idempotency_key,
            job_id,
            site_id: self.site_id,
            lines: self
                .lines
                .into_iter()
                .map(|l| dispatch::PartQuantity {
                    part_id: l.part_id,
                    quantity: l.quantity,
                })
                .collect(),
        }
    }
}

/// Units of one part held for a job at one site.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Reservation {
    pub id: String,
    pub site_id: String,
    pub part_id: String,
    /// Asked for.
    pub quantity: u64,
    /// Held so far: the line is whole when it equals `quantity`.
    pub reserved: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ReservationStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

impl From<dispatch::PartReservation> for Reservation {
    fn from(r: dispatch::PartReservation) -> Self {
        Self {
            id: r.id,
            site_id: r.site_id,
            part_id: r.part_id,
            quantity: r.quantity,
            reserved: r.reserved,
            status: ReservationStatus::from_proto(r.status),
            created_at: instant(r.created_at),
        }
    }
}

/// A job and every part reserved for it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobParts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<Job>,
    pub reservations: Vec<Reservation>,
}

impl From<partner::PartnerJobParts> for JobParts {
    fn from(p: partner::PartnerJobParts) -> Self {
        Self {
            job: p.job.map(Job::from),
            reservations: p.reservations.into_iter().map(Reservation::from).collect(),
        }
    }
}
