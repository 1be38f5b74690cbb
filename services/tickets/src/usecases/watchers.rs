//! Watchers: users and teams copied on a ticket (keyed by the caller's idempotency key).
//! Adding one already there, or removing one that is not, changes nothing but is still
//! logged as asked; every event of the ticket names its watchers from the next change on.

use aftersales_platform::idempotency::Idempotency;
use aftersales_runtime::command::{Begun, Remembered};

use crate::{
    domain::{Actor, DomainError, ticket::Ticket, watchers::Watcher},
    error::TicketsError,
};

use super::{Audit, PolicyChoice, TicketsCore, replayed};

const ADD_SCOPE: &str = "tickets.AddWatcher";
const REMOVE_SCOPE: &str = "tickets.RemoveWatcher";

/// Which way a watcher command goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Add,
    Remove,
}

impl TicketsCore {
    pub async fn add_watcher(
        &self,
        ticket_id: &str,
        watcher: Watcher,
        actor: &Actor,
        idem: Option<&Idempotency>,
    ) -> Result<Ticket, TicketsError> {
        self.pipeline
            .keyed(idem, || {
                self.change_watchers(Change::Add, ticket_id, &watcher, actor, idem)
            })
            .await
    }

    pub async fn remove_watcher(
        &self,
        ticket_id: &str,
        watcher: Watcher,
        actor: &Actor,
        idem: Option<&Idempotency>,
    ) -> Result<Ticket, TicketsError> {
        self.pipeline
            .keyed(idem, || {
                self.change_watchers(Change::Remove, ticket_id, &watcher, actor, idem)
            })
            .await
    }

    async fn change_watchers(
        &self,
        change: Change,
        ticket_id: &str,
        watcher: &Watcher,
        actor: &Actor,
        idem: Option<&Idempotency>,
    ) -> Result<Ticket, TicketsError> {
        let (scope, action) = match change {
            Change::Add => (ADD_SCOPE, "add_watcher"),
            Change::Remove => (REMOVE_SCOPE, "remove_watcher"),
        };
        let mut cmd = match self.pipeline.begin(scope, idem).await? {
            Begun::Replay(remembered) => return self.get_ticket(replayed(&remembered)?).await,
            Begun::Fresh(cmd) => cmd,
        };
        let audit = Audit::new(actor, action, watcher.to_string());
        let agg = self
            .change(
                &mut cmd,
                ticket_id,
                PolicyChoice::Kept,
                audit,
                |agg, _, now| -> Result<_, DomainError> {
                    let changed = match change {
                        Change::Add => agg.add_watcher(watcher.clone())?,
                        Change::Remove => agg.remove_watcher(watcher),
                    };
                    if changed {
                        agg.ticket.updated_at = now;
                    }
                    // Nothing is published of its own: the next event names the watchers.
                    Ok(Vec::new())
                },
            )
            .await?;
        cmd.commit(&self.pipeline, &Remembered::id(&agg.ticket.id))
            .await?;
        Ok(agg.ticket)
    }
}
