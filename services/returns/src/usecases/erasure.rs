//! A customer's anonymisation (care's `CustomerAnonymised`): the free text of their
//! returns — evidence, reasons, inspection notes, carrier details, history notes — and of
//! their compensations — reasons — is replaced with a fixed marker inside the consumer's
//! transaction, each return or compensation locked while it changes. Ids, lines, amounts, codes and times stay, so figures still add up.
//! Idempotency responses hold only ids and events no free text, so neither needs erasing.

use aftersales_platform::pii::ANONYMISED_TEXT;
use sea_orm::DatabaseTransaction;

use crate::{error::ReturnsError, store};

use super::ReturnsCore;

impl ReturnsCore {
    /// Erases the free text of the customer's returns in `txn`; returns how many returns
    /// the customer has. Applying it again changes nothing.
    pub async fn anonymise_customer(
        &self,
        txn: &DatabaseTransaction,
        customer_id: &str,
    ) -> Result<usize, ReturnsError> {
        let ids = store::return_ids_of_customer(txn, customer_id).await?;
        for id in &ids {
            let Some(mut agg) = store::load_aggregate(txn, id, true).await? else {
                continue;
            };
            agg.rma.erase_free_text(ANONYMISED_TEXT);
            store::save_aggregate(txn, &agg).await?;
        }
        if !ids.is_empty() {
            store::erase_tracking_details(txn, &ids, ANONYMISED_TEXT).await?;
        }
        for id in store::compensation_ids_of_customer(txn, customer_id).await? {
            let Some(mut compensation) = store::get_compensation(txn, &id, true).await? else {
                continue;
            };
            compensation.erase_free_text(ANONYMISED_TEXT);
            store::save_compensation(txn, &compensation).await?;
        }
        Ok(ids.len())
    }
}
