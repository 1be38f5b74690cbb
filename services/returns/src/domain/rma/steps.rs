//! The steps of a return: which status may follow which, and how long each timed step may
//! take.

use chrono::Duration;

use crate::domain::{Status, Step};

/// How long each step may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepTargets {
    pub review: Duration,
    pub pickup: Duration,
    pub inspection: Duration,
    pub refund: Duration,
    /// A third-party lab's inspection: 7 days by default.
    pub third_party: Duration,
}

impl StepTargets {
    /// The online flow: each step within 24 hours.
    pub fn handbook() -> Self {
        let day = Duration::hours(24);
        Self {
            review: day,
            pickup: day,
            inspection: day,
            refund: day,
            third_party: Duration::days(7),
        }
    }

    pub(super) fn of(&self, step: Step) -> Duration {
        match step {
            Step::Review => self.review,
            Step::Pickup => self.pickup,
            Step::Inspection => self.inspection,
            Step::Refund => self.refund,
            Step::ThirdPartyInspection => self.third_party,
        }
    }
}

/// Is `from → to` a step of the lifecycle?
pub fn can_move(from: Status, to: Status) -> bool {
    use Status::*;
    matches!(
        (from, to),
        (Requested, Approved | Rejected | Cancelled)
            | (Approved, PickupBooked | Cancelled)
            // Refunds without returned goods: refund-only, a negotiated partial refund.
            | (Requested | Approved, Refunded)
            | (Inspected, AwaitingThirdParty)
            | (AwaitingThirdParty, Inspected)
            | (PickupBooked, InTransit | Received | Cancelled)
            | (InTransit, Received)
            | (Received, Inspected)
            | (
                Inspected,
                Refunded | Exchanged | SentToRepair | RejectedAfterInspection
            )
            | (SentToRepair, Repaired | Refunded | Exchanged)
            | (
                Rejected | Refunded | Exchanged | SentToRepair | RejectedAfterInspection | Repaired,
                Closed
            )
    )
}
