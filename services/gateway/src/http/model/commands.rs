//! The bodies of a partner's commands on a job (decline, schedule, visit, quote,
//! complete), each turned into the gRPC request the core takes.

use aftersales_platform::codes::ProtoEnum;
use aftersales_protos::{dispatch::v1 as dispatch, partner::v1 as partner};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{CompletionOutcome, Money, Photo, QuoteLineKind, timestamp};

/// Body of `POST /v1/jobs/{job_id}/decline`; may be omitted.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct DeclineBody {
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ScheduleBody {
    /// The appointment agreed with the customer.
    pub scheduled_for: DateTime<Utc>,
}

impl ScheduleBody {
    pub fn into_request(self, job_id: String) -> partner::ScheduleVisitRequest {
        partner::ScheduleVisitRequest {
            job_id,
            scheduled_for: timestamp(Some(self.scheduled_for)),
        }
    }
}

/// Body of `POST /v1/jobs/{job_id}/visit`; may be omitted.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct VisitBody {
    /// When the technician arrived; omitted means now. May not lie in the future.
    #[serde(default)]
    pub arrived_at: Option<DateTime<Utc>>,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub notes: String,
}

impl VisitBody {
    pub fn into_request(self, job_id: String) -> partner::RecordVisitRequest {
        partner::RecordVisitRequest {
            job_id,
            arrived_at: timestamp(self.arrived_at),
            notes: self.notes,
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct QuoteLineInput {
    pub kind: QuoteLineKind,
    /// Parts only: the code in your price list.
    #[serde(default)]
    #[schema(max_length = 128)]
    pub part_code: String,
    #[serde(default)]
    #[schema(max_length = 10000)]
    pub description: String,
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: u32,
    pub unit_price: Money,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct QuoteBody {
    #[schema(min_items = 1, max_items = 200)]
    pub lines: Vec<QuoteLineInput>,
}

impl QuoteBody {
    pub fn into_request(
        self,
        job_id: String,
        idempotency_key: String,
    ) -> partner::SubmitQuoteRequest {
        partner::SubmitQuoteRequest {
            idempotency_key,
            job_id,
            lines: self
                .lines
                .into_iter()
                .map(|l| dispatch::QuoteLine {
                    kind: l.kind.to_proto(),
                    part_code: l.part_code,
                    description: l.description,
                    quantity: l.quantity,
                    unit_price: Some(l.unit_price.into()),
                    within_schedule: false,
                    schedule_price: None,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CompleteBody {
    pub outcome: CompletionOutcome,
    #[serde(default)]
    #[schema(max_items = 200)]
    pub photos: Vec<Photo>,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub notes: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ResolveRemotelyBody {
    /// `fixed`, `replaced` (a replacement sent without a visit) or `not_fixed`.
    pub outcome: CompletionOutcome,
    /// What was diagnosed and done, e.g. the steps the customer was guided through.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub notes: String,
}

impl ResolveRemotelyBody {
    pub fn into_request(
        self,
        job_id: String,
        idempotency_key: String,
    ) -> partner::ResolveJobRemotelyRequest {
        partner::ResolveJobRemotelyRequest {
            idempotency_key,
            job_id,
            outcome: self.outcome.to_proto(),
            notes: self.notes,
        }
    }
}

impl CompleteBody {
    pub fn into_request(
        self,
        job_id: String,
        idempotency_key: String,
    ) -> partner::CompleteJobRequest {
        partner::CompleteJobRequest {
            idempotency_key,
            job_id,
            outcome: self.outcome.to_proto(),
            photos: self
                .photos
                .into_iter()
                .map(|p| dispatch::Photo {
                    url: p.url,
                    sha256: p.sha256,
                })
                .collect(),
            notes: self.notes,
        }
    }
}
