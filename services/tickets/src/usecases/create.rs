//! Opening a ticket (keyed by the caller's idempotency key, matched to the current SLA
//! policy, its clocks started at once) and reading tickets: one by id through the batched
//! reader, pages of a listing through theirs. Also the customer tiers care publishes,
//! which a ticket opened without a tier is matched by.

use std::{collections::HashMap, sync::Arc};

use aftersales_platform::{coalesce::Coalescer, idempotency::Idempotency};
use aftersales_runtime::command::{Begun, Remembered};
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};

use crate::{
    domain::{
        Actor, Tier, activity,
        listing::TicketFilter,
        policy,
        ticket::{NewTicket, Ticket, TicketAggregate},
    },
    error::TicketsError,
    store,
};

use super::{Audit, TicketsCore, masked, not_found, record, replayed};

const CREATE_SCOPE: &str = "tickets.CreateTicket";
/// Listing queries in flight at once (their distinct queries run side by side).
const PAGE_LANES: usize = 4;
/// Listings answered by one round at most.
const PAGE_BATCH: usize = 64;

/// One listing query: the filter, the cursor, and how many rows to read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct PageQuery {
    filter: TicketFilter,
    before_id: Option<String>,
    limit: u64,
}

/// The listings asked while earlier ones are in the database wait together; each
/// distinct query of the round is read once, by a query that starts after every one of
/// its askers arrived, and its rows are shared by them.
pub(super) fn page_reader(db: DatabaseConnection) -> Coalescer<PageQuery, Arc<Vec<Ticket>>> {
    Coalescer::spawn(PAGE_LANES, PAGE_BATCH, move |queries: Vec<PageQuery>| {
        let db = db.clone();
        async move {
            let reads: Vec<_> = queries
                .into_iter()
                .map(|q| {
                    let db = db.clone();
                    tokio::spawn(async move {
                        let rows =
                            store::list_tickets(&db, &q.filter, q.before_id.as_deref(), q.limit)
                                .await?;
                        Ok::<_, DbErr>((q, Arc::new(rows)))
                    })
                })
                .collect();
            let mut pages = HashMap::with_capacity(reads.len());
            for read in reads {
                let (q, rows) = read
                    .await
                    .map_err(|e| DbErr::Custom(format!("a listing read stopped: {e}")))??;
                pages.insert(q, rows);
            }
            Ok(pages)
        }
    })
}

/// A page of a listing, newest first, and the cursor of the next page if there is one.
/// The rows may be shared with other callers that asked the same.
#[derive(Debug, Clone)]
pub struct TicketPage {
    rows: Arc<Vec<Ticket>>,
    len: usize,
    pub next: Option<String>,
}

impl TicketPage {
    pub fn tickets(&self) -> &[Ticket] {
        &self.rows[..self.len]
    }
}

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
        new.check_reported_at(cmd.now())?;
        let policies = self.current_policies(cmd.txn()).await?;
        let policy = policy::select(&policies, &new.facts()).ok_or(TicketsError::NoPolicy)?;
        let schedules = self.schedules(cmd.txn(), policy, &[]).await?;
        let (mut agg, events) = TicketAggregate::open(new.clone(), policy, &schedules, cmd.now());
        // Opened in a region under an emergency: held from the start, like its others.
        if let Some(region) = &new.product.region_code {
            for incident_id in store::active_emergencies_in(cmd.txn(), region).await? {
                agg.hold(&incident_id, policy, &schedules, cmd.now())?;
            }
        }
        let routed = self
            .route_new(cmd.txn(), &mut agg, &schedules, cmd.now())
            .await?;
        store::insert_aggregate(cmd.txn(), &agg).await?;
        let audit = Audit::new(actor, "create", String::new());
        record(&mut cmd, &agg, &events, audit).await?;
        // Routing has a line of its own, so the log shows what it chose and why.
        if let Some(routed) = routed {
            let system = Actor::system("tickets");
            let audit = Audit {
                changes: activity::changes(&routed.before, &agg.ticket),
                ..Audit::new(&system, "route", routed.detail)
            };
            record(&mut cmd, &agg, &routed.events, audit).await?;
        }
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
    ) -> Result<TicketPage, TicketsError> {
        let query = PageQuery {
            filter: filter.clone(),
            before_id: before_id.map(str::to_owned),
            limit: page_size + 1,
        };
        let rows = self.ticket_pages.get(query).await?.unwrap_or_default();
        let len = rows
            .len()
            .min(usize::try_from(page_size).unwrap_or(usize::MAX));
        let next = (rows.len() > len)
            .then(|| len.checked_sub(1).map(|last| rows[last].id.clone()))
            .flatten();
        Ok(TicketPage { rows, len, next })
    }
}
