//! The webhooks domain: endpoints (who is pushed which event types, in what state),
//! deliveries (one event for one endpoint, with every attempt) and the rules between them
//! — who may subscribe to what, when the next attempt is due, when a failing endpoint is
//! disabled. Pure: no I/O, no protobuf, no database.

pub mod catalogue;
pub mod retry;
pub mod signing;
pub mod target;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Who owns an endpoint: a partner (managed through the gateway) or the company itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Internal,
    Partner(String),
}

impl Owner {
    /// The stored form: the partner id, or empty for an internal subscriber.
    pub fn partner_id(&self) -> &str {
        match self {
            Owner::Internal => "",
            Owner::Partner(id) => id,
        }
    }

    pub fn from_partner_id(id: &str) -> Self {
        if id.is_empty() {
            Owner::Internal
        } else {
            Owner::Partner(id.to_owned())
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointState {
    Enabled,
    /// Paused by its owner: deliveries wait until it is enabled again.
    Paused,
    /// Disabled by the suite after failing for too long.
    Disabled,
    /// Deleted by its owner: kept for its delivery log, never shown as an endpoint.
    Deleted,
}

impl EndpointState {
    pub fn code(self) -> &'static str {
        match self {
            EndpointState::Enabled => "enabled",
            EndpointState::Paused => "paused",
            EndpointState::Disabled => "disabled",
            EndpointState::Deleted => "deleted",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Some(match code {
            "enabled" => EndpointState::Enabled,
            "paused" => EndpointState::Paused,
            "disabled" => EndpointState::Disabled,
            "deleted" => EndpointState::Deleted,
            _ => return None,
        })
    }
}

/// An endpoint with its secrets in clear (they are sealed in the store).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: String,
    pub owner: Owner,
    pub url: String,
    pub event_types: Vec<String>,
    pub state: EndpointState,
    pub description: String,
    pub secret: String,
    /// The secret before the last rotation and until when it is still signed with.
    pub previous_secret: Option<(String, DateTime<Utc>)>,
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_reason: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Endpoint {
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.iter().any(|t| t == event_type)
    }

    /// The secrets a delivery at `now` is signed with: the current one, and the previous
    /// one while its overlap lasts.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let Some((previous, until)) = &self.previous_secret
            && *until > now
        {
            secrets.push(previous);
        }
        secrets
    }

    /// Whether an event of `event_type` concerning `partner` (the partner named in the
    /// event, if any) goes to this endpoint: an internal endpoint takes every type it
    /// subscribed to; a partner's only the partner catalogue's types about itself.
    pub fn receives(&self, event_type: &str, partner: Option<&str>) -> bool {
        self.state == EndpointState::Enabled
            && receives(&self.owner, &self.event_types, event_type, partner)
    }
}

/// Whether an enabled endpoint of `owner` subscribed to `types` is sent an event of
/// `event_type` concerning `partner`.
pub fn receives(owner: &Owner, types: &[String], event_type: &str, partner: Option<&str>) -> bool {
    if !types.iter().any(|t| t == event_type) {
        return false;
    }
    match owner {
        Owner::Internal => true,
        Owner::Partner(id) => catalogue::for_partners(event_type) && partner == Some(id.as_str()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryState {
    pub fn code(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Some(match code {
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            _ => return None,
        })
    }
}

/// One try at delivering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub number: u32,
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status; 0 without an answer.
    pub status_code: u16,
    pub latency_ms: u32,
    pub error: String,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status_code)
    }
}

/// One event for one endpoint. `id` is the event's id: the `webhook-id` a receiver
/// deduplicates on, the same for every attempt and replay.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub endpoint_id: String,
    pub event_type: String,
    /// The JSON body sent, fixed when the delivery is created.
    pub body: String,
    pub state: DeliveryState,
    pub attempts: Vec<Attempt>,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// What the suite is configured to do with failing endpoints.
#[derive(Debug, Clone, Copy)]
pub struct FailurePolicy {
    pub retry: retry::RetrySchedule,
    /// Failing without a success for this long, an endpoint is disabled.
    pub disable_after: Duration,
    /// How long a new delivery's first attempt is left to the process that committed it
    /// before the schedule makes it (that process died): longer than an attempt takes.
    pub first_attempt_grace: Duration,
}

impl FailurePolicy {
    /// Five days of failure, retries from 5 s up to an hour apart.
    pub fn standard() -> Self {
        Self {
            retry: retry::RetrySchedule::standard(),
            disable_after: Duration::days(5),
            first_attempt_grace: Duration::seconds(30),
        }
    }
}

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    RetryAt(DateTime<Utc>),
    /// The endpoint has failed since `failing_since` for longer than allowed.
    Disable,
}

impl FailurePolicy {
    /// After the `attempts`-th failed attempt at `now`, on an endpoint failing since
    /// `failing_since` (this attempt's `now` when it is the first failure).
    pub fn after_failure(
        &self,
        attempts: u32,
        failing_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> AfterFailure {
        if now - failing_since >= self.disable_after {
            return AfterFailure::Disable;
        }
        AfterFailure::RetryAt(now + self.retry.delay_after(attempts))
    }
}

/// Why a request is refused by the rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

pub fn invalid(field: &str, reason: impl Into<String>) -> DomainError {
    DomainError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// A new time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(owner: Owner, types: &[&str]) -> Endpoint {
        let now = Utc::now();
        Endpoint {
            id: new_id(),
            owner,
            url: "https://example.com/hook".into(),
            event_types: types.iter().map(|t| t.to_string()).collect(),
            state: EndpointState::Enabled,
            description: String::new(),
            secret: "whsec_a".into(),
            previous_secret: None,
            failing_since: None,
            disabled_reason: String::new(),
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn a_partner_receives_only_its_own_partner_events() {
        let e = endpoint(
            Owner::Partner("p1".into()),
            &["dispatch.JobOffered", "tickets.TicketCreated"],
        );
        assert!(e.receives("dispatch.JobOffered", Some("p1")));
        assert!(!e.receives("dispatch.JobOffered", Some("p2")));
        assert!(!e.receives("dispatch.JobOffered", None));
        assert!(!e.receives("tickets.TicketCreated", None));
    }

    #[test]
    fn an_internal_subscriber_receives_every_type_it_wants() {
        let mut e = endpoint(Owner::Internal, &["tickets.TicketCreated"]);
        assert!(e.receives("tickets.TicketCreated", None));
        assert!(!e.receives("dispatch.JobOffered", Some("p1")));
        e.state = EndpointState::Paused;
        assert!(!e.receives("tickets.TicketCreated", None));
    }

    #[test]
    fn the_previous_secret_signs_only_during_its_overlap() {
        let now = Utc::now();
        let mut e = endpoint(Owner::Internal, &[]);
        e.previous_secret = Some(("whsec_old".into(), now + Duration::seconds(1)));
        assert_eq!(e.signing_secrets(now), vec!["whsec_a", "whsec_old"]);
        assert_eq!(
            e.signing_secrets(now + Duration::seconds(1)),
            vec!["whsec_a"]
        );
    }

    #[test]
    fn an_endpoint_failing_for_the_limit_is_disabled() {
        let policy = FailurePolicy::standard();
        let since = Utc::now();
        let just_before = since + Duration::days(5) - Duration::milliseconds(1);
        assert!(matches!(
            policy.after_failure(9, since, just_before),
            AfterFailure::RetryAt(at) if at > just_before
        ));
        assert_eq!(
            policy.after_failure(9, since, since + Duration::days(5)),
            AfterFailure::Disable
        );
    }
}
