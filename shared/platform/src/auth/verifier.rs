//! Verifies bearer JWTs: the signature against the issuer's keys (an allow-list of
//! asymmetric algorithms; the key must fit the algorithm), `iss` equal to the issuer, `aud`
//! containing the audience, `exp`/`nbf` within the leeway — all checked by `jsonwebtoken`.
//! A token already verified is remembered (by its SHA-256, for at most a minute and never
//! past its `exp`), so a client reusing its token costs one hash per call.

use std::{sync::Arc, time::Duration};

use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind, jwk::JwkSet};
use sha2::{Digest, Sha256};

use super::{
    AuthError, Caller, OidcSettings, SetupError,
    caller::Claims,
    fetch,
    keys::KeyCache,
    settings::{ACCEPTABLE, MAX_LEEWAY},
};
use crate::{
    clock::{self, SharedClock},
    config::ConfigError,
};

/// A token longer than this is refused unread.
const MAX_TOKEN: usize = 16 * 1024;
/// At most this many verified tokens are remembered.
const REMEMBERED: u64 = 10_000;
/// A remembered token is verified again after this long (so a key the provider retired
/// stops working within it).
const REMEMBER_FOR: Duration = Duration::from_secs(60);
/// A token naming an unknown key refetches the key set at most this often.
const DEFAULT_MIN_REFETCH: Duration = Duration::from_secs(10);
/// The key set is refreshed in the background once this old.
const DEFAULT_MAX_KEY_AGE: Duration = Duration::from_secs(15 * 60);

/// Checks bearer tokens for one issuer and audience. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    /// One per accepted algorithm: `jsonwebtoken` wants every algorithm of a validation
    /// to be of the key's family, so an RS256 + ES256 allow-list is two validations.
    validations: Vec<(Algorithm, Validation)>,
    leeway_secs: u64,
    keys: Arc<KeyCache>,
    remembered: moka::sync::Cache<[u8; 32], Remembered>,
}

#[derive(Clone)]
struct Remembered {
    caller: Caller,
    /// `exp` plus the leeway, in seconds since the epoch.
    valid_until: u64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut f = f.debug_struct("Verifier");
        if let Some((_, validation)) = self.inner.validations.first() {
            f.field("iss", &validation.iss)
                .field("aud", &validation.aud);
        }
        let algorithms: Vec<_> = self.inner.validations.iter().map(|(alg, _)| alg).collect();
        f.field("algorithms", &algorithms).finish_non_exhaustive()
    }
}

/// How a [`Verifier`] is made: keys from the provider (the default) or a fixed set.
pub struct VerifierBuilder {
    settings: OidcSettings,
    keys: Option<JwkSet>,
    clock: SharedClock,
    min_refetch: Duration,
    max_key_age: Duration,
}

impl VerifierBuilder {
    /// Verify against these keys only, fetching nothing (a development issuer in the same
    /// process).
    pub fn keys(mut self, jwks: JwkSet) -> Self {
        self.keys = Some(jwks);
        self
    }

    /// The clock that paces key refetches (tests advance a manual one). Token times are
    /// checked against the system clock, as the provider sets them.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// How often a token naming an unknown key may refetch the key set.
    pub fn min_refetch(mut self, every: Duration) -> Self {
        self.min_refetch = every;
        self
    }

    /// How old the key set may get before it is refreshed in the background.
    pub fn max_key_age(mut self, age: Duration) -> Self {
        self.max_key_age = age;
        self
    }

    pub fn build(self) -> Result<Verifier, SetupError> {
        let settings = self.settings;
        let refuse = |reason: String| -> SetupError {
            let value = format!("{:?}", settings.algorithms);
            ConfigError::new("AUTH_ALGORITHMS", &value, reason).into()
        };
        if let Some(alg) = settings.algorithms.iter().find(|a| !ACCEPTABLE.contains(a)) {
            return Err(refuse(format!("{alg:?} is not an accepted algorithm")));
        }
        if settings.algorithms.is_empty() {
            return Err(refuse("names no algorithm".into()));
        }
        let leeway_secs = settings.leeway.min(MAX_LEEWAY).as_secs();
        let validations = settings
            .algorithms
            .iter()
            .map(|alg| {
                let mut validation = Validation::new(*alg);
                validation.set_issuer(&[&settings.issuer]);
                validation.set_audience(&[&settings.audience]);
                validation.set_required_spec_claims(&["exp", "iss", "aud"]);
                validation.validate_exp = true;
                validation.validate_nbf = true;
                validation.leeway = leeway_secs;
                (*alg, validation)
            })
            .collect();
        let keys = match self.keys {
            Some(jwks) => KeyCache::fixed(&jwks, self.clock),
            None => KeyCache::remote(
                &settings,
                fetch::client()?,
                self.clock,
                self.min_refetch,
                self.max_key_age,
            ),
        };
        Ok(Verifier {
            inner: Arc::new(Inner {
                validations,
                leeway_secs,
                keys: Arc::new(keys),
                remembered: moka::sync::Cache::builder()
                    .max_capacity(REMEMBERED)
                    .time_to_live(REMEMBER_FOR)
                    .build(),
            }),
        })
    }
}

impl Verifier {
    pub fn builder(settings: OidcSettings) -> VerifierBuilder {
        VerifierBuilder {
            settings,
            keys: None,
            clock: clock::system(),
            min_refetch: DEFAULT_MIN_REFETCH,
            max_key_age: DEFAULT_MAX_KEY_AGE,
        }
    }

    /// Keys from the provider (`jwks_url`, else discovery), fetched on first use.
    pub fn new(settings: OidcSettings) -> Result<Self, SetupError> {
        Self::builder(settings).build()
    }

    /// Fetches the provider's keys now, so a server can log a broken configuration at
    /// start-up instead of on its first call. Returns how many keys are usable.
    pub async fn load_keys(&self) -> Result<usize, SetupError> {
        self.inner
            .keys
            .load()
            .await
            .map_err(|e| SetupError::Provider(e.to_string()))
    }

    /// The caller the `authorization: Bearer …` header proves.
    pub async fn verify_headers(&self, headers: &http::HeaderMap) -> Result<Caller, AuthError> {
        self.verify(bearer(headers)?).await
    }

    /// The caller `token` proves.
    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > MAX_TOKEN {
            return Err(AuthError::Malformed);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(known) = self.inner.remembered.get(&digest) {
            if now <= known.valid_until {
                return Ok(known.caller);
            }
            self.inner.remembered.invalidate(&digest);
        }

        let header = jsonwebtoken::decode_header(token).map_err(|e| refusal(&e))?;
        let (_, validation) = self
            .inner
            .validations
            .iter()
            .find(|(alg, _)| *alg == header.alg)
            .ok_or(AuthError::DisallowedAlgorithm)?;
        let key = self
            .inner
            .keys
            .find(header.kid.as_deref(), header.alg)
            .await?;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, validation)
            .map_err(|e| {
                tracing::debug!(error = %e, "token refused");
                refusal(&e)
            })?;
        let exp = data
            .claims
            .get("exp")
            .and_then(|exp| exp.as_u64().or_else(|| exp.as_f64().map(|f| f as u64)))
            .ok_or(AuthError::Malformed)?;
        let claims: Claims =
            serde_json::from_value(data.claims).map_err(|_| AuthError::Malformed)?;
        let caller = Caller::from_claims(claims)?;
        self.inner.remembered.insert(
            digest,
            Remembered {
                caller: caller.clone(),
                valid_until: exp.saturating_add(self.inner.leeway_secs),
            },
        );
        Ok(caller)
    }
}

/// The token of an `authorization: Bearer <token>` header (the scheme in any case).
pub(crate) fn bearer(headers: &http::HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?
        .to_str()
        .map_err(|_| AuthError::Malformed)?;
    match value.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            let token = token.trim();
            if token.is_empty() {
                Err(AuthError::Missing)
            } else {
                Ok(token)
            }
        }
        _ => Err(AuthError::Malformed),
    }
}

/// What the caller is told about a token `jsonwebtoken` refused.
fn refusal(err: &jsonwebtoken::errors::Error) -> AuthError {
    match err.kind() {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => AuthError::WrongIssuer,
        ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => AuthError::WrongAudience,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName => AuthError::DisallowedAlgorithm,
        _ => AuthError::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue};

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        assert_eq!(bearer(&headers("Bearer abc")), Ok("abc"));
        assert_eq!(bearer(&headers("bearer  abc ")), Ok("abc"));
        assert_eq!(bearer(&HeaderMap::new()), Err(AuthError::Missing));
        assert_eq!(bearer(&headers("Bearer ")), Err(AuthError::Malformed));
        assert_eq!(bearer(&headers("Basic abc")), Err(AuthError::Malformed));
        assert_eq!(bearer(&headers("abc")), Err(AuthError::Malformed));
    }

    #[test]
    fn a_verifier_never_accepts_hmac_or_an_empty_list() {
        for algorithms in [vec![Algorithm::HS256], vec![]] {
            let settings = OidcSettings::new("http://127.0.0.1:1", "a").with_algorithms(algorithms);
            let err = Verifier::builder(settings)
                .keys(JwkSet { keys: vec![] })
                .build()
                .unwrap_err();
            assert!(err.to_string().contains("AUTH_ALGORITHMS"), "{err}");
        }
    }

    #[tokio::test]
    async fn garbage_is_refused_before_any_key_is_looked_for() {
        let settings = OidcSettings::new("http://127.0.0.1:1", "a");
        let verifier = Verifier::builder(settings)
            .keys(JwkSet { keys: vec![] })
            .build()
            .unwrap();
        assert_eq!(verifier.verify(" ").await, Err(AuthError::Missing));
        assert_eq!(verifier.verify("a.b.c").await, Err(AuthError::Malformed));
        let huge = "a".repeat(MAX_TOKEN + 1);
        assert_eq!(verifier.verify(&huge).await, Err(AuthError::Malformed));
        // {"alg":"none"}.{"sub":"x"}.
        let none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
        assert!(matches!(
            verifier.verify(none).await,
            Err(AuthError::Malformed | AuthError::DisallowedAlgorithm)
        ));
        // {"alg":"HS256","typ":"JWT"}.{"sub":"x"}.sig
        let hs = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4In0.c2ln";
        assert_eq!(
            verifier.verify(hs).await,
            Err(AuthError::DisallowedAlgorithm)
        );
    }
}
