//! SLA policies and business calendars: the handbook's defaults seeded on start (and a
//! database seeded with an older edition moved to the newest, version by version, so
//! tickets keep the versions they were matched to), staff's
//! changes (a policy changes by new versions, and a catch-all policy always remains), and
//! what a rule judges a ticket by: the current policies (cached briefly), the version a
//! ticket was matched to (cached for good: versions never change) and the calendars its
//! clocks run on.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use aftersales_runtime::command::Remembered;
use sea_orm::{ConnectionTrait, TransactionTrait};

use crate::{
    domain::{
        DomainError,
        calendar::{BusinessCalendar, default_calendar},
        clock::SlaClock,
        policy::{SlaPolicy, check_catch_all_remains, upgrades},
        ticket::{Schedules, Ticket},
    },
    error::TicketsError,
    store,
};

use super::TicketsCore;

/// How long another replica's policy change may take to reach new tickets here.
const CURRENT_POLICIES_TTL: Duration = Duration::from_secs(5);

/// The policies this process has read.
#[derive(Default)]
pub(super) struct PolicyCache {
    /// Policy versions never change once written, so they are kept for good.
    versions: RwLock<HashMap<(String, u32), SlaPolicy>>,
    /// The current policies new tickets are matched against, for [`CURRENT_POLICIES_TTL`];
    /// dropped at once when this process changes a policy.
    current: RwLock<Option<(Instant, Arc<Vec<SlaPolicy>>)>>,
}

impl TicketsCore {
    /// Seeds the handbook's default policies and calendar: every default policy a
    /// database lacks, and each newer version of a default staff left as shipped (see
    /// [`upgrades`]). Replicas starting together store each version once. Stored versions
    /// and tickets are never rewritten.
    pub async fn ensure_defaults(&self) -> Result<(), TicketsError> {
        let now = self.now();
        let txn = self.db().begin().await?;
        store::insert_calendar_if_missing(&txn, &default_calendar(), now).await?;
        let current = store::current_policies(&txn).await?;
        let added = upgrades(&current, now);
        for p in &added {
            store::insert_policy_if_missing(&txn, p).await?;
        }
        txn.commit().await?;
        if !added.is_empty()
            && let Ok(mut current) = self.policies.current.write()
        {
            *current = None;
        }
        Ok(())
    }

    pub async fn list_policies(&self) -> Result<Vec<SlaPolicy>, TicketsError> {
        Ok(store::current_policies(self.db()).await?)
    }

    /// Stores a policy as its next version. The same content again changes nothing.
    pub async fn upsert_policy(&self, mut candidate: SlaPolicy) -> Result<SlaPolicy, TicketsError> {
        candidate.validate()?;
        let cmd = self
            .pipeline
            .begin_unkeyed("tickets.UpsertSlaPolicy")
            .await?;
        let current = store::current_policies(cmd.txn()).await?;
        check_catch_all_remains(&current, &candidate)?;
        let wanted: Vec<String> = candidate.calendar_ids().map(str::to_owned).collect();
        let found = store::calendars(cmd.txn(), &wanted).await?;
        if let Some(missing) = wanted.iter().find(|id| !found.iter().any(|c| &c.id == *id)) {
            return Err(DomainError::invalid(
                "policy.*.calendar_id",
                format!("unknown business calendar {missing:?}"),
            )
            .into());
        }
        let previous = current.iter().find(|p| p.id == candidate.id);
        if let Some(previous) = previous {
            let same = SlaPolicy {
                version: previous.version,
                created_at: previous.created_at,
                ..candidate.clone()
            };
            if &same == previous {
                cmd.abandon().await?;
                return Ok(previous.clone());
            }
        }
        candidate.version = previous.map_or(1, |p| p.version + 1);
        candidate.created_at = cmd.now();
        store::insert_policy_version(cmd.txn(), &candidate).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&candidate.id))
            .await?;
        if let Ok(mut current) = self.policies.current.write() {
            *current = None;
        }
        Ok(candidate)
    }

    pub async fn upsert_calendar(
        &self,
        calendar: BusinessCalendar,
    ) -> Result<BusinessCalendar, TicketsError> {
        let cmd = self
            .pipeline
            .begin_unkeyed("tickets.UpsertBusinessCalendar")
            .await?;
        store::upsert_calendar(cmd.txn(), &calendar, cmd.now()).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&calendar.id))
            .await?;
        Ok(calendar)
    }

    /// The current policies, from the short-lived cache or the database.
    pub(super) async fn current_policies<C: ConnectionTrait>(
        &self,
        conn: &C,
    ) -> Result<Arc<Vec<SlaPolicy>>, TicketsError> {
        let cached = self.policies.current.read().ok().and_then(|c| c.clone());
        if let Some((at, policies)) = cached
            && at.elapsed() < CURRENT_POLICIES_TTL
        {
            return Ok(policies);
        }
        let policies = Arc::new(store::current_policies(conn).await?);
        if let Ok(mut current) = self.policies.current.write() {
            *current = Some((Instant::now(), policies.clone()));
        }
        Ok(policies)
    }

    /// The policy version `ticket` was matched to.
    pub(super) async fn policy_of<C: ConnectionTrait>(
        &self,
        conn: &C,
        ticket: &Ticket,
    ) -> Result<SlaPolicy, TicketsError> {
        let key = (ticket.policy_id.clone(), ticket.policy_version);
        if let Some(p) = self
            .policies
            .versions
            .read()
            .ok()
            .and_then(|cache| cache.get(&key).cloned())
        {
            return Ok(p);
        }
        let p = store::policy_version(conn, &key.0, key.1)
            .await?
            .ok_or(TicketsError::NoPolicy)?;
        if let Ok(mut cache) = self.policies.versions.write() {
            cache.insert(key, p.clone());
        }
        Ok(p)
    }

    /// The calendars a policy and a ticket's clocks measure on.
    pub(super) async fn schedules<C: ConnectionTrait>(
        &self,
        conn: &C,
        policy: &SlaPolicy,
        clocks: &[SlaClock],
    ) -> Result<Schedules, TicketsError> {
        self.batch_schedules(conn, std::slice::from_ref(policy), clocks)
            .await
    }

    /// [`Self::schedules`] for several tickets at once: one read for all calendars.
    pub(super) async fn batch_schedules<'c, C: ConnectionTrait>(
        &self,
        conn: &C,
        policies: &[SlaPolicy],
        clocks: impl IntoIterator<Item = &'c SlaClock>,
    ) -> Result<Schedules, TicketsError> {
        let mut ids: Vec<String> = policies
            .iter()
            .flat_map(SlaPolicy::calendar_ids)
            .map(str::to_owned)
            .chain(clocks.into_iter().filter_map(|c| c.calendar_id.clone()))
            .collect();
        ids.sort();
        ids.dedup();
        Ok(Schedules::new(store::calendars(conn, &ids).await?))
    }
}
