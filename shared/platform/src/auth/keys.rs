//! The issuer's signing keys: a fixed set (a development issuer in the same process), or
//! the provider's JWKS — fetched on first use, refetched when a token names a key the
//! cache does not hold (at most once per `min_refetch`, however many such tokens arrive),
//! and refreshed in the background once older than `max_age`, so retired keys go too.
//! When the provider cannot be reached the last good set stays in use.

use std::{
    str::FromStr,
    sync::{Arc, RwLock},
    time::Duration,
};

use chrono::{DateTime, Utc};
use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet},
};
use serde::Deserialize;

use super::{
    AuthError, OidcSettings,
    fetch::{self, FetchError},
    settings::provider_url,
};
use crate::clock::SharedClock;

/// One verification key, with what it may verify.
pub(crate) struct Key {
    kid: Option<String>,
    /// The JWK's `alg`, when it names one.
    alg: Option<Algorithm>,
    kind: Kind,
    pub(crate) decoding: DecodingKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl Key {
    fn from_jwk(jwk: &Jwk) -> Option<Self> {
        let kind = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Kind::Rsa,
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => Kind::P256,
                EllipticCurve::P384 => Kind::P384,
                _ => return None,
            },
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                Kind::Ed25519
            }
            // A symmetric key in a JWKS verifies nothing here (HMAC is never accepted).
            _ => return None,
        };
        let alg = match jwk.common.key_algorithm {
            // A key for encryption (RSA-OAEP…) or an algorithm unknown to us.
            Some(named) => Some(Algorithm::from_str(&named.to_string()).ok()?),
            None => None,
        };
        let key = Self {
            kid: jwk.common.key_id.clone(),
            alg,
            kind,
            decoding: DecodingKey::from_jwk(jwk).ok()?,
        };
        // A key whose own `alg` contradicts its type is unusable.
        alg.is_none_or(|alg| key.fits(alg)).then_some(key)
    }

    /// Whether this key may verify a signature made with `alg`.
    fn fits(&self, alg: Algorithm) -> bool {
        let by_kind = match self.kind {
            Kind::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            Kind::P256 => alg == Algorithm::ES256,
            Kind::P384 => alg == Algorithm::ES384,
            Kind::Ed25519 => alg == Algorithm::EdDSA,
        };
        by_kind && self.alg.is_none_or(|own| own == alg)
    }
}

/// Usable signing keys of a set (others — encryption keys, unknown types — are skipped).
fn usable(jwks: impl IntoIterator<Item = serde_json::Value>) -> Vec<Arc<Key>> {
    jwks.into_iter()
        .filter(|raw| raw.get("use").is_none_or(|u| u == "sig"))
        .filter_map(|raw| serde_json::from_value::<Jwk>(raw).ok())
        .filter_map(|jwk| Key::from_jwk(&jwk))
        .map(Arc::new)
        .collect()
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

enum Source {
    Fixed,
    Remote {
        client: reqwest::Client,
        issuer: String,
        /// `AUTH_JWKS_URL`; without it, the discovery document's `jwks_uri`.
        configured: Option<String>,
    },
}

#[derive(Default)]
struct State {
    keys: Vec<Arc<Key>>,
    /// When the keys were last fetched successfully.
    fetched_at: Option<DateTime<Utc>>,
    /// When a fetch was last started, successful or not: the pace of refetching.
    attempted_at: Option<DateTime<Utc>>,
    /// The key set's URL as discovery gave it; forgotten when fetching from it fails.
    discovered: Option<String>,
}

pub(crate) struct KeyCache {
    source: Source,
    state: RwLock<State>,
    fetching: tokio::sync::Mutex<()>,
    clock: SharedClock,
    min_refetch: Duration,
    max_age: Duration,
}

impl KeyCache {
    pub(crate) fn fixed(jwks: &JwkSet, clock: SharedClock) -> Self {
        let keys = jwks
            .keys
            .iter()
            .filter_map(Key::from_jwk)
            .map(Arc::new)
            .collect();
        Self {
            source: Source::Fixed,
            state: RwLock::new(State {
                keys,
                ..State::default()
            }),
            fetching: tokio::sync::Mutex::new(()),
            clock,
            min_refetch: Duration::ZERO,
            max_age: Duration::MAX,
        }
    }

    pub(crate) fn remote(
        settings: &OidcSettings,
        client: reqwest::Client,
        clock: SharedClock,
        min_refetch: Duration,
        max_age: Duration,
    ) -> Self {
        Self {
            source: Source::Remote {
                client,
                issuer: settings.issuer.clone(),
                configured: settings.jwks_url.clone(),
            },
            state: RwLock::new(State::default()),
            fetching: tokio::sync::Mutex::new(()),
            clock,
            min_refetch,
            max_age,
        }
    }

    /// The key that verifies a token signed with `alg` under `kid`.
    pub(crate) async fn find(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<Key>, AuthError> {
        if let Some(key) = self.lookup(kid, alg)? {
            self.refresh_when_old();
            return Ok(key);
        }
        if matches!(self.source, Source::Fixed) {
            return Err(AuthError::UnknownKey);
        }
        // One fetch at a time; whoever waited looks again before fetching.
        let _fetching = self.fetching.lock().await;
        if let Some(key) = self.lookup(kid, alg)? {
            return Ok(key);
        }
        let have_keys = self.read(|s| !s.keys.is_empty());
        if !self.may_fetch() {
            return Err(if have_keys {
                AuthError::UnknownKey
            } else {
                AuthError::KeysUnavailable
            });
        }
        if let Err(err) = self.fetch().await {
            tracing::warn!(error = %err, "fetching the identity provider's keys failed");
            return Err(AuthError::KeysUnavailable);
        }
        self.lookup(kid, alg)?.ok_or(AuthError::UnknownKey)
    }

    /// Fetches the key set now (at start-up, so the first call does not wait).
    pub(crate) async fn load(&self) -> Result<usize, FetchError> {
        if matches!(self.source, Source::Fixed) {
            return Ok(self.read(|s| s.keys.len()));
        }
        let _fetching = self.fetching.lock().await;
        self.fetch().await
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        match self.state.read() {
            Ok(state) => f(&state),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    fn write(&self, f: impl FnOnce(&mut State)) {
        match self.state.write() {
            Ok(mut state) => f(&mut state),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// `Ok(None)`: no such key (yet). A key that exists but may not verify `alg` is an
    /// error, and so is a token naming no key when several would fit.
    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Result<Option<Arc<Key>>, AuthError> {
        self.read(|state| match kid {
            Some(kid) => match state.keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
                Some(key) if key.fits(alg) => Ok(Some(key.clone())),
                Some(_) => Err(AuthError::DisallowedAlgorithm),
                None => Ok(None),
            },
            None => {
                let mut fitting = state.keys.iter().filter(|k| k.fits(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(only), None) => Ok(Some(only.clone())),
                    (None, _) => Ok(None),
                    (Some(_), Some(_)) => Err(AuthError::UnknownKey),
                }
            }
        })
    }

    fn may_fetch(&self) -> bool {
        let now = self.clock.now();
        self.read(|state| {
            state
                .attempted_at
                .is_none_or(|at| elapsed(at, now) >= self.min_refetch)
        })
    }

    /// Starts a background refresh once the set is older than `max_age`.
    fn refresh_when_old(self: &Arc<Self>) {
        if matches!(self.source, Source::Fixed) {
            return;
        }
        let now = self.clock.now();
        let old = self.read(|s| {
            s.fetched_at
                .is_some_and(|at| elapsed(at, now) >= self.max_age)
        });
        if !old || !self.may_fetch() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let cache = Arc::clone(self);
        handle.spawn(async move {
            let Ok(_fetching) = cache.fetching.try_lock() else {
                return;
            };
            if cache.may_fetch()
                && let Err(err) = cache.fetch().await
            {
                tracing::warn!(error = %err, "refreshing the identity provider's keys failed; keeping the last ones");
            }
        });
    }

    /// Fetches and installs the key set; the caller holds `fetching`.
    async fn fetch(&self) -> Result<usize, FetchError> {
        let Source::Remote {
            client,
            issuer,
            configured,
        } = &self.source
        else {
            return Ok(0);
        };
        let started = self.clock.now();
        self.write(|s| s.attempted_at = Some(started));
        let url = match configured
            .clone()
            .or_else(|| self.read(|s| s.discovered.clone()))
        {
            Some(url) => url,
            None => {
                let document = fetch::discover(client, issuer).await?;
                let url = document.jwks_uri.ok_or_else(|| FetchError::Invalid {
                    url: issuer.clone(),
                    reason: "the discovery document names no jwks_uri".into(),
                })?;
                provider_url("jwks_uri", &url).map_err(|e| FetchError::Invalid {
                    url: url.clone(),
                    reason: e.reason,
                })?;
                self.write(|s| s.discovered = Some(url.clone()));
                url
            }
        };
        let fetched = fetch::json::<RawJwks>(client.get(&url), &url)
            .await
            .and_then(|raw| {
                let keys = usable(raw.keys);
                if keys.is_empty() {
                    Err(FetchError::Invalid {
                        url: url.clone(),
                        reason: "the key set holds no usable signing key".into(),
                    })
                } else {
                    Ok(keys)
                }
            });
        match fetched {
            Ok(keys) => {
                let count = keys.len();
                let kids: Vec<&str> = keys.iter().filter_map(|k| k.kid.as_deref()).collect();
                tracing::info!(%url, keys = count, kids = ?kids, "identity provider keys loaded");
                self.write(|s| {
                    s.keys = keys;
                    s.fetched_at = Some(started);
                });
                Ok(count)
            }
            Err(err) => {
                // Discover again next time: the provider may have moved its key set.
                self.write(|s| s.discovered = None);
                Err(err)
            }
        }
    }
}

fn elapsed(since: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - since).to_std().unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rsa_jwk(kid: &str, alg: Option<&str>) -> serde_json::Value {
        let mut jwk = json!({
            "kty": "RSA", "kid": kid, "use": "sig", "e": "AQAB",
            "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw"
        });
        if let Some(alg) = alg {
            jwk["alg"] = json!(alg);
        }
        jwk
    }

    #[test]
    fn only_signing_keys_of_known_kinds_are_kept() {
        let keys = usable([
            rsa_jwk("a", Some("RS256")),
            rsa_jwk("b", None),
            json!({"kty": "RSA", "kid": "enc", "use": "enc", "e": "AQAB", "n": "AQAB"}),
            rsa_jwk("oaep", Some("RSA-OAEP")),
            json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"}),
            json!({"kty": "XYZ", "kid": "future"}),
            rsa_jwk("contradiction", Some("ES256")),
        ]);
        let kids: Vec<_> = keys.iter().filter_map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, ["a", "b"]);
        assert!(keys[0].fits(Algorithm::RS256));
        assert!(!keys[0].fits(Algorithm::PS256), "its own alg pins it");
        assert!(keys[1].fits(Algorithm::PS256));
        assert!(!keys[1].fits(Algorithm::ES256) && !keys[1].fits(Algorithm::HS256));
    }

    #[tokio::test]
    async fn a_fixed_set_answers_by_kid_by_fit_and_never_fetches() {
        let jwks: JwkSet =
            serde_json::from_value(json!({"keys": [rsa_jwk("a", Some("RS256"))]})).unwrap();
        let cache = Arc::new(KeyCache::fixed(&jwks, crate::clock::system()));
        assert!(cache.find(Some("a"), Algorithm::RS256).await.is_ok());
        assert!(cache.find(None, Algorithm::RS256).await.is_ok());
        assert_eq!(
            cache.find(Some("a"), Algorithm::RS384).await.err(),
            Some(AuthError::DisallowedAlgorithm)
        );
        assert_eq!(
            cache.find(Some("b"), Algorithm::RS256).await.err(),
            Some(AuthError::UnknownKey)
        );
        assert_eq!(
            cache.find(None, Algorithm::ES256).await.err(),
            Some(AuthError::UnknownKey)
        );
    }
}
