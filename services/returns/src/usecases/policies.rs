//! Return policies per product line: the national default seeded on start, and staff's
//! changes.

use aftersales_runtime::command::Remembered;

use crate::{
    domain::eligibility::{DEFAULT_PRODUCT_LINE, ReturnPolicy},
    error::ReturnsError,
    store,
};

use super::ReturnsCore;

impl ReturnsCore {
    /// Seeds the national default policy into an empty database.
    pub async fn ensure_defaults(&self) -> Result<(), ReturnsError> {
        let default = ReturnPolicy::default_for(DEFAULT_PRODUCT_LINE);
        store::put_policy(self.db(), &default, false, self.pipeline.now()).await?;
        Ok(())
    }

    /// Stores a policy, replacing the product line's current one.
    pub async fn upsert_policy(&self, policy: ReturnPolicy) -> Result<ReturnPolicy, ReturnsError> {
        policy.validate()?;
        let cmd = self
            .pipeline
            .begin_unkeyed("returns.UpsertReturnPolicy")
            .await?;
        store::put_policy(cmd.txn(), &policy, true, cmd.now()).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&policy.product_line))
            .await?;
        Ok(policy)
    }
}
