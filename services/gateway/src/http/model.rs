//! The JSON the HTTP face speaks, with its OpenAPI schemas: snake_case fields, enums as
//! lower-case strings, money as `{minor_units, currency}`, instants as RFC 3339. Each
//! type converts from or into the gRPC messages the core works on; an enum value this
//! build does not know (or UNSPECIFIED) is left out rather than invented.

use aftersales_platform::{
    codes::{self, ProtoEnum},
    proto_enum, text_enum,
};
use aftersales_protos::{
    common::v1 as common, dispatch::v1 as dispatch, partner::v1 as partner, returns::v1 as returns,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

text_enum! {
    #[derive(ToSchema)]
    JobStatus {
        PendingDispatch = "pending_dispatch",
        Offered = "offered",
        Accepted = "accepted",
        Scheduled = "scheduled",
        OnSite = "on_site",
        Completed = "completed",
        CannotComplete = "cannot_complete",
        Cancelled = "cancelled",
        Unassigned = "unassigned",
    }
}
proto_enum!(JobStatus => dispatch::JobStatus {
    PendingDispatch => PendingDispatch,
    Offered => Offered,
    Accepted => Accepted,
    Scheduled => Scheduled,
    OnSite => OnSite,
    Completed => Completed,
    CannotComplete => CannotComplete,
    Cancelled => Cancelled,
    Unassigned => Unassigned,
});

text_enum! {
    #[derive(ToSchema)]
    Urgency { Normal = "normal", Urgent = "urgent" }
}
proto_enum!(Urgency => dispatch::Urgency { Normal => Normal, Urgent => Urgent });

text_enum! {
    /// Urban: on site within 24 h of acceptance; county: within 48 h.
    #[derive(ToSchema)]
    AreaKind { Urban = "urban", County = "county" }
}
proto_enum!(AreaKind => dispatch::AreaKind { Urban => Urban, County => County });

text_enum! {
    #[derive(ToSchema)]
    OfferStatus {
        Open = "open",
        Accepted = "accepted",
        Declined = "declined",
        Expired = "expired",
        Withdrawn = "withdrawn",
    }
}
proto_enum!(OfferStatus => dispatch::OfferStatus {
    Open => Open,
    Accepted => Accepted,
    Declined => Declined,
    Expired => Expired,
    Withdrawn => Withdrawn,
});

text_enum! {
    #[derive(ToSchema)]
    QuoteLineKind { Labour = "labour", Part = "part", CallOut = "call_out" }
}
proto_enum!(QuoteLineKind => dispatch::QuoteLineKind {
    Labour => Labour,
    Part => Part,
    CallOut => CallOut,
});

text_enum! {
    #[derive(ToSchema)]
    QuoteStatus {
        PendingReview = "pending_review",
        Approved = "approved",
        Rejected = "rejected",
    }
}
proto_enum!(QuoteStatus => dispatch::QuoteStatus {
    PendingReview => PendingReview,
    Approved => Approved,
    Rejected => Rejected,
});

text_enum! {
    /// Warranty jobs charge the company, others the customer.
    #[derive(ToSchema)]
    Payer { Customer = "customer", Company = "company" }
}
proto_enum!(Payer => dispatch::Payer { Customer => Customer, Company => Company });

text_enum! {
    #[derive(ToSchema)]
    CompletionOutcome {
        Fixed = "fixed",
        NotFixed = "not_fixed",
        NeedsParts = "needs_parts",
        Replaced = "replaced",
    }
}
proto_enum!(CompletionOutcome => dispatch::CompletionOutcome {
    Fixed => Fixed,
    NotFixed => NotFixed,
    NeedsParts => NeedsParts,
    Replaced => Replaced,
});

text_enum! {
    #[derive(ToSchema)]
    SettlementStatus {
        Draft = "draft",
        Issued = "issued",
        Disputed = "disputed",
        Paid = "paid",
    }
}
proto_enum!(SettlementStatus => dispatch::SettlementStatus {
    Draft => Draft,
    Issued => Issued,
    Disputed => Disputed,
    Paid => Paid,
});

text_enum! {
    #[derive(ToSchema)]
    TrackingKind {
        PickedUp = "picked_up",
        InTransit = "in_transit",
        DeliveredToWarehouse = "delivered_to_warehouse",
        Exception = "exception",
    }
}
proto_enum!(TrackingKind => returns::TrackingKind {
    PickedUp => PickedUp,
    InTransit => InTransit,
    DeliveredToWarehouse => DeliveredToWarehouse,
    Exception => Exception,
});

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

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SettlementLine {
    pub job_id: String,
    pub quote_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer: Option<Payer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
}

/// Your statement for one month.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Settlement {
    pub id: String,
    /// `YYYY-MM`, in your time zone.
    pub month: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<SettlementStatus>,
    pub lines: Vec<SettlementLine>,
    /// What the company owes you (warranty jobs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_total: Option<Money>,
    /// What you collected from customers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_total: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<Money>,
    pub dispute_reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<dispatch::Settlement> for Settlement {
    fn from(s: dispatch::Settlement) -> Self {
        Self {
            id: s.id,
            month: s.month,
            status: SettlementStatus::from_proto(s.status),
            lines: s
                .lines
                .into_iter()
                .map(|l| SettlementLine {
                    job_id: l.job_id,
                    quote_id: l.quote_id,
                    completed_at: instant(l.completed_at),
                    payer: Payer::from_proto(l.payer),
                    amount: l.amount.map(Money::from),
                })
                .collect(),
            company_total: s.company_total.map(Money::from),
            customer_total: s.customer_total.map(Money::from),
            total: s.total.map(Money::from),
            dispute_reason: s.dispute_reason,
            generated_at: instant(s.generated_at),
            updated_at: instant(s.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SettlementPage {
    pub settlements: Vec<Settlement>,
    pub next_page_token: String,
}

impl From<partner::ListSettlementsResponse> for SettlementPage {
    fn from(r: partner::ListSettlementsResponse) -> Self {
        Self {
            settlements: r.settlements.into_iter().map(Settlement::from).collect(),
            next_page_token: r.next_page_token,
        }
    }
}

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
