//! The use cases of the care service. Each command is one transaction that writes its
//! records, outbox events and the idempotency record together; deadlines go on the
//! deadline queue after the commit, and a follow-up that asks for a reopen calls the
//! tickets service after its commit (retried by the worker until tickets confirms).
//! Contact fields are sealed before they reach the store and opened only here.

use std::{collections::HashMap, sync::Arc};

use aftersales_deadlines::DeadlineQueue;
use aftersales_platform::{
    db::{now as db_now, parse_code},
    idempotency::{Idempotency, once_more_after_a_twin, recall_json, remember_json},
};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use tokio::sync::Notify;

use crate::{
    domain::{
        DomainError, FollowUpStatus, KpiDimension, Reader, SurveySubject, TaskKind, TimelineKind,
        customer::{ANONYMISED_NAME, Contact, Customer, PurchaseStats, TierRules},
        facts::{Dims, TicketFact},
        followup::{FollowUp, Outcome},
        kpi::{self, JobFact, KpiGroup, KpiInput, REPEAT_WINDOW_DAYS},
        new_id,
        proactive::{CareTask, Warranty},
        quality::{self, QualityCount},
    },
    error::{CareError, not_found},
    events,
    ports::{Reopen, TicketsPort},
    projection::own_entry,
    store::{
        self, FOLLOW_UP_MEMBER, FollowUpFilter, REOPEN_MEMBER, TaskFilter,
        entity::{customer as customer_row, pii_read, survey, timeline},
    },
    vault::Vault,
};

const UPSERT_CUSTOMER_SCOPE: &str = "care.UpsertCustomer";
const RECORD_FOLLOW_UP_SCOPE: &str = "care.RecordFollowUp";
const RECORD_SURVEY_SCOPE: &str = "care.RecordSurvey";
const UPSERT_WARRANTY_SCOPE: &str = "care.UpsertWarranty";
const BROADCAST_SCOPE: &str = "care.BroadcastNotice";
const TIER_RULES: &str = "tier_rules";

/// How long to wait before asking tickets again after a failed reopen.
const REOPEN_RETRY: Duration = Duration::seconds(15);

/// What only the care rules are configured with.
#[derive(Debug, Clone, Copy)]
pub struct CareRules {
    /// A follow-up is due this long after the resolution (handbook: 24 h).
    pub follow_up_window: Duration,
    /// Warranty-expiry reminders come this many days before the end.
    pub reminder_days_before: u32,
    /// A ticket reopened this many times puts a manager on the customer.
    pub manager_after_reopens: u32,
    /// Customers with no activity for this long are anonymised (default 2 years).
    pub retention: Duration,
}

impl CareRules {
    pub fn handbook() -> Self {
        Self {
            follow_up_window: Duration::hours(24),
            reminder_days_before: 30,
            manager_after_reopens: 2,
            retention: Duration::days(730),
        }
    }
}

/// A profile as a caller sends it.
#[derive(Debug, Clone)]
pub struct CustomerInput {
    pub id: String,
    pub name: String,
    pub contact: Contact,
    pub region_code: String,
    pub purchases: PurchaseStats,
}

/// A profile as one reader may see it.
#[derive(Debug, Clone)]
pub struct Shown {
    pub customer: Customer,
    pub contact: Contact,
    pub unmasked: bool,
}

/// Every record care holds about one customer.
#[derive(Debug, Clone)]
pub struct CustomerData {
    pub customer: Customer,
    pub timeline: Vec<timeline::Model>,
    pub follow_ups: Vec<FollowUp>,
    pub surveys: Vec<survey::Model>,
    pub warranties: Vec<Warranty>,
    pub tasks: Vec<CareTask>,
    pub access_log: Vec<pii_read::Model>,
    pub exported_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct SurveyInput {
    pub customer_id: String,
    pub subject: SurveySubject,
    pub subject_id: String,
    pub csat: u8,
    pub comment: String,
}

#[derive(Debug, Clone)]
pub struct QualityReport {
    pub week_start: DateTime<Utc>,
    pub by_fault_type: Vec<QualityCount>,
    pub by_product_line: Vec<QualityCount>,
    pub by_region: Vec<QualityCount>,
    pub top_movers: Vec<QualityCount>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NoticeResult {
    pub notice_id: String,
    pub customer_ids: Vec<String>,
}

pub struct CareCore {
    db: DatabaseConnection,
    vault: Vault,
    queue: DeadlineQueue,
    relay_nudge: Arc<Notify>,
    tickets: TicketsPort,
    rules: CareRules,
}

impl CareCore {
    pub fn new(
        db: DatabaseConnection,
        vault: Vault,
        queue: DeadlineQueue,
        relay_nudge: Arc<Notify>,
        tickets: TicketsPort,
        rules: CareRules,
    ) -> Self {
        Self {
            db,
            vault,
            queue,
            relay_nudge,
            tickets,
            rules,
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn rules(&self) -> &CareRules {
        &self.rules
    }

    // ---- profiles ----------------------------------------------------------------------

    fn seal(&self, c: &Customer) -> Result<customer_row::Model, CareError> {
        let seal = |field: &str, value: &str| self.vault.seal(&c.id, field, value);
        Ok(customer_row::Model {
            id: c.id.clone(),
            name: c.name.clone(),
            region_code: c.region_code.clone(),
            key_id: self.vault.active_key_id().to_owned(),
            phone_sealed: seal("phone", &c.contact.phone)?,
            email_sealed: seal("email", &c.contact.email)?,
            address_sealed: seal("address", &c.contact.address)?,
            phone_hash: self.vault.phone_hash(&c.contact.phone),
            tier: c.tier.as_str().to_owned(),
            purchases: aftersales_platform::db::to_json(&c.purchases)?,
            anonymised: c.anonymised,
            created_at: c.created_at,
            updated_at: c.updated_at,
            last_activity_at: c.last_activity_at,
        })
    }

    fn open(&self, row: &customer_row::Model) -> Result<Customer, CareError> {
        let open = |field: &str, sealed: &str| self.vault.open(&row.key_id, &row.id, field, sealed);
        Ok(Customer {
            id: row.id.clone(),
            name: row.name.clone(),
            contact: Contact {
                phone: open("phone", &row.phone_sealed)?,
                email: open("email", &row.email_sealed)?,
                address: open("address", &row.address_sealed)?,
            },
            region_code: row.region_code.clone(),
            purchases: aftersales_platform::db::from_json("customer", &row.purchases)?,
            tier: parse_code("customer tier", &row.tier)?,
            anonymised: row.anonymised,
            created_at: row.created_at,
            updated_at: row.updated_at,
            last_activity_at: row.last_activity_at,
        })
    }

    async fn tier_rules<C: ConnectionTrait>(&self, conn: &C) -> Result<TierRules, CareError> {
        Ok(store::get_setting(conn, TIER_RULES)
            .await?
            .unwrap_or_else(TierRules::default_rules))
    }

    /// Creates or replaces a profile; the answer is masked (the writer already knows it).
    pub async fn upsert_customer(
        &self,
        input: CustomerInput,
        idem: Option<&Idempotency>,
    ) -> Result<Shown, CareError> {
        once_more_after_a_twin(idem, || async {
            let now = db_now();
            let txn = self.db.begin().await?;
            if let Some(id) = recall_json::<_, String>(&txn, UPSERT_CUSTOMER_SCOPE, idem).await? {
                txn.rollback().await?;
                return self.masked(&id).await;
            }
            let existing = match store::get_customer(&txn, &input.id, true).await? {
                Some(row) => Some(self.open(&row)?),
                None => None,
            };
            let rules = self.tier_rules(&txn).await?;
            let tier = rules.tier_of(&input.purchases);
            let customer = Customer {
                id: input.id.clone(),
                name: input.name.clone(),
                contact: input.contact.clone(),
                region_code: input.region_code.clone(),
                purchases: input.purchases.clone(),
                tier,
                anonymised: false,
                created_at: existing.as_ref().map_or(now, |c| c.created_at),
                updated_at: now,
                last_activity_at: now,
            };
            store::save_customer(&txn, self.seal(&customer)?).await?;
            let previous = existing.as_ref().map(|c| c.tier);
            if previous != Some(tier) {
                let event = events::tier_changed(&customer.id, previous, tier, now);
                aftersales_eventbus::outbox::enqueue(&txn, vec![event], now).await?;
            }
            remember_json(&txn, UPSERT_CUSTOMER_SCOPE, idem, &customer.id, now).await?;
            txn.commit().await?;
            self.relay_nudge.notify_one();
            Ok(Shown {
                contact: customer.contact.masked(),
                customer,
                unmasked: false,
            })
        })
        .await
    }

    async fn masked(&self, id: &str) -> Result<Shown, CareError> {
        let customer = self.load_customer(id).await?;
        Ok(Shown {
            contact: customer.contact.masked(),
            customer,
            unmasked: false,
        })
    }

    async fn load_customer(&self, id: &str) -> Result<Customer, CareError> {
        let row = store::get_customer(&self.db, id, false)
            .await?
            .ok_or_else(|| not_found("customer", id))?;
        self.open(&row)
    }

    /// A profile by id or phone, masked unless the reader holds `pii:read`; an unmasked
    /// read is written to the audit log before it is answered.
    pub async fn get_customer(
        &self,
        id: Option<&str>,
        phone: Option<&str>,
        reader: &Reader,
    ) -> Result<Shown, CareError> {
        let row = match (id, phone) {
            (Some(id), _) => store::get_customer(&self.db, id, false)
                .await?
                .ok_or_else(|| not_found("customer", id))?,
            (None, Some(phone)) => {
                store::customer_by_phone_hash(&self.db, &self.vault.phone_hash(phone))
                    .await?
                    .ok_or_else(|| not_found("customer with phone", "(given)"))?
            }
            (None, None) => {
                return Err(DomainError::invalid("customer_id", "or phone is required").into());
            }
        };
        let customer = self.open(&row)?;
        if !reader.may_read_pii() {
            return Ok(Shown {
                contact: customer.contact.masked(),
                customer,
                unmasked: false,
            });
        }
        self.audit(&self.db, &customer, reader, "GetCustomer")
            .await?;
        Ok(Shown {
            contact: customer.contact.clone(),
            customer,
            unmasked: true,
        })
    }

    async fn audit<C: ConnectionTrait>(
        &self,
        conn: &C,
        customer: &Customer,
        reader: &Reader,
        operation: &str,
    ) -> Result<(), CareError> {
        store::record_pii_read(
            conn,
            pii_read::Model {
                id: new_id(),
                customer_id: customer.id.clone(),
                actor_id: reader.actor.id.clone(),
                actor_role: reader.actor.role.clone(),
                purpose: reader.purpose.clone(),
                operation: operation.to_owned(),
                fields: customer.contact.present_fields().join(","),
                read_at: db_now(),
            },
        )
        .await?;
        Ok(())
    }

    pub async fn timeline(
        &self,
        customer_id: &str,
        before: Option<&str>,
        size: u64,
    ) -> Result<(Vec<timeline::Model>, Option<String>), CareError> {
        let page = store::timeline_page(&self.db, customer_id, before, size + 1).await?;
        Ok(paged(page, size, |t| t.id.clone()))
    }

    // ---- follow-ups --------------------------------------------------------------------

    pub async fn list_follow_ups(
        &self,
        filter: &FollowUpFilter,
        before: Option<&str>,
        size: u64,
    ) -> Result<(Vec<FollowUp>, Option<String>), CareError> {
        let page = store::list_follow_ups(&self.db, filter, before, size + 1).await?;
        Ok(paged(page, size, |f| f.id.clone()))
    }

    pub async fn get_follow_up(&self, id: &str) -> Result<FollowUp, CareError> {
        store::load_follow_up(&self.db, id, false)
            .await?
            .ok_or_else(|| not_found("follow-up", id))
    }

    /// Records the visit; an unsolved or unsatisfied customer gets the ticket reopened.
    pub async fn record_follow_up(
        &self,
        id: &str,
        outcome: Outcome,
        idem: Option<&Idempotency>,
    ) -> Result<FollowUp, CareError> {
        let recorded = once_more_after_a_twin(idem, || async {
            let now = db_now();
            let txn = self.db.begin().await?;
            if recall_json::<_, String>(&txn, RECORD_FOLLOW_UP_SCOPE, idem)
                .await?
                .is_some()
            {
                txn.rollback().await?;
                return self.get_follow_up(id).await;
            }
            let mut follow_up = store::load_follow_up(&txn, id, true)
                .await?
                .ok_or_else(|| not_found("follow-up", id))?;
            let outcome = Outcome {
                recorded_at: now,
                ..outcome.clone()
            };
            follow_up.record(outcome.clone())?;
            store::save_follow_up(&txn, &follow_up).await?;
            let summary = match (outcome.reached, follow_up.reopen_requested) {
                (false, _) => "follow-up: customer not reached".to_owned(),
                (true, true) => "follow-up: not solved or not satisfied, ticket reopened".to_owned(),
                (true, false) => "follow-up: solved and satisfied".to_owned(),
            };
            own_entry(&txn, &follow_up.customer_id, TimelineKind::FollowUp, &follow_up.id, "care.FollowUpRecorded", summary, now)
                .await?;
            let event = events::follow_up_recorded(&follow_up, now);
            aftersales_eventbus::outbox::enqueue(&txn, vec![event], now).await?;
            remember_json(&txn, RECORD_FOLLOW_UP_SCOPE, idem, &follow_up.id, now).await?;
            txn.commit().await?;
            self.relay_nudge.notify_one();
            if let Err(err) = self.queue.cancel(&[format!("{FOLLOW_UP_MEMBER}{id}")]).await {
                tracing::debug!(error = %err, "unscheduling a recorded follow-up failed; the worker skips it");
            }
            Ok(follow_up)
        })
        .await?;
        if recorded.reopen_pending() {
            return self.reopen(recorded).await;
        }
        Ok(recorded)
    }

    /// Asks tickets to reopen; on failure the worker asks again.
    async fn reopen(&self, follow_up: FollowUp) -> Result<FollowUp, CareError> {
        let reason = format!(
            "follow-up {}: customer not solved or not satisfied",
            follow_up.id
        );
        match self.tickets.reopen(&follow_up.ticket_id, &reason).await {
            Ok(result) => {
                if let Reopen::Settled(why) = &result {
                    tracing::info!(ticket_id = %follow_up.ticket_id, %why, "ticket needs no reopen");
                }
                self.mark_reopened(&follow_up.id).await
            }
            Err(err) => {
                tracing::warn!(error = %err, ticket_id = %follow_up.ticket_id, "reopening the ticket failed; retrying later");
                let member = format!("{REOPEN_MEMBER}{}", follow_up.id);
                let at = (db_now() + REOPEN_RETRY).timestamp_millis();
                if let Err(err) = self.queue.schedule(&[(member, at)]).await {
                    tracing::warn!(error = %err, "scheduling the reopen retry failed; reconcile restores it");
                }
                Ok(follow_up)
            }
        }
    }

    async fn mark_reopened(&self, id: &str) -> Result<FollowUp, CareError> {
        let txn = self.db.begin().await?;
        let mut follow_up = store::load_follow_up(&txn, id, true)
            .await?
            .ok_or_else(|| not_found("follow-up", id))?;
        follow_up.ticket_reopened = true;
        store::save_follow_up(&txn, &follow_up).await?;
        txn.commit().await?;
        if let Err(err) = self.queue.cancel(&[format!("{REOPEN_MEMBER}{id}")]).await {
            tracing::debug!(error = %err, "unscheduling a done reopen failed; the worker skips it");
        }
        Ok(follow_up)
    }

    /// A follow-up due time passed, or a reopen is to be retried.
    pub async fn fire(&self, member: &str) -> Result<(), CareError> {
        if let Some(id) = member.strip_prefix(REOPEN_MEMBER) {
            let Some(follow_up) = store::load_follow_up(&self.db, id, false).await? else {
                return Ok(());
            };
            if follow_up.reopen_pending() {
                // Still failing, `reopen` schedules the next attempt itself.
                self.reopen(follow_up).await?;
            }
            return Ok(());
        }
        let Some(id) = member.strip_prefix(FOLLOW_UP_MEMBER) else {
            tracing::warn!(member, "unknown member on the care queue; dropping it");
            return Ok(());
        };
        let now = db_now();
        let txn = self.db.begin().await?;
        let Some(mut follow_up) = store::load_follow_up(&txn, id, true).await? else {
            txn.rollback().await?;
            return Ok(());
        };
        if !follow_up.lapse(now) {
            txn.rollback().await?;
            if follow_up.status == FollowUpStatus::Pending {
                // Fired early (a clock skew): put it back for its due time.
                let member = (member.to_owned(), follow_up.due_at.timestamp_millis());
                if let Err(err) = self.queue.schedule(&[member]).await {
                    tracing::warn!(error = %err, "rescheduling a follow-up failed");
                }
            }
            return Ok(());
        }
        store::save_follow_up(&txn, &follow_up).await?;
        let event = events::follow_up_overdue(&follow_up, now);
        aftersales_eventbus::outbox::enqueue(&txn, vec![event], now).await?;
        txn.commit().await?;
        self.relay_nudge.notify_one();
        Ok(())
    }

    /// Puts every pending follow-up and unconfirmed reopen back on the schedule.
    pub async fn reconcile(&self, queue: &DeadlineQueue) -> Result<u64, CareError> {
        const PAGE: u64 = 5_000;
        let mut count = 0;
        let mut after = String::new();
        loop {
            let page = store::follow_ups_to_watch(&self.db, &after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            let now = db_now().timestamp_millis();
            let items: Vec<(String, i64)> = page
                .iter()
                .map(|f| {
                    if f.reopen_pending() {
                        (format!("{REOPEN_MEMBER}{}", f.id), now)
                    } else {
                        (
                            format!("{FOLLOW_UP_MEMBER}{}", f.id),
                            f.due_at.timestamp_millis(),
                        )
                    }
                })
                .collect();
            queue.schedule(&items).await.map_err(|e| {
                CareError::Db(sea_orm::DbErr::Custom(format!("deadline queue: {e}")))
            })?;
            count += items.len() as u64;
        }
        Ok(count)
    }

    // ---- surveys -----------------------------------------------------------------------

    pub async fn record_survey(
        &self,
        input: SurveyInput,
        idem: Option<&Idempotency>,
    ) -> Result<survey::Model, CareError> {
        once_more_after_a_twin(idem, || async {
            let now = db_now();
            let txn = self.db.begin().await?;
            if let Some(id) = recall_json::<_, String>(&txn, RECORD_SURVEY_SCOPE, idem).await? {
                txn.rollback().await?;
                return store::get_survey(&self.db, &id)
                    .await?
                    .ok_or_else(|| not_found("survey", &id));
            }
            let row = survey::Model {
                id: new_id(),
                customer_id: input.customer_id.clone(),
                subject: input.subject.as_str().to_owned(),
                subject_id: input.subject_id.clone(),
                csat: i32::from(input.csat),
                comment: input.comment.clone(),
                recorded_at: now,
            };
            store::insert_survey(&txn, row.clone()).await?;
            let summary = format!(
                "survey on {} {}: CSAT {}",
                input.subject, input.subject_id, input.csat
            );
            own_entry(
                &txn,
                &input.customer_id,
                TimelineKind::Survey,
                &row.id,
                "care.SurveyRecorded",
                summary,
                now,
            )
            .await?;
            remember_json(&txn, RECORD_SURVEY_SCOPE, idem, &row.id, now).await?;
            txn.commit().await?;
            Ok(row)
        })
        .await
    }

    // ---- proactive care ----------------------------------------------------------------

    pub async fn upsert_warranty(
        &self,
        warranty: Warranty,
        idem: Option<&Idempotency>,
    ) -> Result<Warranty, CareError> {
        warranty.validate()?;
        once_more_after_a_twin(idem, || async {
            let now = db_now();
            let txn = self.db.begin().await?;
            if let Some(id) = recall_json::<_, String>(&txn, UPSERT_WARRANTY_SCOPE, idem).await? {
                txn.rollback().await?;
                return store::get_warranty(&self.db, &id)
                    .await?
                    .ok_or_else(|| not_found("warranty", &id));
            }
            let customer = store::get_customer(&txn, &warranty.customer_id, false)
                .await?
                .ok_or_else(|| not_found("customer", &warranty.customer_id))?;
            let mut w = warranty.clone();
            if w.id.is_empty() {
                w.id = new_id();
            } else if let Some(known) = store::get_warranty(&txn, &w.id).await?
                && known.customer_id != w.customer_id
            {
                return Err(DomainError::invalid(
                    "customer_id",
                    "differs from the warranty's customer",
                )
                .into());
            }
            let tier = parse_code("customer tier", &customer.tier)?;
            store::save_warranty(&txn, &w, now).await?;
            store::drop_future_tasks(&txn, &w.id, now).await?;
            store::add_tasks(
                &txn,
                w.reminders(self.rules.reminder_days_before, tier, now),
            )
            .await?;
            remember_json(&txn, UPSERT_WARRANTY_SCOPE, idem, &w.id, now).await?;
            txn.commit().await?;
            Ok(w)
        })
        .await
    }

    pub async fn list_tasks(
        &self,
        filter: &TaskFilter,
        before: Option<&str>,
        size: u64,
    ) -> Result<(Vec<CareTask>, Option<String>), CareError> {
        let page = store::list_tasks(&self.db, filter, before, size + 1).await?;
        Ok(paged(page, size, |t| t.id.clone()))
    }

    /// One notice task per customer of the region with an open ticket or repair job.
    pub async fn broadcast_notice(
        &self,
        region_code: &str,
        reason: &str,
        message: &str,
        idem: Option<&Idempotency>,
    ) -> Result<NoticeResult, CareError> {
        once_more_after_a_twin(idem, || async {
            let now = db_now();
            let txn = self.db.begin().await?;
            if let Some(done) = recall_json::<_, NoticeResult>(&txn, BROADCAST_SCOPE, idem).await? {
                txn.rollback().await?;
                return Ok(done);
            }
            let in_region: Vec<String> = store::customers_in_region(&txn, region_code)
                .await?
                .into_iter()
                .map(|c| c.id)
                .collect();
            let affected = store::customers_with_open_work(&txn, &in_region).await?;
            let notice_id = new_id();
            let tasks = affected
                .iter()
                .map(|customer| {
                    CareTask::new(
                        customer,
                        TaskKind::Notice,
                        &notice_id,
                        now,
                        format!("{reason}: {message}"),
                        false,
                        now,
                    )
                })
                .collect();
            let added = store::add_tasks(&txn, tasks).await?;
            for task in &added {
                own_entry(
                    &txn,
                    &task.customer_id,
                    TimelineKind::CareTask,
                    &task.id,
                    "care.NoticeSent",
                    format!("notice: {reason}"),
                    now,
                )
                .await?;
            }
            let result = NoticeResult {
                notice_id,
                customer_ids: added.into_iter().map(|t| t.customer_id).collect(),
            };
            remember_json(&txn, BROADCAST_SCOPE, idem, &result, now).await?;
            txn.commit().await?;
            Ok(result)
        })
        .await
    }

    // ---- analytics ---------------------------------------------------------------------

    pub async fn kpis(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        by: KpiDimension,
    ) -> Result<Vec<KpiGroup>, CareError> {
        let tickets = store::tickets_created(&self.db, from, to).await?;
        let mut customers: Vec<String> = tickets
            .iter()
            .filter(|t| t.is_complaint())
            .map(|t| t.customer_id.clone())
            .collect();
        customers.sort();
        customers.dedup();
        let history = store::tickets_of_customers(
            &self.db,
            &customers,
            from - Duration::days(REPEAT_WINDOW_DAYS),
            to,
        )
        .await?;
        let follow_ups = store::follow_ups_resolved(&self.db, from, to).await?;
        let surveys = store::surveys_recorded(&self.db, from, to).await?;
        let jobs = store::jobs_created(&self.db, from, to).await?;

        // Dimensions of the tickets that follow-ups, surveys and jobs belong to.
        let mut linked: Vec<String> = follow_ups.iter().map(|f| f.ticket_id.clone()).collect();
        linked.extend(jobs.iter().map(|j| j.ticket_id.clone()));
        linked.extend(
            surveys
                .iter()
                .filter(|s| s.subject == SurveySubject::Ticket.as_str())
                .map(|s| s.subject_id.clone()),
        );
        linked.sort();
        linked.dedup();
        let dims: HashMap<String, Dims> = store::tickets_by_id(&self.db, &linked)
            .await?
            .into_iter()
            .map(|t| (t.ticket_id, t.dims))
            .collect();
        let job_ticket: HashMap<&str, &str> = jobs
            .iter()
            .map(|j| (j.job_id.as_str(), j.ticket_id.as_str()))
            .collect();
        let dims_of = |ticket_id: &str| dims.get(ticket_id).cloned().unwrap_or_default();

        let mut scores: Vec<(Dims, u8)> = surveys
            .iter()
            .map(|s| {
                let ticket = match s.subject.parse::<SurveySubject>() {
                    Ok(SurveySubject::Ticket) => s.subject_id.as_str(),
                    Ok(SurveySubject::RepairJob) => {
                        job_ticket.get(s.subject_id.as_str()).copied().unwrap_or("")
                    }
                    _ => "",
                };
                (dims_of(ticket), u8::try_from(s.csat).unwrap_or(0))
            })
            .collect();
        for f in &follow_ups {
            if let Some(score) = f.outcome.as_ref().and_then(|o| o.csat) {
                scores.push((dims_of(&f.ticket_id), score));
            }
        }
        let input = KpiInput {
            tickets,
            complaint_history: history,
            scores,
            follow_ups: follow_ups
                .iter()
                .map(|f| (dims_of(&f.ticket_id), f.within_window()))
                .collect(),
            jobs: jobs
                .iter()
                .filter(|j| j.completed_at.is_some())
                .map(|j| {
                    let mut d = dims_of(&j.ticket_id);
                    d.product_line = Some(j.product_line.clone())
                        .filter(|p| !p.is_empty())
                        .or(d.product_line);
                    d.region = Some(j.region.clone())
                        .filter(|r| !r.is_empty())
                        .or(d.region);
                    JobFact {
                        dims: d,
                        fixed: j.fixed,
                        repeated: j.repeated,
                    }
                })
                .collect(),
        };
        Ok(kpi::compute(&input, by))
    }

    pub async fn quality_report(
        &self,
        week_of: DateTime<Utc>,
        top: usize,
    ) -> Result<QualityReport, CareError> {
        let start = quality::week_start(week_of);
        let week = Duration::days(7);
        let this: Vec<TicketFact> = store::tickets_created(&self.db, start, start + week)
            .await?
            .into_iter()
            .filter(TicketFact::is_complaint)
            .collect();
        let last: Vec<TicketFact> = store::tickets_created(&self.db, start - week, start)
            .await?
            .into_iter()
            .filter(TicketFact::is_complaint)
            .collect();
        let keys = |tickets: &[TicketFact], by: KpiDimension| -> Vec<String> {
            tickets.iter().map(|t| t.dims.key(by)).collect()
        };
        let compare = |by| quality::compare(&keys(&this, by), &keys(&last, by));
        let by_fault_type = compare(KpiDimension::Category);
        let by_product_line = compare(KpiDimension::ProductLine);
        let by_region = compare(KpiDimension::Region);
        let top_movers = quality::top_movers(
            &[
                ("fault_type", &by_fault_type),
                ("product_line", &by_product_line),
                ("region", &by_region),
            ],
            top,
        );
        Ok(QualityReport {
            week_start: start,
            by_fault_type,
            by_product_line,
            by_region,
            top_movers,
        })
    }

    // ---- data rights -------------------------------------------------------------------

    /// Every record about one customer, unmasked: needs `pii:read`, and is audited.
    pub async fn export(
        &self,
        customer_id: &str,
        reader: &Reader,
    ) -> Result<CustomerData, CareError> {
        if !reader.may_read_pii() {
            return Err(CareError::PiiForbidden("an export"));
        }
        let customer = self.load_customer(customer_id).await?;
        self.audit(&self.db, &customer, reader, "ExportCustomerData")
            .await?;
        let filter = TaskFilter {
            customer_id: Some(customer_id.to_owned()),
            ..Default::default()
        };
        Ok(CustomerData {
            timeline: store::timeline_page(&self.db, customer_id, None, u64::MAX >> 1).await?,
            follow_ups: store::follow_ups_of(&self.db, customer_id).await?,
            surveys: store::surveys_of(&self.db, customer_id).await?,
            warranties: store::warranties_of(&self.db, customer_id).await?,
            tasks: store::list_tasks(&self.db, &filter, None, u64::MAX >> 1).await?,
            access_log: store::pii_reads_of(&self.db, customer_id).await?,
            exported_at: db_now(),
            customer,
        })
    }

    /// Anonymises customers with no activity since `as_of - retention`: contact fields,
    /// name and free-text comments go; ids, tiers and the facts behind the KPIs stay.
    /// A row that does not open (its key is no longer configured, or a field was
    /// altered) is logged by id and left for an operator; the run goes on past it.
    pub async fn anonymise_inactive(&self, as_of: DateTime<Utc>) -> Result<u64, CareError> {
        let before = as_of - self.rules.retention;
        let mut count = 0;
        let mut after = String::new();
        loop {
            let ids = store::inactive_customers(&self.db, before, &after, 100).await?;
            let Some(last) = ids.last() else { break };
            after = last.clone();
            for id in ids {
                if self.anonymise(&id, before).await? {
                    count += 1;
                }
            }
        }
        if count > 0 {
            self.relay_nudge.notify_one();
        }
        Ok(count)
    }

    /// Anonymises one customer if it is still inactive since `before`; whether it did. A
    /// row that does not open is logged by id and left as it is.
    async fn anonymise(&self, id: &str, before: DateTime<Utc>) -> Result<bool, CareError> {
        let txn = self.db.begin().await?;
        let Some(row) = store::get_customer(&txn, id, true)
            .await?
            .filter(|row| !row.anonymised && row.last_activity_at < before)
        else {
            txn.rollback().await?;
            return Ok(false);
        };
        let mut customer = match self.open(&row) {
            Ok(customer) => customer,
            Err(err) => {
                txn.rollback().await?;
                // A vault error names the key id or the field, never the content; other
                // errors may quote stored data, so they are not logged.
                let reason = match err {
                    CareError::Vault(err) => err.to_string(),
                    _ => "stored data does not decode".to_owned(),
                };
                tracing::warn!(
                    customer_id = %id,
                    %reason,
                    "retention cannot open this customer's row; skipping it"
                );
                return Ok(false);
            }
        };
        let now = db_now();
        customer.name = ANONYMISED_NAME.into();
        customer.contact = Contact::default();
        customer.anonymised = true;
        customer.updated_at = now;
        store::save_customer(&txn, self.seal(&customer)?).await?;
        store::clear_comments(&txn, id).await?;
        aftersales_eventbus::outbox::enqueue(&txn, vec![events::customer_anonymised(id, now)], now)
            .await?;
        txn.commit().await?;
        Ok(true)
    }

    // ---- tiers -------------------------------------------------------------------------

    /// Replaces the rules and moves every customer to the tier they now give.
    pub async fn upsert_tier_rules(&self, mut rules: TierRules) -> Result<TierRules, CareError> {
        rules.validate()?;
        let now = db_now();
        let txn = self.db.begin().await?;
        let current = self.tier_rules(&txn).await?;
        rules.version = current.version + 1;
        store::put_setting(&txn, TIER_RULES, &rules, now).await?;
        let mut after = String::new();
        loop {
            let page = store::customers_after(&txn, &after, 500).await?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            let mut changes = Vec::new();
            for mut row in page {
                let purchases: PurchaseStats =
                    aftersales_platform::db::from_json("customer", &row.purchases)?;
                let was: crate::domain::Tier = parse_code("customer tier", &row.tier)?;
                let now_tier = rules.tier_of(&purchases);
                if was != now_tier && !row.anonymised {
                    changes.push(events::tier_changed(&row.id, Some(was), now_tier, now));
                    row.tier = now_tier.as_str().to_owned();
                    row.updated_at = now;
                    store::save_customer(&txn, row).await?;
                }
            }
            aftersales_eventbus::outbox::enqueue(&txn, changes, now).await?;
        }
        txn.commit().await?;
        self.relay_nudge.notify_one();
        Ok(rules)
    }
}

/// A calendar date from "YYYY-MM-DD".
pub fn parse_date(field: &str, text: &str) -> Result<NaiveDate, DomainError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| DomainError::invalid(field, "must be a date YYYY-MM-DD"))
}

/// A page cut to `size` and the id to continue before, if more exist.
fn paged<T>(mut page: Vec<T>, size: u64, id: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
    let next = (page.len() as u64 > size).then(|| {
        page.truncate(size as usize);
        page.last().map(&id)
    });
    (page, next.flatten())
}
