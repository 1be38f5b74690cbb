//! The use cases of the care service, one module per capability. Every command runs
//! through the suite's command pipeline ([`Pipeline`]): it opens the command (a keyed one
//! answers a retry with what the first run produced, as it is now), loads and locks what
//! it changes through `store`, applies a `domain` rule at the command's "now", saves,
//! hands its outbox events and deadline changes to the command, and commits; the
//! pipeline schedules the deadlines and wakes the relay after the commit. The name and
//! contact fields are sealed before they reach the store and opened only here. A follow-up that asks
//! for a reopen calls the tickets service after its commit, outside any transaction.
//!
//! May depend on `domain`, `store`, `events` and `ports`; never on `api` or protobuf.

pub mod costs;
pub mod data_rights;
pub mod deadlines;
pub mod follow_ups;
pub mod incidents;
pub mod kpis;
pub mod proactive;
pub mod profiles;
pub mod spot_checks;
pub mod surveys;

use aftersales_platform::{db::corrupt, seal::Vault};
use aftersales_runtime::command::{Pipeline, Remembered};
use chrono::{DateTime, Duration, Utc};
use sea_orm::DatabaseConnection;

pub use costs::CostReport;
pub use data_rights::CustomerData;
pub use deadlines::CareDeadline;
pub use kpis::QualityReport;
pub use proactive::NoticeResult;
pub use profiles::{CustomerInput, Shown};
pub use surveys::SurveyInput;

use crate::{domain::incident::IncidentRules, error::CareError, ports::TicketsPort};

/// The associated-data context care's rows are sealed under (`aftersales.care/<customer
/// id>/<field>`); changing it would leave every stored row unopenable.
pub const SEAL_CONTEXT: &str = "aftersales.care";

/// What only the care rules are configured with.
#[derive(Debug, Clone, Copy)]
pub struct CareRules {
    /// A follow-up is due this long after the resolution (handbook: 24 h).
    pub follow_up_window: Duration,
    /// Warranty-expiry reminders come this many days before the end.
    pub reminder_days_before: u32,
    /// A ticket reopened this many times puts a manager on the customer.
    pub manager_after_reopens: u32,
    /// Customers with no activity for this long are anonymised (default 2 years).
    pub retention: Duration,
    /// When the suite proposes a major incident by itself.
    pub incidents: IncidentRules,
    /// The share of each agent's resolved tickets of a week sampled for spot checks, in
    /// percent (1–100; at least one ticket per agent).
    pub spot_check_rate_percent: u32,
}

impl CareRules {
    pub fn handbook() -> Self {
        Self {
            follow_up_window: Duration::hours(24),
            reminder_days_before: 30,
            manager_after_reopens: 2,
            retention: Duration::days(730),
            incidents: IncidentRules::default(),
            spot_check_rate_percent: crate::domain::spot_check::DEFAULT_RATE_PERCENT,
        }
    }
}

/// The care service's core: the pipeline every command runs through, the vault that
/// seals names and contact fields, the tickets service and the rules.
pub struct CareCore {
    pipeline: Pipeline<CareDeadline>,
    vault: Vault,
    tickets: TicketsPort,
    rules: CareRules,
}

impl CareCore {
    pub fn new(
        pipeline: Pipeline<CareDeadline>,
        vault: Vault,
        tickets: TicketsPort,
        rules: CareRules,
    ) -> Self {
        Self {
            pipeline,
            vault,
            tickets,
            rules,
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        self.pipeline.db()
    }

    /// The pipeline, for the projection's work inside the consumer's transaction.
    pub fn pipeline(&self) -> &Pipeline<CareDeadline> {
        &self.pipeline
    }

    pub fn rules(&self) -> &CareRules {
        &self.rules
    }

    /// Now, by the service's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.pipeline.now()
    }
}

/// The id a keyed command remembered (its record's).
fn replayed(remembered: &Remembered) -> Result<&str, CareError> {
    remembered
        .first()
        .ok_or_else(|| corrupt("idempotency_keys", "a remembered command without ids").into())
}

/// A page cut to `size` and the id to continue before, if more exist.
fn paged<T>(mut page: Vec<T>, size: u64, id: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
    let next = (page.len() as u64 > size).then(|| {
        page.truncate(size as usize);
        page.last().map(&id)
    });
    (page, next.flatten())
}
