//! Who is calling: the API key from the `authorization: Bearer` or `x-api-key` header
//! (HTTP headers and gRPC metadata alike), resolved to a partner by dispatch's
//! `PartnerKeyService`, with positive answers trusted for a short while so every call
//! does not cost a round trip. Revocation therefore takes effect within that while.

use std::{fmt, time::Duration};

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

/// Resolves keys through dispatch, remembering positive answers for `ttl`.
#[derive(Clone)]
pub struct KeyResolver {
    client: PartnerKeyServiceClient<Intercepted>,
    /// Keyed by the SHA-256 of the key, so no clear key sits in memory longer than a call.
    cache: Option<Cache<[u8; 32], Partner>>,
    timeout: Duration,
}

impl KeyResolver {
    /// `ttl` zero asks dispatch on every call (tests of revocation use that).
    pub fn new(
        client: PartnerKeyServiceClient<Intercepted>,
        ttl: Duration,
        timeout: Duration,
    ) -> Self {
        let cache = (!ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(ttl)
                .build()
        });
        Self {
            client,
            cache,
            timeout,
        }
    }

    pub async fn resolve(&self, key: &ApiKey) -> Result<Partner, GatewayError> {
        let digest: [u8; 32] = Sha256::digest(key.0.as_bytes()).into();
        if let Some(partner) = self.cache.as_ref().and_then(|c| c.get(&digest)) {
            return Ok(partner);
        }
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
        let partner = Partner {
            id: resolved.partner_id,
            key_id: resolved.key_id,
        };
        if let Some(cache) = &self.cache {
            cache.insert(digest, partner.clone());
        }
        Ok(partner)
    }
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
