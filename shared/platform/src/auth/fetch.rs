//! HTTP to the identity provider: the one client set-up (short timeouts, no redirects,
//! TLS verified by rustls), bounded JSON reads, and the discovery document.

use std::time::Duration;

use serde::{Deserialize, de::DeserializeOwned};

/// How long one request to the provider may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// A discovery document, key set or token response is a few KiB; more is refused.
const MAX_BODY: usize = 1 << 20;

/// The client every provider request goes through. Redirects are not followed: the
/// endpoints are named by configuration or discovery, and a redirect could leave https.
pub(crate) fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("aftersales/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A provider request that did not give the document asked for. Names the URL and the
/// HTTP status (and the OAuth `error` code, if any), never a credential.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("{url}: {source}")]
    Transport { url: String, source: reqwest::Error },
    #[error("{url}: HTTP {status}{}", oauth_error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default())]
    Status {
        url: String,
        status: reqwest::StatusCode,
        oauth_error: Option<String>,
    },
    #[error("{url}: response larger than {MAX_BODY} bytes")]
    TooLarge { url: String },
    #[error("{url}: {source}")]
    Json {
        url: String,
        source: serde_json::Error,
    },
    #[error("{url}: {reason}")]
    Invalid { url: String, reason: String },
}

/// Sends `request` (to `url`) and reads a JSON body of at most [`MAX_BODY`] bytes.
pub(crate) async fn json<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<T, FetchError> {
    let transport = |source| FetchError::Transport {
        url: url.to_owned(),
        source,
    };
    let mut response = request
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(transport)?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(FetchError::TooLarge {
                url: url.to_owned(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        #[derive(Deserialize)]
        struct OAuthError {
            error: String,
        }
        let oauth_error = serde_json::from_slice::<OAuthError>(&body)
            .ok()
            .map(|e| e.error.chars().take(64).collect());
        return Err(FetchError::Status {
            url: url.to_owned(),
            status,
            oauth_error,
        });
    }
    serde_json::from_slice(&body).map_err(|source| FetchError::Json {
        url: url.to_owned(),
        source,
    })
}

/// The parts of an OpenID provider's discovery document this crate uses.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Discovery {
    pub issuer: String,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub token_endpoint: Option<String>,
}

/// `<issuer>/.well-known/openid-configuration`, whose `issuer` must be `issuer` exactly
/// (OpenID Connect Discovery §4.3), so a document cannot speak for another provider.
pub(crate) async fn discover(
    client: &reqwest::Client,
    issuer: &str,
) -> Result<Discovery, FetchError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let document: Discovery = json(client.get(&url), &url).await?;
    if document.issuer != issuer {
        return Err(FetchError::Invalid {
            url,
            reason: format!("names issuer {:?}, not the configured one", document.issuer),
        });
    }
    Ok(document)
}
