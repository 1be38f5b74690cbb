//! What the read side asks for: the filter of a listing of tickets. Plain data: the api
//! decodes it, the store turns it into a query, so neither needs the other's types.

use super::{Category, Complexity, Severity, Status};

/// Which tickets a listing shows; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TicketFilter {
    pub status: Option<Status>,
    pub severity: Option<Severity>,
    pub category: Option<Category>,
    pub assignee: Option<String>,
    pub customer_id: Option<String>,
    pub order_id: Option<String>,
    pub breached: Option<bool>,
    pub sku: Option<String>,
    pub product_line: Option<String>,
    pub batch: Option<String>,
    pub region_code: Option<String>,
    /// The support group.
    pub group_id: Option<String>,
    pub complexity: Option<Complexity>,
}
