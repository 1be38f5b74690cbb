//! What the read side asks for and gets back: the filter of a listing of returns and a
//! line of a carrier's monthly statement. Plain data: the store fills it in, the api
//! decodes and encodes it, so neither needs the other's types.

use chrono::{DateTime, Utc};

use super::{Money, Reason, Status};

/// Which returns a listing shows; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnFilter {
    pub status: Option<Status>,
    pub reason: Option<Reason>,
    pub order_id: Option<String>,
    pub customer_id: Option<String>,
    pub carrier: Option<String>,
    pub overdue: Option<bool>,
}

/// One booked pickup on a carrier's statement, with its return's current status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierLine {
    pub return_id: String,
    pub tracking_number: String,
    pub fee: Money,
    pub booked_at: DateTime<Utc>,
    pub status: Status,
}
