//! The use cases of the returns service, one module per capability. Every command runs
//! through the suite's command pipeline ([`Pipeline`]): it opens the command, loads and
//! locks the return through `store`, applies a `domain` rule at the command's "now",
//! saves the return with its stock movements, refund and outbox events, hands the
//! deadlines it changed to the command, and commits; the pipeline schedules them, wakes
//! the relay and counts breaches after the commit. Refund payments run outside any
//! transaction, keyed by the refund id, so a retry from anywhere pays at most once; cash
//! compensation goes the same way, keyed by the compensation id.
//!
//! Free text (evidence, reasons, inspection notes, carrier details) is masked on the way
//! in ([`masked`]): nothing here stores a phone number, e-mail address or ID number in
//! clear, so neither the tables, the outbox nor a replay ever holds one.
//!
//! May depend on `domain`, `store`, `events` and `ports`; never on `api` or protobuf.

pub mod compensations;
pub mod deadlines;
pub mod erasure;
pub mod inspection;
pub mod logistics;
pub mod policies;
pub mod refunds;
pub mod repairs;
pub mod requests;
pub mod third_party;
pub mod variants;

use aftersales_platform::{coalesce::Coalescer, pii::masked};
use aftersales_runtime::command::{Command, Pipeline, Remembered};
use chrono::{DateTime, Duration, Utc};
use sea_orm::DatabaseConnection;

use crate::{
    domain::{
        DomainError,
        compensation::ApprovalLimits,
        refund::Refund,
        rma::{ReturnAggregate, ReturnEvent, StepTargets, StockMovement},
    },
    error::ReturnsError,
    events,
    ports::{Carriers, PaymentProvider},
    store,
};

use deadlines::ReturnsDeadline;
pub use repairs::RepairSettings;

/// A command of the returns service.
type Cmd = Command<ReturnsDeadline>;

/// Batch reads of returns in flight at once, each holding a pooled connection.
const READ_LANES: usize = 4;
/// Returns read by one batch at most.
const READ_BATCH: usize = 64;

/// What a rule produced besides the changed return.
#[derive(Debug, Default)]
struct Changes {
    events: Vec<ReturnEvent>,
    stock: Vec<StockMovement>,
    refund: Option<Refund>,
}

impl From<Vec<ReturnEvent>> for Changes {
    fn from(events: Vec<ReturnEvent>) -> Self {
        Self {
            events,
            ..Self::default()
        }
    }
}

impl From<(Vec<ReturnEvent>, Vec<StockMovement>)> for Changes {
    fn from((events, stock): (Vec<ReturnEvent>, Vec<StockMovement>)) -> Self {
        Self {
            events,
            stock,
            refund: None,
        }
    }
}

/// The returns service's core: the pipeline every command runs through, the ports and
/// settings its rules need, and GetReturn's batched reader.
pub struct ReturnsCore {
    pipeline: Pipeline<ReturnsDeadline>,
    carriers: Carriers,
    payments: PaymentProvider,
    targets: StepTargets,
    /// When the worker pays a refund whose first attempt was never recorded.
    refund_safety_net: Duration,
    /// Where returned goods are repaired and what unrepairable goods become.
    repair: RepairSettings,
    /// How much each desk role may approve as compensation.
    compensation_limits: ApprovalLimits,
    /// GetReturn's reads, batched while the database is busy.
    returns_by_id: Coalescer<String, ReturnAggregate>,
}

impl ReturnsCore {
    pub fn new(
        pipeline: Pipeline<ReturnsDeadline>,
        carriers: Carriers,
        payments: PaymentProvider,
        targets: StepTargets,
        refund_safety_net: Duration,
        repair: RepairSettings,
        compensation_limits: ApprovalLimits,
    ) -> Self {
        let reader = pipeline.db().clone();
        let returns_by_id = Coalescer::spawn(READ_LANES, READ_BATCH, move |ids: Vec<String>| {
            let db = reader.clone();
            async move { store::get_returns(&db, &ids).await }
        });
        Self {
            returns_by_id,
            pipeline,
            carriers,
            payments,
            targets,
            refund_safety_net,
            repair,
            compensation_limits,
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        self.pipeline.db()
    }

    /// The pipeline, for the event consumer's work inside its transaction.
    pub fn pipeline(&self) -> &Pipeline<ReturnsDeadline> {
        &self.pipeline
    }

    /// Opens an unkeyed command on one return, locked until the command ends.
    async fn open(
        &self,
        scope: &'static str,
        return_id: &str,
    ) -> Result<(Cmd, ReturnAggregate), ReturnsError> {
        let cmd = self.pipeline.begin_unkeyed(scope).await?;
        match store::load_aggregate(cmd.txn(), return_id, true).await? {
            Some(agg) => Ok((cmd, agg)),
            None => {
                cmd.abandon().await?;
                Err(not_found("return", return_id))
            }
        }
    }

    /// One command on one return: lock it, apply `rule`, save what it changed, commit.
    async fn command(
        &self,
        scope: &'static str,
        return_id: &str,
        rule: impl FnOnce(&mut ReturnAggregate, DateTime<Utc>) -> Result<Changes, DomainError>,
    ) -> Result<ReturnAggregate, ReturnsError> {
        let (mut cmd, mut agg) = self.open(scope, return_id).await?;
        let changes = rule(&mut agg, cmd.now())?;
        save(&mut cmd, &agg, changes).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&agg.rma.id))
            .await?;
        Ok(agg)
    }
}

/// A command of this service, owning its transaction or nested in a consumer's.
trait InCommand: aftersales_runtime::command::InCommand<ReturnsDeadline> {}

impl<T: aftersales_runtime::command::InCommand<ReturnsDeadline>> InCommand for T {}

/// Writes a changed return and what its rule produced in the command's transaction: the
/// return and its deadlines, stock movements, the refund, outbox events; and hands the
/// command every deadline to schedule or drop once it commits.
async fn save(
    cmd: &mut impl InCommand,
    agg: &ReturnAggregate,
    changes: Changes,
) -> Result<(), ReturnsError> {
    let now = cmd.now();
    store::save_aggregate(cmd.txn(), agg).await?;
    store::record_stock(cmd.txn(), &agg.rma.id, &changes.stock, now).await?;
    if let Some(refund) = &changes.refund {
        store::save_refund(cmd.txn(), refund).await?;
        cmd.reschedule(
            ReturnsDeadline::Refund(refund.id.clone()),
            refund.next_attempt_at,
        );
    }
    for event in &changes.events {
        if matches!(event, ReturnEvent::StepOverdue { .. }) {
            cmd.breached();
        }
    }
    cmd.publish(events::encode(agg, &changes.events, now))
        .await?;
    reschedule_steps(cmd, agg);
    Ok(())
}

/// Schedules the step deadlines of `agg` that can still fire and drops the others.
fn reschedule_steps(cmd: &mut impl InCommand, agg: &ReturnAggregate) {
    for deadline in &agg.deadlines {
        cmd.reschedule(
            ReturnsDeadline::Step(deadline.id.clone()),
            deadline.next_fire_at(),
        );
    }
}

/// The id a keyed command remembered (the first it produced).
fn remembered_id(remembered: &Remembered) -> Result<&str, ReturnsError> {
    remembered.first().ok_or_else(|| {
        aftersales_platform::db::corrupt("idempotency_keys", "a remembered command without ids")
            .into()
    })
}

fn not_found(what: &'static str, id: &str) -> ReturnsError {
    ReturnsError::NotFound {
        what,
        id: id.to_owned(),
    }
}
