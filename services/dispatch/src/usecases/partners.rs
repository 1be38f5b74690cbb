//! The repair-partner network: registering a partner (keyed by the caller's idempotency
//! key), changing its spec under optimistic versioning, reading and listing partners.

use aftersales_platform::idempotency::Idempotency;
use aftersales_runtime::command::{Begun, Remembered};

use crate::{
    domain::{
        Actor,
        listing::PartnerFilter,
        new_id,
        partner::{Partner, PartnerSpec},
    },
    error::{DispatchError, not_found},
    store,
};

use super::{DispatchCore, forbid_partner, paged, replayed};

const REGISTER_SCOPE: &str = "dispatch.RegisterPartner";
const UPDATE_SCOPE: &str = "dispatch.UpdatePartner";

impl DispatchCore {
    /// Registers a partner. A retry with the same key answers with the partner the first
    /// attempt registered, as it is now.
    pub async fn register_partner(
        &self,
        spec: PartnerSpec,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<Partner, DispatchError> {
        forbid_partner(actor, "register partners")?;
        spec.validate()?;
        self.pipeline
            .keyed(idem, || async {
                let cmd = match self.pipeline.begin(REGISTER_SCOPE, idem).await? {
                    Begun::Replay(remembered) => {
                        return self.get_partner(replayed(&remembered)?).await;
                    }
                    Begun::Fresh(cmd) => cmd,
                };
                let now = cmd.now();
                let partner = Partner {
                    id: new_id(),
                    spec: spec.clone(),
                    version: 1,
                    created_at: now,
                    updated_at: now,
                };
                store::save_partner(cmd.txn(), &partner).await?;
                cmd.commit(&self.pipeline, &Remembered::id(&partner.id))
                    .await?;
                Ok(partner)
            })
            .await
    }

    /// Replaces a partner's spec; with `expected_version`, only if that is still current.
    pub async fn update_partner(
        &self,
        id: &str,
        spec: PartnerSpec,
        expected_version: Option<u64>,
        actor: &Actor,
    ) -> Result<Partner, DispatchError> {
        forbid_partner(actor, "change partners")?;
        spec.validate()?;
        let cmd = self.pipeline.begin_unkeyed(UPDATE_SCOPE).await?;
        let mut partner = store::get_partner(cmd.txn(), id, true)
            .await?
            .ok_or_else(|| not_found("partner", id))?;
        if let Some(expected) = expected_version
            && expected != partner.version
        {
            return Err(DispatchError::VersionConflict {
                expected,
                actual: partner.version,
            });
        }
        partner.spec = spec;
        partner.version += 1;
        partner.updated_at = cmd.now();
        store::save_partner(cmd.txn(), &partner).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&partner.id))
            .await?;
        Ok(partner)
    }

    pub async fn get_partner(&self, id: &str) -> Result<Partner, DispatchError> {
        store::get_partner(self.db(), id, false)
            .await?
            .ok_or_else(|| not_found("partner", id))
    }

    /// A page of partners, newest first, with the cursor of the next page if there is one.
    pub async fn list_partners(
        &self,
        filter: &PartnerFilter,
        before: Option<&str>,
        size: u64,
    ) -> Result<(Vec<Partner>, Option<String>), DispatchError> {
        let page = store::list_partners(self.db(), filter, before, size + 1).await?;
        Ok(paged(page, size, |p| p.id.clone()))
    }
}
