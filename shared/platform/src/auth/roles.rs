//! The suite's roles, as tokens carry them (the `roles` claim or `scope`), and the groups
//! the permission tables are written with. One role per calling service account.

pub const AGENT: &str = "agent";
pub const SUPERVISOR: &str = "supervisor";
pub const MANAGER: &str = "manager";
/// KPIs and reports.
pub const ANALYST: &str = "analyst";
/// Clear personal data, with a purpose that is audited.
pub const PII_READ: &str = "pii:read";
/// Resolving returns and paying refunds.
pub const REFUNDS: &str = "refunds";
/// Policies, calendars, partners, partner keys, settlements.
pub const ADMIN: &str = "admin";
/// A service account that may name the end user it acts for.
pub const ACT_AS: &str = "act-as";

/// The storefront and other company systems that open tickets, returns and profiles.
pub const STOREFRONT: &str = "service:storefront";
/// The care service (reopens tickets).
pub const CARE: &str = "service:care";
/// The returns service (asks dispatch for repair jobs).
pub const RETURNS: &str = "service:returns";
/// The partner gateway: the only caller that acts for partners and carriers.
pub const GATEWAY: &str = "service:gateway";

/// Everyone on the desk.
pub const DESK: &[&str] = &[AGENT, SUPERVISOR, MANAGER];
/// Supervisors and managers.
pub const LEADS: &[&str] = &[SUPERVISOR, MANAGER];
