//! Reading and writing the care database, one module per table family. Functions take
//! any connection, so a use case composes them inside its command's transaction; rows
//! become domain types here only, and the sea-orm entities never leave this module.
//! Customer rows leave here sealed ([`SealedCustomer`]): only the use cases, holding the
//! vault, open them.
//!
//! Locks: an event's ticket or job fact is locked before anything else the event
//! touches (so consumers of different streams serialise on it); several follow-ups, as
//! the deadline worker fires them, are locked by id.

mod costs;
mod customers;
mod entity;
mod facts;
mod follow_ups;
mod incidents;
mod met_clocks;
pub mod migration;
mod proactive;
mod spot_checks;
mod surveys;
mod timeline;

use sea_orm::{ConnectionTrait, DbBackend, QuerySelect};

pub use costs::{add_cost_entries, add_stock_change, cost_entries, stock_changes};
pub use customers::{
    SealedCustomer, customer_by_phone_hash, customers_after, customers_in_region,
    customers_with_clear_names, get_customer, get_setting, inactive_customers,
    lock_inactive_customer, put_setting, save_customer, touch_customer,
};
pub use facts::{
    customers_with_open_work, jobs_created, lock_job_fact, lock_ticket_fact, open_tickets_within,
    resolved_agent, save_job_fact, save_ticket_fact, tickets_by_id, tickets_created,
    tickets_of_batch, tickets_of_customers, tickets_resolved,
};
pub use follow_ups::{
    follow_ups_of, follow_ups_of_ticket, follow_ups_resolved, list_follow_ups, load_follow_up,
    load_follow_ups, pending_follow_ups, save_follow_up, save_follow_ups, unconfirmed_reopens,
};
pub use incidents::{
    incident_tickets, incidents_due, insert_incident, link_tickets, list_incidents, load_incident,
    open_incident_of_scope, open_incidents, save_incident,
};
pub use met_clocks::{clocks_met, insert_met_clock};
pub use proactive::{
    add_tasks, drop_future_tasks, get_warranty, list_tasks, notice_recipients, save_warranty,
    warranties_of,
};
pub use spot_checks::{
    get_spot_check, insert_spot_check_score, scored_between, scored_in_week,
    spot_checks_of_customer,
};
pub use surveys::{clear_comments, get_survey, insert_survey, surveys_of, surveys_recorded};
pub use timeline::{add_timeline, timeline_page};

fn lock_if_postgres<C: ConnectionTrait, Q: QuerySelect>(conn: &C, query: Q, lock: bool) -> Q {
    if lock && conn.get_database_backend() == DbBackend::Postgres {
        query.lock_exclusive()
    } else {
        query
    }
}
