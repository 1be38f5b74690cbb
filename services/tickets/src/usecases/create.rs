//! Opening a ticket (keyed by the caller's idempotency key, matched to the current SLA
//! policy, its clocks started at once) and reading tickets: one by id through the batched
//! reader, pages of a listing. Also the customer tiers care publishes, which a ticket
//! opened without a tier is matched by.

use aftersales_platform::idempotency::Idempotency;
use aftersales_runtime::command::{Begun, Remembered};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;

use crate::{
    domain::{
        Actor, Tier,
        listing::TicketFilter,
        policy,
        ticket::{NewTicket, Ticket, TicketAggregate},
    },
    error::TicketsError,
    store,
};

use super::{Audit, TicketsCore, masked, not_found, record, replayed};

const CREATE_SCOPE: &str = "tickets.CreateTicket";

impl TicketsCore {
    /// Opens a ticket, its free text masked. A retry with the same key answers with the
    /// ticket the first attempt created, as it is now.
    pub async fn create_ticket(
        &self,
        mut new: NewTicket,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<Ticket, TicketsError> {
        new.subject = masked(&new.subject);
        new.description = masked(&new.description);
        new.evidence = new.evidence.iter().map(|e| masked(e)).collect();
        self.pipeline
            .keyed(idem, || self.try_create_ticket(&new, idem, actor))
            .await
    }

    async fn try_create_ticket(
        &self,
        new: &NewTicket,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<Ticket, TicketsError> {
        let mut cmd = match self.pipeline.begin(CREATE_SCOPE, idem).await? {
            Begun::Replay(remembered) => return self.get_ticket(replayed(&remembered)?).await,
            Begun::Fresh(cmd) => cmd,
        };
        let policies = self.current_policies(cmd.txn()).await?;
        let policy = policy::select(&policies, &new.facts()).ok_or(TicketsError::NoPolicy)?;
        let schedules = self.schedules(cmd.txn(), policy, &[]).await?;
        let (agg, events) = TicketAggregate::open(new.clone(), policy, &schedules, cmd.now());
        store::insert_aggregate(cmd.txn(), &agg).await?;
        let audit = Audit {
            actor,
            action: "create",
            detail: String::new(),
        };
        record(&mut cmd, &agg, &events, audit).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&agg.ticket.id))
            .await?;
        Ok(agg.ticket)
    }

    /// The tier care last published for a customer (tickets created without a tier use
    /// it to match SLA policies).
    pub async fn known_tier(&self, customer_id: &str) -> Result<Option<Tier>, TicketsError> {
        Ok(store::known_tier(self.db(), customer_id).await?)
    }

    /// Records a customer's tier change published by care, inside the consumer's
    /// transaction; an older change than the one recorded changes nothing.
    pub async fn record_tier(
        &self,
        txn: &DatabaseTransaction,
        customer_id: &str,
        tier: Tier,
        changed_at: DateTime<Utc>,
    ) -> Result<(), TicketsError> {
        Ok(store::record_tier(txn, customer_id, tier, changed_at).await?)
    }

    pub async fn get_ticket(&self, id: &str) -> Result<Ticket, TicketsError> {
        self.tickets_by_id
            .get(id.to_owned())
            .await?
            .ok_or_else(|| not_found("ticket", id))
    }

    /// A page of tickets, newest first, and the cursor of the next page if there is one.
    pub async fn list_tickets(
        &self,
        filter: &TicketFilter,
        before_id: Option<&str>,
        page_size: u64,
    ) -> Result<(Vec<Ticket>, Option<String>), TicketsError> {
        let mut tickets = store::list_tickets(self.db(), filter, before_id, page_size + 1).await?;
        let next = (tickets.len() as u64 > page_size).then(|| {
            tickets.truncate(page_size as usize);
            tickets.last().map(|t| t.id.clone())
        });
        Ok((tickets, next.flatten()))
    }
}
