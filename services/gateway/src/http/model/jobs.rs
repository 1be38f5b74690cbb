//! A job as a partner sees it, with its offer, quotes and completion, and the lists of
//! jobs and offers: converted from the gRPC messages the core answers with.

use aftersales_platform::codes::ProtoEnum;
use aftersales_protos::{dispatch::v1 as dispatch, partner::v1 as partner};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    AreaKind, CompletionMode, CompletionOutcome, JobStatus, Money, OfferStatus, Payer,
    QuoteLineKind, QuoteStatus, Urgency, instant,
};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GeoPoint {
    pub latitude: f64,
    pub longitude: f64,
}

/// Where the repair happens, to the precision a partner needs before accepting.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Location {
    pub region_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub point: Option<GeoPoint>,
}

impl From<dispatch::CustomerLocation> for Location {
    fn from(l: dispatch::CustomerLocation) -> Self {
        Self {
            region_code: l.region_code,
            point: l.point.map(|p| GeoPoint {
                latitude: p.latitude,
                longitude: p.longitude,
            }),
        }
    }
}

/// The customer's contact: present only while the job is yours, accepted and open.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Contact {
    pub name: String,
    pub phone: String,
    pub address: String,
}

/// An offer of a job to you.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Offer {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<OfferStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offered_at: Option<DateTime<Utc>>,
    /// Accept before this instant, or the job goes to the next partner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responded_at: Option<DateTime<Utc>>,
    pub decline_reason: String,
    pub distance_km: f64,
}

impl From<dispatch::Offer> for Offer {
    fn from(o: dispatch::Offer) -> Self {
        Self {
            id: o.id,
            status: OfferStatus::from_proto(o.status),
            offered_at: instant(o.offered_at),
            expires_at: instant(o.expires_at),
            responded_at: instant(o.responded_at),
            decline_reason: o.decline_reason,
            distance_km: o.distance_km,
        }
    }
}

/// One line of a submitted quote, with the outcome of the price check.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QuoteLine {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<QuoteLineKind>,
    pub part_code: String,
    pub description: String,
    pub quantity: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Money>,
    pub within_schedule: bool,
    /// The fee-schedule price the line was checked against, if the schedule has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_price: Option<Money>,
}

impl From<dispatch::QuoteLine> for QuoteLine {
    fn from(l: dispatch::QuoteLine) -> Self {
        Self {
            kind: QuoteLineKind::from_proto(l.kind),
            part_code: l.part_code,
            description: l.description,
            quantity: l.quantity,
            unit_price: l.unit_price.map(Money::from),
            within_schedule: l.within_schedule,
            schedule_price: l.schedule_price.map(Money::from),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Quote {
    pub id: String,
    pub job_id: String,
    pub lines: Vec<QuoteLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<QuoteStatus>,
    /// Every line was within the fee schedule (plus tolerance).
    pub auto_approved: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer: Option<Payer>,
    pub review_note: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reviewed_at: Option<DateTime<Utc>>,
}

impl From<dispatch::Quote> for Quote {
    fn from(q: dispatch::Quote) -> Self {
        Self {
            id: q.id,
            job_id: q.job_id,
            lines: q.lines.into_iter().map(QuoteLine::from).collect(),
            status: QuoteStatus::from_proto(q.status),
            auto_approved: q.auto_approved,
            total: q.total.map(Money::from),
            payer: Payer::from_proto(q.payer),
            review_note: q.review_note,
            submitted_at: instant(q.submitted_at),
            reviewed_at: instant(q.reviewed_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Photo {
    #[schema(
        example = "https://photos.example.com/job-1/after.jpg",
        max_length = 2048,
        pattern = "^https?://"
    )]
    pub url: String,
    /// Lower-case hex SHA-256 of the image.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Completion {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<CompletionOutcome>,
    /// `remote` when closed by remote diagnosis without a visit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<CompletionMode>,
    pub photos: Vec<Photo>,
    pub notes: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// A repeat job for the same ticket and product line came within 30 days.
    pub first_time_fix_revoked: bool,
}

/// A repair job as you see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Job {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<JobStatus>,
    pub product_line: String,
    pub fault_description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub urgency: Option<Urgency>,
    /// Warranty jobs are paid by the company, not the customer.
    pub warranty: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area: Option<AreaKind>,
    /// Your open offer on this job, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer: Option<Offer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<DateTime<Utc>>,
    /// The on-site deadline: acceptance + 24 h (urban) or 48 h (county).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visit_due_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visited_at: Option<DateTime<Utc>>,
    pub quotes: Vec<Quote>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion: Option<Completion>,
}

impl From<partner::PartnerJob> for Job {
    fn from(j: partner::PartnerJob) -> Self {
        Self {
            id: j.id,
            status: JobStatus::from_proto(j.status),
            product_line: j.product_line,
            fault_description: j.fault_description,
            urgency: Urgency::from_proto(j.urgency),
            warranty: j.warranty,
            location: j.location.map(Location::from),
            contact: j.contact.map(|c| Contact {
                name: c.name,
                phone: c.phone,
                address: c.address,
            }),
            area: AreaKind::from_proto(j.area),
            offer: j.offer.map(Offer::from),
            accepted_at: instant(j.accepted_at),
            scheduled_for: instant(j.scheduled_for),
            visit_due_at: instant(j.visit_due_at),
            visited_at: instant(j.visited_at),
            quotes: j.quotes.into_iter().map(Quote::from).collect(),
            completion: j.completion.map(|c| Completion {
                outcome: CompletionOutcome::from_proto(c.outcome),
                mode: CompletionMode::from_proto(c.mode),
                photos: c
                    .photos
                    .into_iter()
                    .map(|p| Photo {
                        url: p.url,
                        sha256: p.sha256,
                    })
                    .collect(),
                notes: c.notes,
                completed_at: instant(c.completed_at),
                first_time_fix_revoked: c.first_time_fix_revoked,
            }),
        }
    }
}

/// Jobs offered to you and waiting for your answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OfferList {
    pub offers: Vec<Job>,
}

impl From<partner::ListOffersResponse> for OfferList {
    fn from(r: partner::ListOffersResponse) -> Self {
        Self {
            offers: r.offers.into_iter().map(Job::from).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    /// Pass as `page_token` for the next page; empty on the last.
    pub next_page_token: String,
}

impl From<partner::ListJobsResponse> for JobPage {
    fn from(r: partner::ListJobsResponse) -> Self {
        Self {
            jobs: r.jobs.into_iter().map(Job::from).collect(),
            next_page_token: r.next_page_token,
        }
    }
}
