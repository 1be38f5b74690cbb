//! Endpoints managed by their owners: create (with a new secret), read, list, change
//! (URL, event types, paused or enabled), rotate the secret with an overlap, delete. A
//! partner reaches only its own endpoints; another owner's answer "not found". A URL is
//! checked against the target rules, and its host must resolve only to allowed addresses.

use aftersales_platform::idempotency::Idempotency;
use aftersales_runtime::command::{Begun, Remembered};
use chrono::Duration;

use super::{WebhooksCore, attempt_of, not_before, paged};
use crate::{
    domain::{
        DomainError, Endpoint, EndpointState, Owner, catalogue, invalid, new_id, signing,
        target::{self, Target},
    },
    error::{WebhooksError, not_found},
    store,
};

const CREATE_SCOPE: &str = "webhooks.CreateEndpoint";
const UPDATE_SCOPE: &str = "webhooks.UpdateEndpoint";
const ROTATE_SCOPE: &str = "webhooks.RotateEndpointSecret";
const DELETE_SCOPE: &str = "webhooks.DeleteEndpoint";

/// The overlap of a rotation when none is asked for, and the longest one.
pub const DEFAULT_OVERLAP: Duration = Duration::hours(24);
pub const MAX_OVERLAP: Duration = Duration::days(7);

/// What an update changes; `None` leaves a part as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// Enabled or paused.
    pub state: Option<EndpointState>,
    pub description: Option<String>,
}

/// A new secret from the system's random source.
fn new_secret() -> Result<String, WebhooksError> {
    let mut bytes = [0u8; signing::SECRET_BYTES];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| {
        WebhooksError::Db(sea_orm::DbErr::Custom(
            "the system's random source failed".into(),
        ))
    })?;
    Ok(signing::secret_from_bytes(&bytes))
}

impl WebhooksCore {
    /// The URL checked statically and, unless allow-listed, by resolving its host.
    async fn check_target(&self, url: &str) -> Result<Target, WebhooksError> {
        let allow = self.sender.allow();
        let target = target::check_url(url, allow, "url")?;
        if target.allowed_host || target.ip.is_some() {
            return Ok(target);
        }
        let resolved: Vec<_> = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| invalid("url", format!("{} does not resolve: {e}", target.host)))?
            .collect();
        if resolved.is_empty() {
            return Err(invalid("url", format!("{} does not resolve", target.host)).into());
        }
        if let Some(inside) = resolved
            .iter()
            .find(|a| !target::may_connect(false, a.ip(), allow))
        {
            return Err(invalid(
                "url",
                format!(
                    "{} resolves to {}, which is not a public address",
                    target.host,
                    inside.ip()
                ),
            )
            .into());
        }
        Ok(target)
    }

    pub fn event_types_for(&self, owner: &Owner) -> Vec<&'static str> {
        catalogue::available(owner, aftersales_protos::events::v1::EVENT_TYPES)
    }

    fn check_types(&self, owner: &Owner, types: &[String]) -> Result<Vec<String>, DomainError> {
        catalogue::check(owner, types, aftersales_protos::events::v1::EVENT_TYPES)
    }

    /// Creates an endpoint with a new secret; answers the endpoint and the secret. A retry
    /// with the same key answers the same endpoint and its current secret.
    pub async fn create_endpoint(
        &self,
        owner: &Owner,
        url: &str,
        event_types: &[String],
        description: &str,
        idem: Option<&Idempotency>,
    ) -> Result<Endpoint, WebhooksError> {
        let event_types = self.check_types(owner, event_types)?;
        self.check_target(url).await?;
        self.pipeline
            .keyed(idem, || async {
                let cmd = match self.pipeline.begin(CREATE_SCOPE, idem).await? {
                    Begun::Replay(remembered) => {
                        let id = remembered.first().unwrap_or_default().to_owned();
                        return self.get_endpoint(owner, &id).await;
                    }
                    Begun::Fresh(cmd) => cmd,
                };
                let now = cmd.now();
                let endpoint = Endpoint {
                    id: new_id(),
                    owner: owner.clone(),
                    url: url.to_owned(),
                    event_types: event_types.clone(),
                    state: EndpointState::Enabled,
                    description: description.to_owned(),
                    secret: new_secret()?,
                    previous_secret: None,
                    failing_since: None,
                    disabled_reason: String::new(),
                    created_at: now,
                    updated_at: now,
                };
                store::save_endpoint(cmd.txn(), self.endpoint_row(&endpoint)?).await?;
                cmd.commit(&self.pipeline, &Remembered::id(&endpoint.id))
                    .await?;
                Ok(endpoint)
            })
            .await
    }

    pub async fn get_endpoint(&self, owner: &Owner, id: &str) -> Result<Endpoint, WebhooksError> {
        self.owned_endpoint(self.db(), owner, id, false).await
    }

    /// A page of the owner's endpoints, oldest first.
    pub async fn list_endpoints(
        &self,
        owner: &Owner,
        after: Option<&str>,
        size: u64,
    ) -> Result<(Vec<Endpoint>, Option<String>), WebhooksError> {
        let rows = store::list_endpoints(self.db(), owner.partner_id(), after, size + 1).await?;
        let (rows, next) = paged(rows, size, |r| r.id.clone());
        let endpoints = rows
            .into_iter()
            .map(|row| self.endpoint(row))
            .collect::<Result<_, _>>()?;
        Ok((endpoints, next))
    }

    /// Changes an endpoint. Enabling one (paused, or disabled by the suite) clears its
    /// failure record and puts its pending deliveries back on the schedule.
    pub async fn update_endpoint(
        &self,
        owner: &Owner,
        id: &str,
        change: EndpointChange,
        idem: Option<&Idempotency>,
    ) -> Result<Endpoint, WebhooksError> {
        let event_types = match &change.event_types {
            Some(types) => Some(self.check_types(owner, types)?),
            None => None,
        };
        if let Some(url) = &change.url {
            self.check_target(url).await?;
        }
        if matches!(
            change.state,
            Some(EndpointState::Disabled | EndpointState::Deleted)
        ) {
            return Err(invalid("state", "may be set to enabled or paused").into());
        }
        self.pipeline
            .keyed(idem, || async {
                let mut cmd = match self.pipeline.begin(UPDATE_SCOPE, idem).await? {
                    Begun::Replay(_) => return self.get_endpoint(owner, id).await,
                    Begun::Fresh(cmd) => cmd,
                };
                let mut endpoint = self.owned_endpoint(cmd.txn(), owner, id, true).await?;
                let now = cmd.now();
                if let Some(url) = &change.url {
                    endpoint.url = url.clone();
                }
                if let Some(types) = &event_types {
                    endpoint.event_types = types.clone();
                }
                if let Some(description) = &change.description {
                    endpoint.description = description.clone();
                }
                if let Some(state) = change.state {
                    let enabling =
                        state == EndpointState::Enabled && endpoint.state != EndpointState::Enabled;
                    endpoint.state = state;
                    if enabling {
                        endpoint.failing_since = None;
                        endpoint.disabled_reason.clear();
                        for (delivery_id, at) in store::pending_of(cmd.txn(), id).await? {
                            cmd.schedule(attempt_of(id, &delivery_id), not_before(at, now));
                        }
                    }
                }
                endpoint.updated_at = now;
                store::save_endpoint(cmd.txn(), self.endpoint_row(&endpoint)?).await?;
                cmd.commit(&self.pipeline, &Remembered::id(id)).await?;
                Ok(endpoint)
            })
            .await
    }

    /// A new secret; the current one becomes the previous one, still signed with until
    /// `overlap` has passed (both signatures are sent meanwhile).
    pub async fn rotate_secret(
        &self,
        owner: &Owner,
        id: &str,
        overlap: Option<Duration>,
        idem: Option<&Idempotency>,
    ) -> Result<Endpoint, WebhooksError> {
        let overlap = overlap.unwrap_or(DEFAULT_OVERLAP);
        if overlap > MAX_OVERLAP {
            return Err(invalid("overlap_seconds", "at most 7 days (604800)").into());
        }
        self.pipeline
            .keyed(idem, || async {
                let cmd = match self.pipeline.begin(ROTATE_SCOPE, idem).await? {
                    Begun::Replay(_) => return self.get_endpoint(owner, id).await,
                    Begun::Fresh(cmd) => cmd,
                };
                let mut endpoint = self.owned_endpoint(cmd.txn(), owner, id, true).await?;
                let now = cmd.now();
                let previous = std::mem::replace(&mut endpoint.secret, new_secret()?);
                endpoint.previous_secret = Some((previous, now + overlap));
                endpoint.updated_at = now;
                store::save_endpoint(cmd.txn(), self.endpoint_row(&endpoint)?).await?;
                cmd.commit(&self.pipeline, &Remembered::id(id)).await?;
                Ok(endpoint)
            })
            .await
    }

    /// Deletes an endpoint: nothing more is delivered to it and its pending deliveries
    /// are given up; its log stays readable to operators in the database.
    pub async fn delete_endpoint(
        &self,
        owner: &Owner,
        id: &str,
        idem: Option<&Idempotency>,
    ) -> Result<Endpoint, WebhooksError> {
        self.pipeline
            .keyed(idem, || async {
                let cmd = match self.pipeline.begin(DELETE_SCOPE, idem).await? {
                    Begun::Replay(_) => {
                        let row = store::find_endpoint(self.db(), id)
                            .await?
                            .filter(|row| row.partner_id == owner.partner_id())
                            .ok_or_else(|| not_found("endpoint", id))?;
                        return self.endpoint(row);
                    }
                    Begun::Fresh(cmd) => cmd,
                };
                let mut endpoint = self.owned_endpoint(cmd.txn(), owner, id, true).await?;
                endpoint.state = EndpointState::Deleted;
                endpoint.updated_at = cmd.now();
                store::save_endpoint(cmd.txn(), self.endpoint_row(&endpoint)?).await?;
                store::fail_pending_of(cmd.txn(), id).await?;
                cmd.commit(&self.pipeline, &Remembered::id(id)).await?;
                Ok(endpoint)
            })
            .await
    }
}
