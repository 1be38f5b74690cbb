//! A customer's anonymisation (care's `CustomerAnonymised`): the free text of their tickets
//! — subjects, descriptions, evidence, reply bodies, the reasons in the tickets' history —
//! is replaced with a fixed marker, inside the consumer's transaction. Ids, codes, times
//! and SLA figures stay, so reports keep counting the tickets. Idempotency responses hold
//! only ids ([`aftersales_runtime::command::Remembered`]) and events no free text, so
//! neither needs erasing.

use aftersales_platform::pii::ANONYMISED_TEXT;
use sea_orm::DatabaseTransaction;

use crate::{error::TicketsError, store};

use super::TicketsCore;

/// The history actions whose detail is text someone wrote (the others hold ids).
const FREE_TEXT_ACTIONS: [&str; 4] = ["change_status", "reopen", "escalate", "set_severity"];

impl TicketsCore {
    /// Erases the free text of the customer's tickets in `txn`; returns how many tickets
    /// the customer has. Applying it again changes nothing.
    pub async fn anonymise_customer(
        &self,
        txn: &DatabaseTransaction,
        customer_id: &str,
    ) -> Result<usize, TicketsError> {
        Ok(
            store::erase_customer_text(txn, customer_id, ANONYMISED_TEXT, &FREE_TEXT_ACTIONS)
                .await?,
        )
    }
}
