//! The dispatch service: the repair-partner network, repair jobs offered to the best
//! partner, visits against the on-site SLA, quotes price-checked against fee schedules,
//! scorecards and monthly settlement.
