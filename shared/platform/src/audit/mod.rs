//! The audit trail of privileged acts: who (the verified subject, the end user a service
//! account acted for, the token's roles and client), what (the RPC and its target), when,
//! and how it ended. One mechanism for the whole suite:
//!
//! - the [`AuthLayer`](crate::auth::AuthLayer), given a sink with
//!   [`with_audit`](crate::auth::AuthLayer::with_audit), records every permission denial
//!   (its own, and a handler's `PERMISSION_DENIED`) and every call of an RPC the service
//!   lists as audited, whatever its outcome;
//! - it runs each handler inside an audit scope that the API and use-case layers fill:
//!   [`target`] names what the act was about (and makes any RPC's call recorded, which is
//!   how a clear personal-data read inside an otherwise ordinary RPC is audited), [`note`]
//!   adds details, and [`crate::caller::actor_of`] names the end user a service account
//!   acts for;
//! - the record is written after the handler returns and before its answer leaves, so a
//!   client that saw success finds the record; when it cannot be written the answer is
//!   replaced by `UNAVAILABLE` (fail closed: no clear data leaves unaudited).
//!
//! Why not in the command's transaction (the pipeline's "audit" step)? Most audited acts
//! have no transaction: reads of personal data, denials, listings. Writing every record in
//! one place after the handler covers them all with the same code, records failed attempts
//! (whose transaction rolled back) as well as successful ones, and keeps the services'
//! commands unchanged. The price is a window between the act's commit and the record's
//! insert: a crash there leaves a committed act without its record. Writes are the rarer
//! audited acts, each is idempotent by key, and the client (which saw no answer) retries
//! and is recorded then; a per-aggregate history in the command's transaction (tickets'
//! `ticket_history`) stays where a service keeps one.
//!
//! Each service keeps its records in its own database ([`migration::CreateAuditRecords`]
//! in its migrator) and serves `aftersales.audit.v1.AuditService` over them
//! ([`AuditApi`]), for `admin` only. Depends on `auth` of this crate for the caller and on
//! sea-orm for the store; knows no business domain.

mod api;
mod scope;
mod store;

use std::{future::Future, pin::Pin};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub use api::AuditApi;
pub use scope::{Filled, Scope, acting_for, note, target};
pub use store::{AuditFilter, AuditLog, entity, migration};

/// The gRPC service that lists a service's records.
pub const SERVICE: &str = "aftersales.audit.v1.AuditService";
/// Its one RPC, for the permission table of every service that serves it.
pub const LIST_AUDIT_RECORDS: &str = "/aftersales.audit.v1.AuditService/ListAuditRecords";

/// One privileged act, or one refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// A UUIDv7: id order is time order, and the listing's cursor.
    pub id: String,
    pub at: DateTime<Utc>,
    /// The verified subject of the token.
    pub subject: String,
    /// The end user a service account with `act-as` acted for.
    pub on_behalf_of: Option<String>,
    pub roles: Vec<String>,
    pub client_id: Option<String>,
    /// The full gRPC path.
    pub rpc: String,
    /// What the act was about, `<kind>:<id>`.
    pub target: Option<String>,
    /// The gRPC code name of the answer: `OK`, `PERMISSION_DENIED`, …
    pub outcome: String,
    /// Further details (a personal-data read's purpose and fields, a denial's reason).
    pub detail: Map<String, Value>,
}

impl AuditRecord {
    /// A fresh record id for an act at `at`, a UUIDv7 of that instant: records written
    /// after the fact (a migration moving an older log into the trail) keep the listing's
    /// id order time order.
    pub fn id_at(at: DateTime<Utc>) -> String {
        let seconds = u64::try_from(at.timestamp()).unwrap_or_default();
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, seconds, at.timestamp_subsec_nanos());
        uuid::Uuid::new_v7(ts).to_string()
    }
}

/// Why records could not be kept.
pub type AuditError = Box<dyn std::error::Error + Send + Sync>;

/// Where records go. [`AuditLog`] keeps them in the service's database.
pub trait AuditSink: Send + Sync + 'static {
    /// Keeps `records` (all or none).
    fn write<'a>(
        &'a self,
        records: Vec<AuditRecord>,
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + 'a>>;
}

/// The name of a gRPC code as the protocol spells it (`PERMISSION_DENIED`).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
pub(crate) mod memory {
    //! A sink that keeps records in memory, for the layer's unit tests.
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    pub struct MemorySink {
        pub records: Arc<Mutex<Vec<AuditRecord>>>,
        pub broken: bool,
    }

    impl AuditSink for MemorySink {
        fn write<'a>(
            &'a self,
            records: Vec<AuditRecord>,
        ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + 'a>> {
            Box::pin(async move {
                if self.broken {
                    return Err("the audit store is down".into());
                }
                self.records.lock().unwrap().extend(records);
                Ok(())
            })
        }
    }
}
