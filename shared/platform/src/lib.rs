//! What every aftersales service is built from: configuration from the environment,
//! telemetry, the gRPC server kit, identity (verified callers, permission tables, service
//! tokens) and the audit trail of privileged acts, error-to-`Status` mapping, database
//! connections and migrations, idempotency-key storage, and the sealing of personal data
//! at rest. Nothing here knows any business domain.

pub mod audit;
pub mod auth;
pub mod caller;
pub mod client;
pub mod clock;
pub mod coalesce;
pub mod codes;
pub mod config;
pub mod db;
pub mod idempotency;
pub mod metrics;
pub mod money;
pub mod paging;
pub mod pii;
pub mod redis_conn;
pub mod seal;
pub mod server;
pub mod status;
pub mod stock;
pub mod telemetry;
pub mod tls;
pub mod validate;

pub use tokio_util::sync::CancellationToken;
