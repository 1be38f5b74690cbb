//! Partner API keys: issuing (the clear key is shown once), rotating with an overlap in
//! which both keys work, revoking, listing, and authenticating a presented key for the
//! gateway.

use aftersales_runtime::command::Remembered;
use chrono::Duration;

use crate::{
    domain::{
        Actor, DomainError,
        keys::{self, PartnerKey},
        new_id,
    },
    error::{DispatchError, not_found},
    store,
};

use super::{Cmd, DispatchCore, forbid_partner};

const ISSUE_SCOPE: &str = "dispatch.IssuePartnerKey";
const ROTATE_SCOPE: &str = "dispatch.RotatePartnerKey";
const REVOKE_SCOPE: &str = "dispatch.RevokePartnerKey";

/// How long the old key stays valid after a rotation unless told otherwise.
const DEFAULT_KEY_OVERLAP: Duration = Duration::hours(24);

impl DispatchCore {
    /// A new key for an existing partner: the stored record and the clear key (once).
    pub async fn issue_key(
        &self,
        partner_id: &str,
        label: &str,
        actor: &Actor,
    ) -> Result<(PartnerKey, String), DispatchError> {
        forbid_partner(actor, "issue keys")?;
        let cmd = self.pipeline.begin_unkeyed(ISSUE_SCOPE).await?;
        if store::get_partner(cmd.txn(), partner_id, false)
            .await?
            .is_none()
        {
            cmd.abandon().await?;
            return Err(not_found("partner", partner_id));
        }
        let (key, secret) = insert_key(&cmd, partner_id, label).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&key.id)).await?;
        tracing::info!(partner_id, key_id = %key.id, actor = %actor.id, "partner key issued");
        Ok((key, secret))
    }

    /// A new key, with the old one valid for `overlap` more (both work meanwhile); both
    /// changes in one command.
    pub async fn rotate_key(
        &self,
        key_id: &str,
        overlap: Option<Duration>,
        actor: &Actor,
    ) -> Result<(PartnerKey, String), DispatchError> {
        forbid_partner(actor, "rotate keys")?;
        let cmd = self.pipeline.begin_unkeyed(ROTATE_SCOPE).await?;
        let now = cmd.now();
        let mut old = store::get_key(cmd.txn(), key_id)
            .await?
            .ok_or_else(|| not_found("key", key_id))?;
        if !old.valid_at(now) {
            return Err(
                DomainError::Precondition(format!("key {key_id} is no longer valid")).into(),
            );
        }
        let (new, secret) = insert_key(&cmd, &old.partner_id, &old.label).await?;
        let end = now + overlap.unwrap_or(DEFAULT_KEY_OVERLAP);
        old.expires_at = Some(old.expires_at.map_or(end, |e| e.min(end)));
        store::end_key(cmd.txn(), &old).await?;
        cmd.commit(&self.pipeline, &Remembered::ids([&new.id, &old.id]))
            .await?;
        tracing::info!(partner_id = %new.partner_id, key_id = %new.id, actor = %actor.id, "partner key issued");
        Ok((new, secret))
    }

    /// Revokes a key at once; revoking it again changes nothing.
    pub async fn revoke_key(
        &self,
        key_id: &str,
        actor: &Actor,
    ) -> Result<PartnerKey, DispatchError> {
        forbid_partner(actor, "revoke keys")?;
        let cmd = self.pipeline.begin_unkeyed(REVOKE_SCOPE).await?;
        let mut key = store::get_key(cmd.txn(), key_id)
            .await?
            .ok_or_else(|| not_found("key", key_id))?;
        if key.revoked_at.is_some() {
            cmd.abandon().await?;
            return Ok(key);
        }
        key.revoked_at = Some(cmd.now());
        store::end_key(cmd.txn(), &key).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&key.id)).await?;
        tracing::info!(key_id, partner_id = %key.partner_id, actor = %actor.id, "partner key revoked");
        Ok(key)
    }

    pub async fn list_keys(
        &self,
        partner_id: Option<&str>,
    ) -> Result<Vec<PartnerKey>, DispatchError> {
        Ok(store::keys_of(self.db(), partner_id).await?)
    }

    /// The active partner a presented key belongs to.
    pub async fn authenticate(&self, secret: &str) -> Result<PartnerKey, DispatchError> {
        let now = self.pipeline.now();
        let key = store::key_by_hash(self.db(), &keys::hash(secret))
            .await?
            .filter(|k| k.valid_at(now))
            .ok_or(DispatchError::BadKey)?;
        let partner = store::get_partner(self.db(), &key.partner_id, false).await?;
        if !partner.is_some_and(|p| p.spec.active) {
            return Err(DispatchError::BadKey);
        }
        Ok(key)
    }
}

/// Generates a key for the partner and stores its hash in the command's transaction.
async fn insert_key(
    cmd: &Cmd,
    partner_id: &str,
    label: &str,
) -> Result<(PartnerKey, String), DispatchError> {
    let secret = keys::generate();
    let key = PartnerKey {
        id: new_id(),
        partner_id: partner_id.to_owned(),
        prefix: keys::shown_part(&secret),
        label: label.to_owned(),
        created_at: cmd.now(),
        expires_at: None,
        revoked_at: None,
    };
    store::insert_key(cmd.txn(), &key, &keys::hash(&secret)).await?;
    Ok((key, secret))
}
