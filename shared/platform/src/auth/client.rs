//! The client side of identity: OAuth 2.0 client-credentials tokens for calls between
//! services, fetched from the provider's token endpoint (`AUTH_TOKEN_URL`, else the
//! issuer's discovery document), cached, and renewed once 80 % of their lifetime has
//! passed; and [`BearerLayer`], which puts the current token on every call of a tonic
//! client. If a renewal fails, the token in hand serves until shortly before it expires.
//!
//! Credentials, per calling service (`prefix`, e.g. `CARE` for care's calls to tickets):
//!
//! | variable | meaning |
//! |---|---|
//! | `<PREFIX>_CLIENT_ID` or `<PREFIX>_CLIENT_ID_FILE` | the OAuth client id |
//! | `<PREFIX>_CLIENT_SECRET` or `<PREFIX>_CLIENT_SECRET_FILE` | its secret (a file is read again at each renewal, so a rotated secret is picked up) |
//! | `<PREFIX>_SCOPE` | optional `scope` parameter |
//! | `<PREFIX>_AUDIENCE` | optional `audience` parameter (providers that want one) |
//! | `AUTH_TOKEN_URL` | the token endpoint; default: `token_endpoint` from `AUTH_ISSUER`'s discovery |

use std::{
    future::Future,
    path::PathBuf,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tonic::Status;
use tower::Service;

use super::{DevIssuer, SetupError, fetch, settings::provider_url};
use crate::{
    clock::{self, SharedClock},
    config::{ConfigError, Env},
};

/// A token is renewed once this share of its lifetime has passed.
const RENEW_AT: f64 = 0.8;
/// The lifetime assumed when the token endpoint does not say (`expires_in`).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// A token in hand is not sent within this long of its expiry, renewal or not.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);

/// A credential given directly or in a (mounted) file.
#[derive(Clone)]
pub enum SecretSource {
    Value(String),
    File(PathBuf),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Value(_) => f.write_str("Value(<redacted>)"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

impl SecretSource {
    /// `NAME` or `NAME_FILE` (not both); `None` when neither is set.
    pub fn from_env(env: &Env, name: &str) -> Result<Option<Self>, ConfigError> {
        let file_name = format!("{name}_FILE");
        match (env.raw(name), env.raw(&file_name)) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                &file_name,
                "…",
                format!("set {name} or {file_name}, not both"),
            )),
            (Some(value), None) => Ok(Some(Self::Value(value.trim().to_owned()))),
            (None, Some(path)) => Ok(Some(Self::File(PathBuf::from(path.trim())))),
            (None, None) => Ok(None),
        }
    }

    /// The credential now (a file's content without its trailing newline).
    fn read(&self) -> Result<String, TokenError> {
        let value = match self {
            Self::Value(value) => value.clone(),
            Self::File(path) => std::fs::read_to_string(path)
                .map_err(|e| TokenError::Credentials(format!("{}: {e}", path.display())))?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
        };
        if value.is_empty() {
            return Err(TokenError::Credentials("empty credential".into()));
        }
        Ok(value)
    }
}

/// How a service obtains its client-credentials tokens.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    /// The token endpoint; without it, the one `issuer`'s discovery document names.
    pub token_url: Option<String>,
    pub issuer: Option<String>,
    pub client_id: SecretSource,
    pub client_secret: SecretSource,
    pub scope: Option<String>,
    pub audience: Option<String>,
}

impl ClientCredentials {
    /// The credentials `<prefix>_CLIENT_ID`/`_SECRET` (or their `_FILE` forms) and the
    /// endpoint from `AUTH_TOKEN_URL` or `AUTH_ISSUER`.
    pub fn from_env(env: &Env, prefix: &str) -> Result<Self, ConfigError> {
        let required = |name: String| {
            SecretSource::from_env(env, &name)?
                .ok_or_else(|| ConfigError::new(&name, "", format!("is required (or {name}_FILE)")))
        };
        let token_url = env.raw("AUTH_TOKEN_URL").map(|u| u.trim().to_owned());
        let issuer = env.raw("AUTH_ISSUER").map(|u| u.trim().to_owned());
        match (&token_url, &issuer) {
            (Some(url), _) => provider_url("AUTH_TOKEN_URL", url)?,
            (None, Some(issuer)) => provider_url("AUTH_ISSUER", issuer)?,
            (None, None) => {
                return Err(ConfigError::new(
                    "AUTH_TOKEN_URL",
                    "",
                    "is required for client-credentials tokens (or AUTH_ISSUER, for discovery)",
                ));
            }
        }
        Ok(Self {
            token_url,
            issuer,
            client_id: required(format!("{prefix}_CLIENT_ID"))?,
            client_secret: required(format!("{prefix}_CLIENT_SECRET"))?,
            scope: env.raw(&format!("{prefix}_SCOPE")),
            audience: env.raw(&format!("{prefix}_AUDIENCE")),
        })
    }
}

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("client credentials: {0}")]
    Credentials(String),
    #[error("token endpoint: {0}")]
    Endpoint(String),
    #[error("minting a development token: {0}")]
    Mint(String),
}

/// The current bearer token for calls to other services. Cheap to clone; clones share
/// the cached token.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<SourceInner>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner.origin {
            Origin::Endpoint { credentials, .. } => f
                .debug_struct("TokenSource")
                .field("credentials", credentials)
                .finish_non_exhaustive(),
            Origin::Dev { subject, .. } => f
                .debug_struct("TokenSource")
                .field("dev_subject", subject)
                .finish_non_exhaustive(),
        }
    }
}

struct SourceInner {
    origin: Origin,
    clock: SharedClock,
    cached: Mutex<Option<Cached>>,
    /// The token endpoint discovery gave, once asked.
    discovered: Mutex<Option<String>>,
    /// One renewal at a time.
    renewing: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
enum Origin {
    Endpoint {
        client: reqwest::Client,
        credentials: ClientCredentials,
    },
    Dev {
        issuer: DevIssuer,
        subject: String,
        roles: Vec<String>,
        lifetime: Duration,
    },
}

#[derive(Clone)]
struct Cached {
    token: String,
    renew_at: DateTime<Utc>,
    usable_until: DateTime<Utc>,
}

impl Cached {
    fn new(token: String, obtained: DateTime<Utc>, lifetime: Duration) -> Self {
        let lifetime = lifetime.max(Duration::from_secs(1));
        let renew_at = obtained + to_chrono(lifetime.mul_f64(RENEW_AT));
        let usable_until =
            (obtained + to_chrono(lifetime.saturating_sub(EXPIRY_MARGIN))).max(renew_at);
        Self {
            token,
            renew_at,
            usable_until,
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenSource {
    /// Tokens from the provider's token endpoint.
    pub fn client_credentials(credentials: ClientCredentials) -> Result<Self, SetupError> {
        Ok(Self::from_origin(
            Origin::Endpoint {
                client: fetch::client()?,
                credentials,
            },
            clock::system(),
        ))
    }

    /// [`ClientCredentials::from_env`] for `prefix`.
    pub fn from_env(env: &Env, prefix: &str) -> Result<Self, SetupError> {
        Self::client_credentials(ClientCredentials::from_env(env, prefix)?)
    }

    /// [`Self::from_env`] when `<prefix>_CLIENT_ID` (or `_FILE`) is set; `None` otherwise,
    /// for a service that then calls without a token.
    pub fn optional_from_env(env: &Env, prefix: &str) -> Result<Option<Self>, SetupError> {
        let id = format!("{prefix}_CLIENT_ID");
        if env.raw(&id).is_none() && env.raw(&format!("{id}_FILE")).is_none() {
            return Ok(None);
        }
        Self::from_env(env, prefix).map(Some)
    }

    /// Tokens minted in process by a development issuer, for `subject` with `roles`.
    pub fn dev(
        issuer: &DevIssuer,
        subject: impl Into<String>,
        roles: &[&str],
        lifetime: Duration,
    ) -> Self {
        Self::from_origin(
            Origin::Dev {
                issuer: issuer.clone(),
                subject: subject.into(),
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                lifetime,
            },
            clock::system(),
        )
    }

    /// The same source timed by `clock` (tests advance a manual one), with nothing cached.
    pub fn with_clock(&self, clock: SharedClock) -> Self {
        Self::from_origin(self.inner.origin.clone(), clock)
    }

    fn from_origin(origin: Origin, clock: SharedClock) -> Self {
        Self {
            inner: Arc::new(SourceInner {
                origin,
                clock,
                cached: Mutex::new(None),
                discovered: Mutex::new(None),
                renewing: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// A layer for tonic clients that sends this source's token on every call.
    pub fn layer(&self) -> BearerLayer {
        BearerLayer {
            source: Some(self.clone()),
        }
    }

    /// The token to send now: the cached one until 80 % of its lifetime has passed, then
    /// a new one (while one call renews, the others keep sending the cached token).
    pub async fn token(&self) -> Result<String, TokenError> {
        let now = self.inner.clock.now();
        if let Some(cached) = self.cached().filter(|c| now < c.renew_at) {
            return Ok(cached.token);
        }
        let _renewing = match self.inner.renewing.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                if let Some(cached) = self.cached().filter(|c| now < c.usable_until) {
                    return Ok(cached.token);
                }
                self.inner.renewing.lock().await
            }
        };
        let now = self.inner.clock.now();
        if let Some(cached) = self.cached().filter(|c| now < c.renew_at) {
            return Ok(cached.token);
        }
        match self.obtain(now).await {
            Ok(fresh) => {
                let token = fresh.token.clone();
                self.store(fresh);
                Ok(token)
            }
            Err(err) => match self.cached().filter(|c| now < c.usable_until) {
                Some(cached) => {
                    tracing::warn!(error = %err, "renewing the service token failed; the current one serves until it expires");
                    Ok(cached.token)
                }
                None => Err(err),
            },
        }
    }

    fn cached(&self) -> Option<Cached> {
        match self.inner.cached.lock() {
            Ok(cached) => cached.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn store(&self, fresh: Cached) {
        match self.inner.cached.lock() {
            Ok(mut cached) => *cached = Some(fresh),
            Err(poisoned) => *poisoned.into_inner() = Some(fresh),
        }
    }

    async fn obtain(&self, now: DateTime<Utc>) -> Result<Cached, TokenError> {
        match &self.inner.origin {
            Origin::Dev {
                issuer,
                subject,
                roles,
                lifetime,
            } => {
                let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
                let token = issuer
                    .mint(subject, &roles, *lifetime)
                    .map_err(|e| TokenError::Mint(e.to_string()))?;
                Ok(Cached::new(token, now, *lifetime))
            }
            Origin::Endpoint {
                client,
                credentials,
            } => {
                let url = self.token_url(client, credentials).await?;
                let id = credentials.client_id.read()?;
                let secret = credentials.client_secret.read()?;
                // RFC 6749 §2.3.1: each part form-encoded, then HTTP Basic.
                let encode =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    encode(&id),
                    encode(&secret)
                ));
                let mut form = vec![("grant_type", "client_credentials")];
                if let Some(scope) = &credentials.scope {
                    form.push(("scope", scope));
                }
                if let Some(audience) = &credentials.audience {
                    form.push(("audience", audience));
                }
                let request = client
                    .post(&url)
                    .header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"))
                    .form(&form);
                let response: TokenResponse = fetch::json(request, &url)
                    .await
                    .map_err(|e| TokenError::Endpoint(e.to_string()))?;
                if !response.token_type.eq_ignore_ascii_case("bearer")
                    || response.access_token.is_empty()
                {
                    return Err(TokenError::Endpoint(format!(
                        "{url}: answered a {:?} token, not a bearer token",
                        response.token_type
                    )));
                }
                let lifetime = response
                    .expires_in
                    .map(Duration::from_secs)
                    .unwrap_or(DEFAULT_LIFETIME);
                tracing::debug!(%url, lifetime_s = lifetime.as_secs(), "service token obtained");
                Ok(Cached::new(response.access_token, now, lifetime))
            }
        }
    }

    async fn token_url(
        &self,
        client: &reqwest::Client,
        credentials: &ClientCredentials,
    ) -> Result<String, TokenError> {
        if let Some(url) = &credentials.token_url {
            return Ok(url.clone());
        }
        let known = match self.inner.discovered.lock() {
            Ok(known) => known.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        if let Some(url) = known {
            return Ok(url);
        }
        let issuer = credentials.issuer.as_deref().ok_or_else(|| {
            TokenError::Endpoint("neither a token URL nor an issuer to discover one".into())
        })?;
        let document = fetch::discover(client, issuer)
            .await
            .map_err(|e| TokenError::Endpoint(e.to_string()))?;
        let url = document.token_endpoint.ok_or_else(|| {
            TokenError::Endpoint(format!("{issuer}: discovery names no token_endpoint"))
        })?;
        provider_url("token_endpoint", &url)
            .map_err(|e| TokenError::Endpoint(format!("{url}: {}", e.reason)))?;
        if let Ok(mut known) = self.inner.discovered.lock() {
            *known = Some(url.clone());
        }
        Ok(url)
    }
}

fn to_chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// Puts `authorization: Bearer <token>` from a [`TokenSource`] on every call of a tonic
/// client: `Client::new(ServiceBuilder::new().layer(source.layer()).service(channel))`.
#[derive(Debug, Clone)]
pub struct BearerLayer {
    source: Option<TokenSource>,
}

impl BearerLayer {
    /// Sends `source`'s token when there is one, and calls without a token otherwise (a
    /// service whose credentials are not configured, calling a port without
    /// authentication).
    pub fn optional(source: Option<TokenSource>) -> Self {
        Self { source }
    }
}

impl<S> tower::Layer<S> for BearerLayer {
    type Service = Bearer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Bearer {
            inner,
            source: self.source.clone(),
        }
    }
}

/// The client service [`BearerLayer`] makes. A call for which no token can be had fails
/// `UNAVAILABLE` without being sent.
#[derive(Debug, Clone)]
pub struct Bearer<S> {
    inner: S,
    source: Option<TokenSource>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, B> Service<http::Request<B>> for Bearer<S>
where
    S: Service<http::Request<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let source = self.source.clone();
        Box::pin(async move {
            let Some(source) = source else {
                return inner.call(request).await.map_err(Into::into);
            };
            let token = source.token().await.map_err(|err| {
                tracing::warn!(error = %err, "no service token: the call is not sent");
                Box::new(Status::unavailable(
                    "could not obtain a token for the upstream call",
                )) as BoxError
            })?;
            let mut value = http::HeaderValue::try_from(format!("Bearer {token}"))
                .map_err(|_| Box::new(Status::internal("unusable service token")) as BoxError)?;
            value.set_sensitive(true);
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, value);
            inner.call(request).await.map_err(Into::into)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_values_or_files_never_both() {
        let env = Env::from_pairs([
            ("AUTH_ISSUER", "https://id.example.com"),
            ("CARE_CLIENT_ID", "care"),
            ("CARE_CLIENT_SECRET_FILE", "/run/secrets/care"),
            ("CARE_SCOPE", "svc"),
        ]);
        let creds = ClientCredentials::from_env(&env, "CARE").unwrap();
        assert!(matches!(&creds.client_id, SecretSource::Value(v) if v == "care"));
        assert!(matches!(&creds.client_secret, SecretSource::File(p) if p.ends_with("care")));
        assert_eq!(creds.scope.as_deref(), Some("svc"));
        assert_eq!(creds.token_url, None);
        assert!(
            !format!("{creds:?}").contains("\"care\""),
            "values are redacted"
        );

        let env = Env::from_pairs([
            ("AUTH_TOKEN_URL", "https://id.example.com/token"),
            ("CARE_CLIENT_ID", "care"),
            ("CARE_CLIENT_ID_FILE", "/x"),
            ("CARE_CLIENT_SECRET", "s"),
        ]);
        let err = ClientCredentials::from_env(&env, "CARE").unwrap_err();
        assert_eq!(err.name, "CARE_CLIENT_ID_FILE");

        let env = Env::from_pairs([("AUTH_TOKEN_URL", "https://id.example.com/token")]);
        let err = ClientCredentials::from_env(&env, "CARE").unwrap_err();
        assert_eq!(err.name, "CARE_CLIENT_ID");

        let env = Env::from_pairs([("CARE_CLIENT_ID", "c"), ("CARE_CLIENT_SECRET", "s")]);
        let err = ClientCredentials::from_env(&env, "CARE").unwrap_err();
        assert_eq!(err.name, "AUTH_TOKEN_URL");
    }

    #[test]
    fn a_token_is_renewed_at_four_fifths_and_kept_until_just_before_expiry() {
        let t0 = Utc::now();
        let cached = Cached::new("t".into(), t0, Duration::from_secs(100));
        assert_eq!(cached.renew_at, t0 + chrono::Duration::seconds(80));
        assert_eq!(cached.usable_until, t0 + chrono::Duration::seconds(95));
        let short = Cached::new("t".into(), t0, Duration::ZERO);
        assert!(short.renew_at > t0 && short.usable_until >= short.renew_at);
    }

    #[test]
    fn a_secret_file_loses_its_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("aftersales-secret-{}", uuid::Uuid::new_v4()));
        std::fs::write(&dir, "s3cret\n").unwrap();
        assert_eq!(SecretSource::File(dir.clone()).read().unwrap(), "s3cret");
        std::fs::write(&dir, "").unwrap();
        assert!(SecretSource::File(dir.clone()).read().is_err());
        std::fs::remove_file(&dir).unwrap();
    }
}
