//! Who is calling: the API key from the `authorization: Bearer` or `x-api-key` header
//! (HTTP headers and gRPC metadata alike), resolved to a partner by dispatch's
//! `PartnerKeyService`, with positive answers trusted for a short while so every call
//! does not cost a round trip (revocation therefore takes effect within that while), and
//! refusals remembered for a short while so a repeated bad key costs no round trip either
//! (a key that becomes good again, e.g. its partner reactivated, works after that while).

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use aftersales_protos::dispatch::v1::{
    AuthenticatePartnerKeyRequest, partner_key_service_client::PartnerKeyServiceClient,
};
use http::HeaderMap;
use moka::sync::Cache;
use sha2::{Digest, Sha256};
use tonic::Code;

use crate::{
    core::Intercepted,
    error::{GatewayError, Upstream},
};

/// Keys longer than this are refused without asking dispatch.
const MAX_KEY_LEN: usize = 512;
/// Resolved keys kept at most; older ones make room.
const CACHE_CAPACITY: u64 = 100_000;

/// A presented API key. Never printed: `Debug` hides it.
pub struct ApiKey(String);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The partner a key belongs to, and the key's id (what quotas are counted on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    pub id: String,
    pub key_id: String,
}

/// The key the caller presented. `authorization` wins when both headers are sent; an
/// `authorization` header that is not a bearer token is a bad key, not a missing one.
pub fn api_key(headers: &HeaderMap) -> Result<ApiKey, GatewayError> {
    let raw = if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| GatewayError::BadKey)?.trim();
        let (scheme, token) = value.split_once(' ').ok_or(GatewayError::BadKey)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(GatewayError::BadKey);
        }
        token.trim()
    } else if let Some(value) = headers.get("x-api-key") {
        value.to_str().map_err(|_| GatewayError::BadKey)?.trim()
    } else {
        return Err(GatewayError::MissingKey);
    };
    if raw.is_empty() {
        return Err(GatewayError::MissingKey);
    }
    if raw.len() > MAX_KEY_LEN || !raw.chars().all(|c| c.is_ascii_graphic()) {
        return Err(GatewayError::BadKey);
    }
    Ok(ApiKey(raw.to_owned()))
}

/// How many keys the gateway has asked dispatch about. Cheap to clone; clones share it.
#[derive(Debug, Clone, Default)]
pub struct KeyLookups(Arc<AtomicU64>);

impl KeyLookups {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Resolves keys through dispatch, remembering answers for a while. Both caches are keyed
/// by the SHA-256 of the key, so no clear key sits in memory longer than a call.
#[derive(Clone)]
pub struct KeyResolver {
    client: PartnerKeyServiceClient<Intercepted>,
    /// Keys dispatch accepted.
    cache: Option<Cache<[u8; 32], Partner>>,
    /// Keys dispatch refused (unknown, revoked, expired, partner inactive).
    refused: Option<Cache<[u8; 32], ()>>,
    timeout: Duration,
    lookups: KeyLookups,
}

fn cache<V: Clone + Send + Sync + 'static>(ttl: Duration) -> Option<Cache<[u8; 32], V>> {
    (!ttl.is_zero()).then(|| {
        Cache::builder()
            .max_capacity(CACHE_CAPACITY)
            .time_to_live(ttl)
            .build()
    })
}

impl KeyResolver {
    /// `ttl` zero asks dispatch about every good key (tests of revocation use that);
    /// `refused_ttl` zero asks about every bad one.
    pub fn new(
        client: PartnerKeyServiceClient<Intercepted>,
        ttl: Duration,
        refused_ttl: Duration,
        timeout: Duration,
    ) -> Self {
        Self {
            client,
            cache: cache(ttl),
            refused: cache(refused_ttl),
            timeout,
            lookups: KeyLookups::default(),
        }
    }

    /// The counter of lookups sent to dispatch.
    pub fn lookups(&self) -> KeyLookups {
        self.lookups.clone()
    }

    /// The partner of a key dispatch accepted within the cache window, without asking.
    pub fn cached(&self, key: &ApiKey) -> Option<Partner> {
        self.cache.as_ref().and_then(|c| c.get(&digest(key)))
    }

    /// The key's partner from the caches or, failing them, from dispatch.
    pub async fn resolve(&self, key: &ApiKey) -> Result<Partner, GatewayError> {
        let digest = digest(key);
        if let Some(partner) = self.cache.as_ref().and_then(|c| c.get(&digest)) {
            return Ok(partner);
        }
        if self
            .refused
            .as_ref()
            .is_some_and(|c| c.contains_key(&digest))
        {
            return Err(GatewayError::BadKey);
        }
        match self.look_up(key).await {
            Ok(partner) => {
                if let Some(cache) = &self.cache {
                    cache.insert(digest, partner.clone());
                }
                Ok(partner)
            }
            Err(GatewayError::BadKey) => {
                if let Some(refused) = &self.refused {
                    refused.insert(digest, ());
                }
                Err(GatewayError::BadKey)
            }
            Err(other) => Err(other),
        }
    }

    async fn look_up(&self, key: &ApiKey) -> Result<Partner, GatewayError> {
        self.lookups.add();
        let mut client = self.client.clone();
        let call = client.authenticate_partner_key(AuthenticatePartnerKeyRequest {
            secret: key.0.clone(),
        });
        let answer = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| GatewayError::UpstreamTimeout {
                upstream: Upstream::Dispatch,
                timeout: self.timeout,
            })?;
        let resolved = match answer {
            Ok(response) => response.into_inner(),
            // Whatever dispatch finds wrong with the key itself is one answer to the
            // caller: the key does not open the door.
            Err(status)
                if matches!(
                    status.code(),
                    Code::Unauthenticated
                        | Code::InvalidArgument
                        | Code::NotFound
                        | Code::PermissionDenied
                ) =>
            {
                return Err(GatewayError::BadKey);
            }
            Err(status) => {
                return Err(GatewayError::Upstream {
                    upstream: Upstream::Dispatch,
                    status,
                });
            }
        };
        if resolved.partner_id.is_empty() {
            return Err(GatewayError::BadKey);
        }
        Ok(Partner {
            id: resolved.partner_id,
            key_id: resolved.key_id,
        })
    }
}

fn digest(key: &ApiKey) -> [u8; 32] {
    Sha256::digest(key.0.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn bearer_and_x_api_key_are_both_read() {
        let key = api_key(&headers(&[("authorization", "Bearer pk_abc")])).unwrap();
        assert_eq!(key.0, "pk_abc");
        let key = api_key(&headers(&[("authorization", "bearer  pk_abc ")])).unwrap();
        assert_eq!(key.0, "pk_abc");
        let key = api_key(&headers(&[("x-api-key", "pk_def")])).unwrap();
        assert_eq!(key.0, "pk_def");
        let key = api_key(&headers(&[
            ("authorization", "Bearer pk_abc"),
            ("x-api-key", "pk_def"),
        ]))
        .unwrap();
        assert_eq!(key.0, "pk_abc");
    }

    #[test]
    fn missing_and_malformed_keys_are_told_apart() {
        assert!(matches!(
            api_key(&headers(&[])),
            Err(GatewayError::MissingKey)
        ));
        assert!(matches!(
            api_key(&headers(&[("x-api-key", " ")])),
            Err(GatewayError::MissingKey)
        ));
        assert!(matches!(
            api_key(&headers(&[("authorization", "Basic dXNlcjpwYXNz")])),
            Err(GatewayError::BadKey)
        ));
        assert!(matches!(
            api_key(&headers(&[("authorization", "Bearer")])),
            Err(GatewayError::BadKey)
        ));
        let long = "k".repeat(MAX_KEY_LEN + 1);
        assert!(matches!(
            api_key(&headers(&[("x-api-key", &long)])),
            Err(GatewayError::BadKey)
        ));
    }

    #[test]
    fn a_key_never_shows_in_debug_output() {
        let key = api_key(&headers(&[("x-api-key", "pk_secret")])).unwrap();
        assert!(!format!("{key:?}").contains("pk_secret"));
    }
}
