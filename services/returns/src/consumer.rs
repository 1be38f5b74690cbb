//! Events of other services that change returns: a customer care anonymised has the free
//! text of their returns erased; dispatch's repair job for a return sent to repair settles
//! it (the return knows its job's id from the start, having chosen it; `JobCreated` only
//! confirms it; `JobCompleted` with a fix ships the goods back; completed without one,
//! `JobCancelled` or `JobUnassigned` of that job make a refund or an exchange, see
//! `usecases::repairs`). Each event is applied inside the consumer's
//! transaction, the one that records it processed, so a redelivery is only acknowledged;
//! settling a return already settled changes nothing anyway. What a settlement leaves for
//! after the commit (deadlines, waking the relay, paying a refund) is kept by event id and
//! run in the `committed` hook. The shared consumer decodes each delivery and
//! dead-letters what it cannot decode.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use aftersales_eventbus::{
    EventBus,
    consumer::{Consumer, EventEnvelopeHandler},
};
use aftersales_protos::{
    dispatch::v1::CompletionOutcome,
    events::v1::{EventEnvelope, event_envelope::Payload},
};
use aftersales_runtime::command::Effects;
use sea_orm::DatabaseTransaction;

use crate::{
    domain::rma::repair::JobOutcome,
    error::ReturnsError,
    usecases::{ReturnsCore, deadlines::ReturnsDeadline},
};

/// The streams returns reads, and its group on each.
pub const STREAMS: [&str; 2] = ["care", "dispatch"];
pub const GROUP: &str = "returns";

/// What an applied event left for after its commit.
struct AfterCommit {
    effects: Effects<ReturnsDeadline>,
    refund_id: Option<String>,
}

pub struct OtherServices {
    core: Arc<ReturnsCore>,
    /// By event id.
    pending: Mutex<HashMap<String, AfterCommit>>,
}

impl OtherServices {
    /// One consumer per stream, sharing the handler.
    pub fn consumers(core: Arc<ReturnsCore>, bus: EventBus) -> Vec<Consumer<Self>> {
        let db = core.db().clone();
        let handler = Arc::new(Self {
            core,
            pending: Mutex::default(),
        });
        Consumer::per_stream(&db, &bus, &STREAMS, GROUP, handler)
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, AfterCommit>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies an event about a repair job, in a command nested in `txn`.
    async fn repair_job(
        &self,
        txn: &DatabaseTransaction,
        envelope: &EventEnvelope,
    ) -> Result<(), ReturnsError> {
        let mut cmd = self.core.pipeline().within(txn);
        let mut refund_id = None;
        match &envelope.payload {
            Some(Payload::JobCreated(created)) if !created.return_id.is_empty() => {
                self.core
                    .repair_job_created(&mut cmd, &created.return_id, &created.job_id)
                    .await?;
            }
            Some(Payload::JobCompleted(completed)) if !completed.return_id.is_empty() => {
                let fixed = matches!(
                    CompletionOutcome::try_from(completed.outcome),
                    Ok(CompletionOutcome::Fixed | CompletionOutcome::Replaced)
                );
                let outcome = if fixed {
                    JobOutcome::Repaired
                } else {
                    JobOutcome::NotRepaired
                };
                refund_id = self
                    .core
                    .settle_repair(&mut cmd, &completed.return_id, &completed.job_id, outcome)
                    .await?;
            }
            Some(Payload::JobCancelled(ended)) => {
                refund_id = self.not_repaired(&mut cmd, &ended.job_id).await?;
            }
            Some(Payload::JobUnassigned(ended)) => {
                refund_id = self.not_repaired(&mut cmd, &ended.job_id).await?;
            }
            _ => return Ok(()),
        }
        // A retry of a delivery whose commit failed replaces what its first run left.
        self.pending().insert(
            envelope.id.clone(),
            AfterCommit {
                effects: cmd.into_effects(),
                refund_id,
            },
        );
        Ok(())
    }

    /// A job ended without repairing anything; only a return's job matters.
    async fn not_repaired(
        &self,
        cmd: &mut aftersales_runtime::command::Nested<'_, ReturnsDeadline>,
        job_id: &str,
    ) -> Result<Option<String>, ReturnsError> {
        let Some(return_id) = self.core.return_of_repair_job(cmd, job_id).await? else {
            return Ok(None);
        };
        self.core
            .settle_repair(cmd, &return_id, job_id, JobOutcome::NotRepaired)
            .await
    }
}

impl EventEnvelopeHandler for OtherServices {
    async fn handle_event(
        &self,
        txn: &DatabaseTransaction,
        envelope: &EventEnvelope,
    ) -> Result<(), String> {
        match &envelope.payload {
            Some(Payload::CustomerAnonymised(anonymised)) => {
                let returns = self
                    .core
                    .anonymise_customer(txn, &anonymised.customer_id)
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::info!(customer_id = %anonymised.customer_id, returns, "customer anonymised: return text erased");
                Ok(())
            }
            _ => self
                .repair_job(txn, envelope)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// The consumer's transaction committed: deadlines go on the queue, the relay wakes,
    /// a refund started is paid (at most once, keyed by its id; the worker retries).
    fn committed(&self, envelope: &EventEnvelope) {
        let Some(after) = self.pending().remove(&envelope.id) else {
            return;
        };
        let core = self.core.clone();
        tokio::spawn(async move {
            core.pipeline().after_commit(after.effects).await;
            if let Some(refund_id) = after.refund_id
                && let Err(err) = core.pay_refund(&refund_id).await
            {
                tracing::warn!(refund_id, error = %err, "paying a refund failed; the worker retries it");
            }
        });
    }
}
