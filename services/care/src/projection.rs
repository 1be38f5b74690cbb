//! Care's read model, folded from the tickets, returns and dispatch streams: ticket and
//! repair-job facts for the KPIs, the customer timeline, and the work a resolution or a
//! repeated reopen calls for (a follow-up, a manager's task). Each event is applied once,
//! inside the consumer's transaction (which writes the processed-event row), and every
//! fold is order-independent, so late and duplicated events change no figure. The shared
//! consumer decodes each event and dead-letters what it cannot decode.
//!
//! What an event schedules (a follow-up's due time) is handed to the command pipeline as
//! a command nested in the consumer's transaction, and scheduled by the pipeline once
//! that transaction has committed (the `committed` hook), never before.

mod clocks;
mod costs;

use std::sync::Arc;

use aftersales_eventbus::consumer::EventEnvelopeHandler;
use aftersales_platform::codes::{ProtoEnum, instant};
use aftersales_protos::{
    dispatch::v1 as dispatch,
    events::v1::{EventEnvelope, event_envelope::Payload},
    tickets::v1 as tickets,
};
use aftersales_runtime::command::{Nested, PendingEffects};
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr};

use crate::{
    domain::{
        Category, Channel, TaskKind, TicketState, TimelineKind,
        facts::{Assignment, JobRecord, NamedProduct, TicketFact, TicketObservation},
        followup::FollowUp,
        proactive::CareTask,
        records::TimelineEntry,
    },
    store,
    usecases::{CareCore, CareDeadline},
};

/// A command nested in the consumer's transaction.
type Cmd<'t> = Nested<'t, CareDeadline>;

/// The streams care reads, each with the consumer group `care`.
pub const STREAMS: [&str; 3] = ["tickets", "returns", "dispatch"];
pub const GROUP: &str = "care";

pub struct Projection {
    core: Arc<CareCore>,
    /// What each applied event left for after its transaction commits, by event id.
    effects: PendingEffects<CareDeadline>,
}

impl Projection {
    pub fn new(core: Arc<CareCore>) -> Arc<Self> {
        Arc::new(Self {
            core,
            effects: PendingEffects::default(),
        })
    }
}

impl EventEnvelopeHandler for Projection {
    async fn handle_event(
        &self,
        txn: &DatabaseTransaction,
        envelope: &EventEnvelope,
    ) -> Result<(), String> {
        let mut cmd = self.core.pipeline().within(txn);
        self.apply(&mut cmd, envelope)
            .await
            .map_err(|e| e.to_string())?;
        // A retry of a delivery whose commit failed replaces what its first run left.
        self.effects.keep(&envelope.id, cmd.into_effects());
        Ok(())
    }

    /// The consumer's transaction committed: what the event scheduled goes on the queue.
    fn committed(&self, envelope: &EventEnvelope) {
        if let Some(effects) = self.effects.take(&envelope.id) {
            self.core.pipeline().spawn_after_commit(effects);
        }
    }
}

fn optional<T: ProtoEnum>(value: i32) -> Option<T> {
    T::from_proto(value)
}

/// The product facts the ticket names; blanks are unnamed.
fn named_product(p: Option<&tickets::ProductFacts>) -> NamedProduct {
    let named = |v: &str| (!v.is_empty()).then(|| v.to_owned());
    p.map(|p| NamedProduct {
        sku: named(&p.sku),
        product_line: named(&p.product_line),
        batch: named(&p.batch),
        region: named(&p.region_code),
    })
    .unwrap_or_default()
}

fn at_or(t: Option<&prost_types::Timestamp>, fallback: DateTime<Utc>) -> DateTime<Utc> {
    t.and_then(instant).unwrap_or(fallback)
}

impl Projection {
    /// Applies one event: those about tickets here, those about returns and repair jobs
    /// in [`apply_work`]; events care has no use for change nothing.
    async fn apply(&self, cmd: &mut Cmd<'_>, e: &EventEnvelope) -> Result<(), DbErr> {
        let Some(payload) = &e.payload else {
            return Ok(());
        };
        let at = at_or(e.occurred_at.as_ref(), cmd.now());
        match payload {
            Payload::TicketCreated(created) => {
                let Some(t) = &created.ticket else {
                    return Ok(());
                };
                let created_at = at_or(t.created_at.as_ref(), at);
                let fact = observe_ticket(
                    cmd.txn(),
                    &t.id,
                    TicketObservation::Created {
                        customer_id: t.customer_id.clone(),
                        order_id: t.order_id.clone(),
                        channel: optional(t.channel),
                        severity: optional(t.severity),
                        category: optional(t.category),
                        product: named_product(t.product.as_ref()),
                        at: created_at,
                    },
                )
                .await?;
                self.core.ticket_arrived(cmd, &fact).await?;
                let category = fact.dims.category.map_or("request", Category::as_str);
                let channel = fact.dims.channel;
                let summary = match channel {
                    Some(c) => format!("{category} ticket opened via {c}"),
                    None => format!("{category} ticket opened"),
                };
                entry(
                    cmd.txn(),
                    e,
                    created_at,
                    &fact.customer_id,
                    TimelineKind::Ticket,
                    &t.id,
                    summary,
                    channel,
                )
                .await?;
            }
            Payload::TicketStatusChanged(changed) => {
                let Some(to) = optional::<TicketState>(changed.to) else {
                    return Ok(());
                };
                let fact = observe_ticket(
                    cmd.txn(),
                    &changed.ticket_id,
                    TicketObservation::StatusChanged {
                        from: optional(changed.from),
                        to,
                        at,
                    },
                )
                .await?;
                let from = optional::<TicketState>(changed.from).map_or("?", TicketState::as_str);
                let summary = format!("ticket {from} → {to}");
                entry(
                    cmd.txn(),
                    e,
                    at,
                    &fact.customer_id,
                    TimelineKind::Ticket,
                    &changed.ticket_id,
                    summary,
                    fact.dims.channel,
                )
                .await?;
            }
            Payload::TicketResolved(resolved) => {
                let resolved_at = at_or(resolved.resolved_at.as_ref(), at);
                let fact = observe_ticket(
                    cmd.txn(),
                    &resolved.ticket_id,
                    TicketObservation::Resolved {
                        customer_id: resolved.customer_id.clone(),
                        at: resolved_at,
                    },
                )
                .await?;
                self.follow_up_for(cmd, &resolved.ticket_id, &resolved.customer_id, resolved_at)
                    .await?;
                entry(
                    cmd.txn(),
                    e,
                    resolved_at,
                    &resolved.customer_id,
                    TimelineKind::Ticket,
                    &resolved.ticket_id,
                    "ticket resolved".into(),
                    fact.dims.channel,
                )
                .await?;
            }
            Payload::TicketReopened(reopened) => {
                let fact = observe_ticket(
                    cmd.txn(),
                    &reopened.ticket_id,
                    TicketObservation::Reopened {
                        customer_id: reopened.customer_id.clone(),
                        at,
                    },
                )
                .await?;
                if reopened.reopen_count >= self.core.rules().manager_after_reopens {
                    let task = CareTask::new(
                        &reopened.customer_id,
                        TaskKind::ManagerEscalation,
                        &reopened.ticket_id,
                        at,
                        format!(
                            "ticket reopened {} times: a manager takes the customer over",
                            reopened.reopen_count
                        ),
                        false,
                        at,
                    );
                    store::add_tasks(cmd.txn(), vec![task]).await?;
                }
                let summary = format!("ticket reopened ({}x)", reopened.reopen_count);
                entry(
                    cmd.txn(),
                    e,
                    at,
                    &reopened.customer_id,
                    TimelineKind::Ticket,
                    &reopened.ticket_id,
                    summary,
                    fact.dims.channel,
                )
                .await?;
            }
            Payload::TicketEscalated(escalated) => {
                observe_ticket(
                    cmd.txn(),
                    &escalated.ticket_id,
                    TicketObservation::Escalated,
                )
                .await?;
            }
            Payload::SlaBreached(breached) => {
                let resolution = breached.kind == tickets::ClockKind::Resolution as i32;
                observe_ticket(
                    cmd.txn(),
                    &breached.ticket_id,
                    TicketObservation::Breached {
                        clock_id: breached.clock_id.clone(),
                        resolution,
                    },
                )
                .await?;
            }
            Payload::TicketAssigned(assigned) => {
                // Ids only: who had the ticket when, for per-agent figures and the
                // spot-check sample.
                observe_ticket(
                    cmd.txn(),
                    &assigned.ticket_id,
                    TicketObservation::Assigned(Assignment {
                        at,
                        event_id: e.id.clone(),
                        agent_id: assigned.agent_id.clone(),
                        group_id: assigned.group_id.clone(),
                    }),
                )
                .await?;
            }
            Payload::SlaClockMet(met) => clocks::apply(cmd.txn(), met, at).await?,
            work => apply_work(cmd.txn(), e, work, at).await?,
        }
        Ok(())
    }

    /// A follow-up for this resolution, unless one exists already; its due time is
    /// scheduled once the consumer's transaction has committed.
    async fn follow_up_for(
        &self,
        cmd: &mut Cmd<'_>,
        ticket_id: &str,
        customer_id: &str,
        resolved_at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        let existing = store::follow_ups_of_ticket(cmd.txn(), ticket_id).await?;
        if existing.iter().any(|f| f.resolved_at == resolved_at) {
            return Ok(());
        }
        let follow_up = FollowUp::after_resolution(
            ticket_id,
            customer_id,
            resolved_at,
            self.core.rules().follow_up_window,
            cmd.now(),
        );
        store::save_follow_up(cmd.txn(), &follow_up).await?;
        cmd.schedule(
            CareDeadline::FollowUp(follow_up.id.clone()),
            follow_up.due_at,
        );
        Ok(())
    }
}

/// Applies an event about returns and repair jobs: the job facts, the tickets they are
/// about, and the customer's timeline.
async fn apply_work(
    txn: &DatabaseTransaction,
    e: &EventEnvelope,
    payload: &Payload,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    costs::apply(txn, &e.id, payload, at).await?;
    match payload {
        Payload::ReturnRequested(requested) => {
            let Some(r) = &requested.r#return else {
                return Ok(());
            };
            let product_line = r.lines.iter().map(|l| l.product_line.clone()).min();
            if !r.ticket_id.is_empty() {
                observe_ticket(txn, &r.ticket_id, TicketObservation::ReturnRequested).await?;
                observe_ticket(
                    txn,
                    &r.ticket_id,
                    TicketObservation::Work {
                        product_line: product_line.clone(),
                        region: None,
                    },
                )
                .await?;
            }
            let summary = format!("return requested for order {}", r.order_id);
            entry(
                txn,
                e,
                at,
                &r.customer_id,
                TimelineKind::Return,
                &r.id,
                summary,
                None,
            )
            .await?;
        }
        Payload::JobCreated(created) => {
            let mut job = load_job(txn, &created.job_id).await?;
            job.ticket_id.clone_from(&created.ticket_id);
            job.customer_id.clone_from(&created.customer_id);
            job.product_line.clone_from(&created.product_line);
            job.region.clone_from(&created.region_code);
            job.created_at = Some(at);
            store::save_job_fact(txn, &job).await?;
            if !created.repeat_of_job_id.is_empty() {
                let mut earlier = load_job(txn, &created.repeat_of_job_id).await?;
                earlier.repeated = true;
                store::save_job_fact(txn, &earlier).await?;
            }
            if !created.ticket_id.is_empty() {
                observe_ticket(
                    txn,
                    &created.ticket_id,
                    TicketObservation::Work {
                        product_line: Some(created.product_line.clone()),
                        region: Some(created.region_code.clone()),
                    },
                )
                .await?;
            }
            let summary = format!("repair job created ({})", created.product_line);
            entry(
                txn,
                e,
                at,
                &created.customer_id,
                TimelineKind::RepairJob,
                &created.job_id,
                summary,
                None,
            )
            .await?;
        }
        Payload::JobCompleted(completed) => {
            let mut job = load_job(txn, &completed.job_id).await?;
            let outcome = dispatch::CompletionOutcome::try_from(completed.outcome).ok();
            job.completed_at = Some(at_or(completed.completed_at.as_ref(), at));
            job.fixed = matches!(
                outcome,
                Some(dispatch::CompletionOutcome::Fixed | dispatch::CompletionOutcome::Replaced)
            );
            job.remote = completed.mode == dispatch::CompletionMode::Remote as i32;
            if job.customer_id.is_empty() {
                job.customer_id.clone_from(&completed.customer_id);
            }
            store::save_job_fact(txn, &job).await?;
            let what = outcome.map_or("unknown", |o| o.as_str_name());
            let summary = format!(
                "repair job completed: {}",
                what.trim_start_matches("COMPLETION_OUTCOME_")
                    .to_lowercase()
            );
            entry(
                txn,
                e,
                at,
                &completed.customer_id,
                TimelineKind::RepairJob,
                &completed.job_id,
                summary,
                None,
            )
            .await?;
        }
        Payload::JobCancelled(cancelled) => {
            let mut job = load_job(txn, &cancelled.job_id).await?;
            job.cancelled = true;
            store::save_job_fact(txn, &job).await?;
        }
        _ => {}
    }
    Ok(())
}

/// A timeline entry for an event, keyed by the event id so a replay adds nothing.
#[allow(clippy::too_many_arguments)]
async fn entry(
    txn: &DatabaseTransaction,
    e: &EventEnvelope,
    at: DateTime<Utc>,
    customer_id: &str,
    kind: TimelineKind,
    subject_id: &str,
    summary: String,
    channel: Option<Channel>,
) -> Result<(), DbErr> {
    let entry = TimelineEntry {
        id: e.id.clone(),
        customer_id: customer_id.to_owned(),
        kind,
        subject_id: subject_id.to_owned(),
        event: e.r#type.clone(),
        summary,
        channel,
        occurred_at: at,
    };
    store::add_timeline(txn, &entry).await
}

async fn observe_ticket(
    txn: &DatabaseTransaction,
    ticket_id: &str,
    observation: TicketObservation,
) -> Result<TicketFact, DbErr> {
    let mut fact = store::lock_ticket_fact(txn, ticket_id).await?;
    fact.observe(&observation);
    store::save_ticket_fact(txn, &fact).await?;
    Ok(fact)
}

async fn load_job(txn: &DatabaseTransaction, job_id: &str) -> Result<JobRecord, DbErr> {
    store::lock_job_fact(txn, job_id).await
}
