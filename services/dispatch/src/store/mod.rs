//! Reading and writing the dispatch database, one module per table family. Functions
//! take any connection, so a use case composes them inside its command's transaction;
//! rows become domain types here only, and the sea-orm entities never leave this module.
//!
//! Lock order, the same in every transaction of the service, so none can deadlock: a
//! part transfer before job rows; job rows before partner rows and before stock rows
//! (by part, then site, [`lock_stock`]); several jobs by id; partners either one at a time (a
//! savepoint unlocks a partner found full before the next is tried; the lock is shared
//! while the partner is far from its capacity, see [`lock_partner`]) or all at once by id
//! ([`lock_and_load_partners`]). Offers' counters (`load`) are written after every partner lock a
//! transaction takes, by the trigger on `offers`.

mod batch;
mod entity;
mod facts;
mod jobs;
mod keys;
mod load;
mod load_migration;
pub mod migration;
mod partners;
mod parts;
mod parts_entity;
pub mod parts_migration;
mod settlements;

use sea_orm::{ConnectionTrait, DbBackend, QuerySelect};

pub use batch::{load_jobs, lock_and_load_partners, save_jobs};
pub use facts::{active_jobs, job_facts, offer_facts, offers_taken_since, settled_work};
pub use jobs::{
    jobs_to_seal, jobs_with_contact_of, list_jobs, load_job, offer_jobs, open_offer_deadlines,
    quote_job_id, repeated_job, save_job, visit_deadlines,
};
pub use keys::{end_key, get_key, insert_key, key_by_hash, keys_of};
pub use load::taken_since;
pub use partners::{
    PartnerLock, get_partner, list_partners, lock_partner, partner_versions_covering,
    partners_by_id, partners_covering, save_partner,
};
pub use parts::{
    get_part, get_receipt, get_site, get_stocktake, get_transfer, insert_part, insert_receipt,
    insert_site, insert_stocktake, jobs_waiting_at, list_stock, lock_stock, on_hand_history,
    record_movements, reservations_of, save_reservations, save_stock, save_transfer, unknown_parts,
};
pub use settlements::{get_settlement, list_settlements, save_settlement, settlement_of};

fn lock_if_postgres<C: ConnectionTrait, Q: QuerySelect>(conn: &C, query: Q, lock: bool) -> Q {
    if lock && conn.get_database_backend() == DbBackend::Postgres {
        query.lock_exclusive()
    } else {
        query
    }
}
