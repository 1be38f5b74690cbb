//! The server side of identity: a tower layer for tonic servers
//! (`Server::builder().layer(AuthLayer::…)`, or [`GrpcServices::with_auth`]) that lets
//! probes through, verifies the bearer token of every other RPC, checks the service's
//! permission table, and hands the [`Caller`] to the handler in the request's extensions.
//! A refused call is answered here with a trailers-only gRPC error and never reaches the
//! service.
//!
//! [`GrpcServices::with_auth`]: crate::server::GrpcServices::with_auth

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio_util::sync::CancellationToken;
use tonic::Status;
use tower::Service;

use super::{AuthMode, AuthSettings, Caller, Permissions, SetupError, Verifier};

/// The health service's path prefix: Kubernetes' gRPC probes send no token.
const HEALTH: &str = "/grpc.health.v1.Health/";
/// Reflection, v1 and v1alpha.
const REFLECTION: &str = "/grpc.reflection.";
/// How often a server without authentication says so.
const DISABLED_WARNING_EVERY: Duration = Duration::from_secs(60);

/// Authenticates and authorises every RPC of a server. Cheap to clone.
#[derive(Clone)]
pub struct AuthLayer {
    check: Arc<Check>,
    permissions: Arc<Permissions>,
    open_health: bool,
    open_reflection: bool,
}

enum Check {
    Tokens(Verifier),
    /// `AUTH_MODE=disabled`; the warning stops when the last clone of the layer goes.
    Disabled {
        _warning: DisabledWarning,
    },
}

impl std::fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer")
            .field(
                "mode",
                &match &*self.check {
                    Check::Tokens(verifier) => format!("{verifier:?}"),
                    Check::Disabled { .. } => "disabled".into(),
                },
            )
            .field("open_health", &self.open_health)
            .field("open_reflection", &self.open_reflection)
            .finish_non_exhaustive()
    }
}

impl AuthLayer {
    /// Tokens checked by `verifier`, calls by `permissions`; health and reflection open.
    pub fn new(verifier: Verifier, permissions: Permissions) -> Self {
        Self {
            check: Arc::new(Check::Tokens(verifier)),
            permissions: Arc::new(permissions),
            open_health: true,
            open_reflection: true,
        }
    }

    /// No authentication: every call is made by [`Caller::unrestricted`] (the table still
    /// refuses methods without a row). Logs a warning now and every minute while the layer
    /// lives; must be built inside a Tokio runtime for the repeats.
    pub fn disabled(permissions: Permissions) -> Self {
        Self {
            check: Arc::new(Check::Disabled {
                _warning: DisabledWarning::start(),
            }),
            permissions: Arc::new(permissions),
            open_health: true,
            open_reflection: true,
        }
    }

    /// The layer `settings` describe (see [`AuthSettings::from_env`]).
    pub fn from_settings(
        settings: &AuthSettings,
        permissions: Permissions,
    ) -> Result<Self, SetupError> {
        let layer = match &settings.mode {
            AuthMode::Oidc(oidc) => Self::new(Verifier::new(oidc.clone())?, permissions),
            AuthMode::Disabled => Self::disabled(permissions),
        };
        Ok(layer
            .open_health(settings.open_health)
            .open_reflection(settings.open_reflection))
    }

    /// Whether `grpc.health.v1.Health` answers without a token.
    pub fn open_health(mut self, open: bool) -> Self {
        self.open_health = open;
        self
    }

    /// Whether reflection answers without a token.
    pub fn open_reflection(mut self, open: bool) -> Self {
        self.open_reflection = open;
        self
    }

    /// The verifier, when tokens are checked (e.g. to load keys at start-up).
    pub fn verifier(&self) -> Option<&Verifier> {
        match &*self.check {
            Check::Tokens(verifier) => Some(verifier),
            Check::Disabled { .. } => None,
        }
    }

    /// Who may make the call to `path` with these headers: `Ok(None)` for an open path,
    /// `UNAUTHENTICATED` without a valid token, `PERMISSION_DENIED` without a role the
    /// table asks for.
    pub async fn authorize(
        &self,
        path: &str,
        headers: &http::HeaderMap,
    ) -> Result<Option<Caller>, Status> {
        if (self.open_health && path.starts_with(HEALTH))
            || (self.open_reflection && path.starts_with(REFLECTION))
        {
            return Ok(None);
        }
        let caller = match &*self.check {
            Check::Tokens(verifier) => verifier.verify_headers(headers).await.map_err(|err| {
                tracing::info!(rpc = path, reason = %err, "call refused: unauthenticated");
                Status::from(err)
            })?,
            Check::Disabled { .. } => Caller::unrestricted(),
        };
        if let Err(denied) = self.permissions.check(&caller, path) {
            tracing::warn!(
                rpc = path,
                subject = %caller.subject,
                roles = ?caller.roles,
                client_id = caller.client_id.as_deref(),
                "call refused: permission denied"
            );
            return Err(denied);
        }
        Ok(Some(caller))
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around a server's routes.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for AuthService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // The clone left behind is not ready yet; the one polled ready takes this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            match layer
                .authorize(request.uri().path(), request.headers())
                .await
            {
                Ok(Some(caller)) => {
                    request.extensions_mut().insert(caller);
                    inner.call(request).await
                }
                Ok(None) => inner.call(request).await,
                // Trailers-only: the status in the headers, no body.
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

/// Says, now and every minute until dropped, that the server checks no tokens.
struct DisabledWarning {
    stop: CancellationToken,
}

impl DisabledWarning {
    fn start() -> Self {
        let stop = CancellationToken::new();
        let warn = || {
            tracing::warn!(
                "authentication is DISABLED (AUTH_MODE=disabled): every caller is let in with \
                 every role; never run like this outside development"
            );
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let stop = stop.clone();
                runtime.spawn(async move {
                    let mut every = tokio::time::interval(DISABLED_WARNING_EVERY);
                    loop {
                        tokio::select! {
                            _ = every.tick() => warn(),
                            () = stop.cancelled() => return,
                        }
                    }
                });
            }
            Err(_) => warn(),
        }
        Self { stop }
    }
}

impl Drop for DisabledWarning {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;
    use tonic::Code;

    use super::*;

    const ECHO: &str = "/aftersales.bench.v1.Echo/Echo";

    #[tokio::test]
    async fn disabled_lets_in_the_unrestricted_caller_but_keeps_deny_by_default() {
        let layer = AuthLayer::disabled(Permissions::new(&[(ECHO, &["agent"])]));
        let caller = layer.authorize(ECHO, &HeaderMap::new()).await.unwrap();
        assert_eq!(caller, Some(Caller::unrestricted()));
        let denied = layer
            .authorize("/aftersales.bench.v1.Echo/Other", &HeaderMap::new())
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
    }

    #[tokio::test]
    async fn probes_are_open_unless_closed() {
        let layer = AuthLayer::disabled(Permissions::default());
        let check = "/grpc.health.v1.Health/Check";
        let reflect = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
        assert!(
            layer
                .authorize(check, &HeaderMap::new())
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            layer
                .authorize(reflect, &HeaderMap::new())
                .await
                .unwrap()
                .is_none()
        );
        let closed = layer.open_health(false).open_reflection(false);
        for path in [check, reflect] {
            let denied = closed.authorize(path, &HeaderMap::new()).await.unwrap_err();
            assert_eq!(denied.code(), Code::PermissionDenied, "{path}: no row");
        }
    }
}
