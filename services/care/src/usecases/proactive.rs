//! Proactive care: warranties and the reminder tasks they call for, the listing of care
//! tasks, and emergency notices (one task per customer of a region with open work).

use aftersales_platform::idempotency::Idempotency;
use aftersales_runtime::command::{Begun, Remembered};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;

use crate::{
    domain::{
        DomainError, TaskKind, TimelineKind,
        listing::TaskFilter,
        new_id,
        proactive::{CareTask, Warranty},
        records::TimelineEntry,
    },
    error::{CareError, not_found},
    store,
};

use super::{CareCore, paged, replayed};

const UPSERT_WARRANTY_SCOPE: &str = "care.UpsertWarranty";
const BROADCAST_SCOPE: &str = "care.BroadcastNotice";

/// What a notice did: its id and the customers it left a task for, in id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeResult {
    pub notice_id: String,
    pub customer_ids: Vec<String>,
}

impl CareCore {
    /// Creates or replaces a warranty; its reminders still ahead are made again.
    pub async fn upsert_warranty(
        &self,
        warranty: Warranty,
        idem: Option<&Idempotency>,
    ) -> Result<Warranty, CareError> {
        warranty.validate()?;
        self.pipeline
            .keyed(idem, || self.try_upsert_warranty(&warranty, idem))
            .await
    }

    async fn try_upsert_warranty(
        &self,
        warranty: &Warranty,
        idem: Option<&Idempotency>,
    ) -> Result<Warranty, CareError> {
        let cmd = match self.pipeline.begin(UPSERT_WARRANTY_SCOPE, idem).await? {
            Begun::Replay(remembered) => return self.get_warranty(replayed(&remembered)?).await,
            Begun::Fresh(cmd) => cmd,
        };
        let now = cmd.now();
        let customer = store::get_customer(cmd.txn(), &warranty.customer_id, false)
            .await?
            .ok_or_else(|| not_found("customer", &warranty.customer_id))?;
        let mut w = warranty.clone();
        if w.id.is_empty() {
            w.id = new_id();
        } else if let Some(known) = store::get_warranty(cmd.txn(), &w.id).await?
            && known.customer_id != w.customer_id
        {
            return Err(DomainError::invalid(
                "customer_id",
                "differs from the warranty's customer",
            )
            .into());
        }
        store::save_warranty(cmd.txn(), &w, now).await?;
        store::drop_future_tasks(cmd.txn(), &w.id, now).await?;
        let reminders = w.reminders(self.rules.reminder_days_before, customer.tier, now);
        store::add_tasks(cmd.txn(), reminders).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&w.id)).await?;
        Ok(w)
    }

    async fn get_warranty(&self, id: &str) -> Result<Warranty, CareError> {
        store::get_warranty(self.db(), id)
            .await?
            .ok_or_else(|| not_found("warranty", id))
    }

    pub async fn list_tasks(
        &self,
        filter: &TaskFilter,
        before: Option<&str>,
        size: u64,
    ) -> Result<(Vec<CareTask>, Option<String>), CareError> {
        let page = store::list_tasks(self.db(), filter, before, size + 1).await?;
        Ok(paged(page, size, |t| t.id.clone()))
    }

    /// One notice task per customer of the region with an open ticket or repair job. A
    /// retry with the same key answers with the notice's customers as they are now.
    pub async fn broadcast_notice(
        &self,
        region_code: &str,
        reason: &str,
        message: &str,
        idem: Option<&Idempotency>,
    ) -> Result<NoticeResult, CareError> {
        self.pipeline
            .keyed(idem, || {
                self.try_broadcast(region_code, reason, message, idem)
            })
            .await
    }

    async fn try_broadcast(
        &self,
        region_code: &str,
        reason: &str,
        message: &str,
        idem: Option<&Idempotency>,
    ) -> Result<NoticeResult, CareError> {
        let cmd = match self.pipeline.begin(BROADCAST_SCOPE, idem).await? {
            Begun::Replay(remembered) => {
                let notice_id = replayed(&remembered)?.to_owned();
                let customer_ids = store::notice_recipients(self.db(), &notice_id).await?;
                return Ok(NoticeResult {
                    notice_id,
                    customer_ids,
                });
            }
            Begun::Fresh(cmd) => cmd,
        };
        let now = cmd.now();
        let notice_id = new_id();
        let added = notify_region(cmd.txn(), &notice_id, region_code, reason, message, now).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&notice_id))
            .await?;
        Ok(NoticeResult {
            notice_id,
            customer_ids: added.into_iter().map(|t| t.customer_id).collect(),
        })
    }
}

/// One notice task (and timeline entry) per customer of the region with an open ticket
/// or repair job, under `notice_id`; returns the tasks added.
pub(super) async fn notify_region(
    txn: &DatabaseTransaction,
    notice_id: &str,
    region_code: &str,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) -> Result<Vec<CareTask>, CareError> {
    let in_region = store::customers_in_region(txn, region_code).await?;
    let affected = store::customers_with_open_work(txn, &in_region).await?;
    let tasks = affected
        .iter()
        .map(|customer| {
            CareTask::new(
                customer,
                TaskKind::Notice,
                notice_id,
                now,
                format!("{reason}: {message}"),
                false,
                now,
            )
        })
        .collect();
    let added = store::add_tasks(txn, tasks).await?;
    for task in &added {
        let entry = TimelineEntry::own(
            &task.customer_id,
            TimelineKind::CareTask,
            &task.id,
            "care.NoticeSent",
            format!("notice: {reason}"),
            now,
        );
        store::add_timeline(txn, &entry).await?;
    }
    Ok(added)
}
