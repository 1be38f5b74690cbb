//! Identity settings from the environment. A server refuses to start without them unless
//! `AUTH_MODE=disabled` says so explicitly:
//!
//! | variable | meaning |
//! |---|---|
//! | `AUTH_MODE` | `oidc` (the default once `AUTH_ISSUER` is set) or `disabled` |
//! | `AUTH_ISSUER` | the provider's issuer URL; tokens' `iss` must equal it |
//! | `AUTH_AUDIENCE` | tokens' `aud` must contain it |
//! | `AUTH_JWKS_URL` | the key set; default: `jwks_uri` of `<AUTH_ISSUER>/.well-known/openid-configuration` |
//! | `AUTH_LEEWAY_SECS` | clock skew allowed on `exp`/`nbf`, at most 60 (default 30) |
//! | `AUTH_ALGORITHMS` | accepted signature algorithms (default `RS256,ES256`) |
//! | `AUTH_OPEN_HEALTH` | `grpc.health.v1.Health` without a token (default `true`, for probes) |
//! | `AUTH_OPEN_REFLECTION` | gRPC reflection without a token (default `true`) |
//!
//! Provider URLs are `https://`; plain `http://` is accepted for loopback only (a
//! development issuer, tests).

use std::{str::FromStr, time::Duration};

use jsonwebtoken::Algorithm;
use reqwest::Url;

use crate::config::{ConfigError, Env};

/// The most clock skew a token's `exp`/`nbf` may be given.
pub const MAX_LEEWAY: Duration = Duration::from_secs(60);
const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Asymmetric algorithms only: HMAC would let anyone holding the (public) verification
/// key sign, and `none` signs nothing.
pub(crate) const ACCEPTABLE: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
const DEFAULT_ALGORITHMS: &[Algorithm] = &[Algorithm::RS256, Algorithm::ES256];

/// How one server authenticates its callers.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub mode: AuthMode,
    /// The health service answers without a token (probes cannot send one).
    pub open_health: bool,
    /// Reflection answers without a token.
    pub open_reflection: bool,
}

#[derive(Debug, Clone)]
pub enum AuthMode {
    /// Bearer JWTs from an OpenID Connect provider.
    Oidc(OidcSettings),
    /// Every caller is let in as [`Caller::unrestricted`](super::Caller::unrestricted);
    /// only ever by an explicit `AUTH_MODE=disabled`.
    Disabled,
}

/// What a token must satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    pub issuer: String,
    pub audience: String,
    /// Where the key set is; `None` reads it from the issuer's discovery document.
    pub jwks_url: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`; never more than [`MAX_LEEWAY`].
    pub leeway: Duration,
    pub algorithms: Vec<Algorithm>,
}

impl OidcSettings {
    /// Tokens from `issuer` for `audience`, keys from discovery, the default leeway and
    /// algorithms.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_url: None,
            leeway: DEFAULT_LEEWAY,
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
        }
    }

    pub fn with_jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// Clock skew allowed on `exp` and `nbf`, capped at [`MAX_LEEWAY`].
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.min(MAX_LEEWAY);
        self
    }

    pub fn with_algorithms(mut self, algorithms: Vec<Algorithm>) -> Self {
        self.algorithms = algorithms;
        self
    }

    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let issuer = env.raw("AUTH_ISSUER").ok_or_else(|| {
            ConfigError::new(
                "AUTH_ISSUER",
                "",
                "is required with AUTH_MODE=oidc (the provider's issuer URL)",
            )
        })?;
        provider_url("AUTH_ISSUER", &issuer)?;
        let audience = env.raw("AUTH_AUDIENCE").ok_or_else(|| {
            ConfigError::new(
                "AUTH_AUDIENCE",
                "",
                "is required with AUTH_MODE=oidc (the audience tokens for this service carry)",
            )
        })?;
        let jwks_url = env.raw("AUTH_JWKS_URL");
        if let Some(url) = &jwks_url {
            provider_url("AUTH_JWKS_URL", url)?;
        }
        let leeway_secs: u64 = env.or("AUTH_LEEWAY_SECS", DEFAULT_LEEWAY.as_secs())?;
        if leeway_secs > MAX_LEEWAY.as_secs() {
            return Err(ConfigError::new(
                "AUTH_LEEWAY_SECS",
                &leeway_secs.to_string(),
                format!("must be at most {}", MAX_LEEWAY.as_secs()),
            ));
        }
        let algorithms = match env.raw("AUTH_ALGORITHMS") {
            Some(list) => algorithms("AUTH_ALGORITHMS", &list)?,
            None => DEFAULT_ALGORITHMS.to_vec(),
        };
        Ok(Self {
            issuer: issuer.trim().to_owned(),
            audience: audience.trim().to_owned(),
            jwks_url: jwks_url.map(|u| u.trim().to_owned()),
            leeway: Duration::from_secs(leeway_secs),
            algorithms,
        })
    }
}

impl AuthSettings {
    /// Tokens checked as `oidc` says, health and reflection open.
    pub fn oidc(oidc: OidcSettings) -> Self {
        Self {
            mode: AuthMode::Oidc(oidc),
            open_health: true,
            open_reflection: true,
        }
    }

    /// No authentication (`AUTH_MODE=disabled`).
    pub fn disabled() -> Self {
        Self {
            mode: AuthMode::Disabled,
            open_health: true,
            open_reflection: true,
        }
    }

    /// The settings `serve` starts with; an error naming the variable when there are none
    /// and `AUTH_MODE` is not `disabled`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mode = match env.raw("AUTH_MODE").map(|m| m.trim().to_ascii_lowercase()) {
            Some(m) if m == "disabled" => AuthMode::Disabled,
            Some(m) if m == "oidc" => AuthMode::Oidc(OidcSettings::from_env(env)?),
            Some(other) => {
                return Err(ConfigError::new(
                    "AUTH_MODE",
                    &other,
                    "must be `oidc` or `disabled`",
                ));
            }
            None if env.raw("AUTH_ISSUER").is_some() => {
                AuthMode::Oidc(OidcSettings::from_env(env)?)
            }
            None => {
                return Err(ConfigError::new(
                    "AUTH_ISSUER",
                    "",
                    "is required: set AUTH_ISSUER and AUTH_AUDIENCE, or AUTH_MODE=disabled \
                     to run without authentication",
                ));
            }
        };
        Ok(Self {
            mode,
            open_health: env.or("AUTH_OPEN_HEALTH", true)?,
            open_reflection: env.or("AUTH_OPEN_REFLECTION", true)?,
        })
    }
}

/// An `https://` URL, or `http://` to a loopback host.
pub(crate) fn provider_url(name: &str, value: &str) -> Result<(), ConfigError> {
    let url = Url::parse(value.trim()).map_err(|e| ConfigError::new(name, value, e))?;
    let host = url.host_str().unwrap_or("");
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(ConfigError::new(
            name,
            value,
            "must be an https:// URL (http:// only to a loopback address)",
        )),
    }
}

/// A comma-separated list of acceptable algorithms, at least one.
fn algorithms(name: &str, list: &str) -> Result<Vec<Algorithm>, ConfigError> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let alg = Algorithm::from_str(&item.to_ascii_uppercase())
            .ok()
            .filter(|alg| ACCEPTABLE.contains(alg))
            .ok_or_else(|| {
                ConfigError::new(
                    name,
                    list,
                    format!(
                        "{item} is not accepted; choose from RS256, RS384, RS512, PS256, \
                         PS384, PS512, ES256, ES384, EdDSA"
                    ),
                )
            })?;
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    if out.is_empty() {
        return Err(ConfigError::new(name, list, "names no algorithm"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://id.example.com/realms/aftersales";

    fn oidc(settings: AuthSettings) -> OidcSettings {
        match settings.mode {
            AuthMode::Oidc(oidc) => oidc,
            AuthMode::Disabled => panic!("expected oidc"),
        }
    }

    #[test]
    fn an_issuer_alone_means_oidc_with_the_defaults() {
        let env = Env::from_pairs([("AUTH_ISSUER", ISSUER), ("AUTH_AUDIENCE", "tickets")]);
        let settings = AuthSettings::from_env(&env).unwrap();
        assert!(settings.open_health && settings.open_reflection);
        assert_eq!(
            oidc(settings),
            OidcSettings::new(ISSUER, "tickets"),
            "keys from discovery, 30 s leeway, RS256 and ES256"
        );
    }

    #[test]
    fn without_settings_serve_refuses_unless_disabled_explicitly() {
        let err = AuthSettings::from_env(&Env::from_pairs::<&str, &str>([])).unwrap_err();
        assert_eq!(err.name, "AUTH_ISSUER");
        assert!(err.to_string().contains("AUTH_MODE=disabled"), "{err}");

        let env = Env::from_pairs([("AUTH_MODE", "disabled")]);
        assert!(matches!(
            AuthSettings::from_env(&env).unwrap().mode,
            AuthMode::Disabled
        ));

        let env = Env::from_pairs([("AUTH_MODE", "off")]);
        assert_eq!(AuthSettings::from_env(&env).unwrap_err().name, "AUTH_MODE");

        let env = Env::from_pairs([("AUTH_MODE", "oidc"), ("AUTH_ISSUER", ISSUER)]);
        assert_eq!(
            AuthSettings::from_env(&env).unwrap_err().name,
            "AUTH_AUDIENCE"
        );
    }

    #[test]
    fn every_knob_is_read_and_checked() {
        let env = Env::from_pairs([
            ("AUTH_ISSUER", ISSUER),
            ("AUTH_AUDIENCE", "care"),
            ("AUTH_JWKS_URL", "https://id.example.com/keys"),
            ("AUTH_LEEWAY_SECS", "5"),
            ("AUTH_ALGORITHMS", "es256, PS256,ES256"),
            ("AUTH_OPEN_REFLECTION", "false"),
        ]);
        let settings = AuthSettings::from_env(&env).unwrap();
        assert!(settings.open_health && !settings.open_reflection);
        let oidc = oidc(settings);
        assert_eq!(
            oidc.jwks_url.as_deref(),
            Some("https://id.example.com/keys")
        );
        assert_eq!(oidc.leeway, Duration::from_secs(5));
        assert_eq!(oidc.algorithms, [Algorithm::ES256, Algorithm::PS256]);

        for (name, value) in [
            ("AUTH_LEEWAY_SECS", "61"),
            ("AUTH_ALGORITHMS", "HS256"),
            ("AUTH_ALGORITHMS", "none"),
            ("AUTH_ALGORITHMS", " , "),
            ("AUTH_JWKS_URL", "http://id.example.com/keys"),
            ("AUTH_ISSUER", "id.example.com"),
        ] {
            let mut pairs = vec![("AUTH_ISSUER", ISSUER), ("AUTH_AUDIENCE", "care")];
            pairs.retain(|(n, _)| *n != name);
            pairs.push((name, value));
            let err = AuthSettings::from_env(&Env::from_pairs(pairs)).unwrap_err();
            assert_eq!(err.name, name, "{value}: {err}");
        }
    }

    #[test]
    fn plain_http_is_for_loopback_only() {
        for url in [
            "http://127.0.0.1:8080",
            "http://localhost:1/x",
            "http://[::1]:9",
        ] {
            provider_url("AUTH_ISSUER", url).unwrap();
        }
        assert!(provider_url("AUTH_ISSUER", "http://keycloak:8080").is_err());
        assert_eq!(
            OidcSettings::new(ISSUER, "a")
                .with_leeway(Duration::from_secs(600))
                .leeway,
            MAX_LEEWAY
        );
    }
}
