//! Met SLA clocks (`tickets.SlaClockMet`) for the KPIs' clock lateness. A clock is stored
//! on its own, keyed by (clock, cycle), and joined to its ticket's dimensions only when
//! the KPIs are read: it may arrive before the ticket's other events, and the agent it
//! counts for is the ticket's attribution then, never the one named on the event.

use aftersales_platform::codes::instant;
use aftersales_protos::{events::v1 as ev, tickets::v1 as tickets};
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr};

use crate::{domain::clock_lateness::MetClock, store};

/// Stores the met clock unless its (clock, cycle) is stored already. An event without a
/// clock id or a kind cannot be deduplicated or counted, so it changes nothing; one
/// without its met instant is taken as met when it occurred (`at`).
pub async fn apply(
    txn: &DatabaseTransaction,
    met: &ev::SlaClockMet,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    if met.clock_id.is_empty() || met.kind == tickets::ClockKind::Unspecified as i32 {
        return Ok(());
    }
    let clock = MetClock {
        ticket_id: met.ticket_id.clone(),
        clock_id: met.clock_id.clone(),
        cycle: met.cycle,
        kind: met.kind,
        due_at: met.due_at.as_ref().and_then(instant),
        met_at: met.met_at.as_ref().and_then(instant).unwrap_or(at),
        actual_minus_standard_ms: met.actual_minus_standard_ms,
    };
    store::insert_met_clock(txn, &clock).await?;
    Ok(())
}
