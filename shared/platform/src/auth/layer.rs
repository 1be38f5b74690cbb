//! The server side of identity: a tower layer for tonic servers
//! (`Server::builder().layer(AuthLayer::…)`, or [`GrpcServices::with_auth`]) that lets
//! probes through, verifies the bearer token of every other RPC, checks the service's
//! permission table, and hands the [`Caller`] to the handler in the request's extensions.
//! A refused call is answered here with a trailers-only gRPC error and never reaches the
//! service. Given an audit sink ([`AuthLayer::with_audit`]), it also keeps the audit trail
//! (see [`crate::audit`]): every denial, every call of an audited RPC and every call whose
//! handler named a target.
//!
//! [`GrpcServices::with_auth`]: crate::server::GrpcServices::with_auth

use std::{
    collections::HashSet,
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
use crate::audit::{AuditRecord, AuditSink, Filled, Scope, code_name};

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
    audit: Option<Arc<Audit>>,
}

/// Where a server's audit records go, and which of its RPCs are always recorded.
struct Audit {
    sink: Arc<dyn AuditSink>,
    always: HashSet<&'static str>,
}

/// A refusal, with the caller when the token was valid (a denial to record).
struct Refusal {
    status: Status,
    caller: Option<Caller>,
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
            .field("audited", &self.audit.is_some())
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
            audit: None,
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
            audit: None,
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

    /// Keeps the audit trail in `sink`: every denial (with its caller), every call of an
    /// RPC in `always` (full paths, whatever the outcome), and every call whose handler
    /// named a target with [`crate::audit::target`].
    pub fn with_audit(mut self, sink: impl AuditSink, always: &[&'static str]) -> Self {
        self.audit = Some(Arc::new(Audit {
            sink: Arc::new(sink),
            always: always.iter().copied().collect(),
        }));
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
        self.decide(path, headers).await.map_err(|r| r.status)
    }

    async fn decide(
        &self,
        path: &str,
        headers: &http::HeaderMap,
    ) -> Result<Option<Caller>, Refusal> {
        if (self.open_health && path.starts_with(HEALTH))
            || (self.open_reflection && path.starts_with(REFLECTION))
        {
            return Ok(None);
        }
        let caller = match &*self.check {
            Check::Tokens(verifier) => verifier.verify_headers(headers).await.map_err(|err| {
                tracing::info!(rpc = path, reason = %err, "call refused: unauthenticated");
                // Not recorded: without a valid token there is no verified subject, and
                // anyone could fill the trail. The log line above keeps the attempt.
                Refusal {
                    status: Status::from(err),
                    caller: None,
                }
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
            return Err(Refusal {
                status: denied,
                caller: Some(caller),
            });
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
    ResBody: Default + Send,
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
            let path = request.uri().path().to_owned();
            match (layer.decide(&path, request.headers()).await, &layer.audit) {
                (Ok(Some(caller)), None) => {
                    request.extensions_mut().insert(caller);
                    inner.call(request).await
                }
                (Ok(Some(caller)), Some(audit)) => {
                    request.extensions_mut().insert(caller.clone());
                    let (response, filled) = Scope::run(inner.call(request)).await;
                    let response = response?;
                    // A success carries its status in the trailers; an error is
                    // trailers-only, its status in the headers.
                    let code = response
                        .headers()
                        .get("grpc-status")
                        .map_or(tonic::Code::Ok, |v| tonic::Code::from_bytes(v.as_bytes()));
                    if !(audit.always.contains(path.as_str())
                        || filled.is_privileged()
                        || code == tonic::Code::PermissionDenied)
                    {
                        return Ok(response);
                    }
                    let mut filled = filled;
                    if code == tonic::Code::PermissionDenied
                        && let Some(denied) = Status::from_header_map(response.headers())
                    {
                        filled
                            .detail
                            .insert("reason".into(), denied.message().into());
                    }
                    match audit
                        .sink
                        .write(records(&caller, &path, code, filled))
                        .await
                    {
                        Ok(()) => Ok(response),
                        Err(err) => {
                            // Fail closed: no answer (clear data, a key) leaves unaudited.
                            // A command may have committed: its retry with the same key
                            // answers with the first result and is recorded then.
                            tracing::error!(rpc = %path, error = %err, "audit record not written; answer withheld");
                            Ok(Status::unavailable("the audit trail is unavailable, retry")
                                .into_http())
                        }
                    }
                }
                (Ok(None), _) => inner.call(request).await,
                (Err(refusal), audit) => {
                    if let (Some(audit), Some(caller)) = (audit, &refusal.caller) {
                        let mut filled = Filled::default();
                        filled
                            .detail
                            .insert("reason".into(), refusal.status.message().into());
                        let denied = records(caller, &path, refusal.status.code(), filled);
                        if let Err(err) = audit.sink.write(denied).await {
                            tracing::error!(rpc = %path, error = %err, "audit record of a denial not written");
                        }
                    }
                    // Trailers-only: the status in the headers, no body.
                    Ok(refusal.status.into_http())
                }
            }
        })
    }
}

/// The records of one call by `caller` to `rpc` that ended with `code`: one per target
/// the handler named, or one without a target.
fn records(caller: &Caller, rpc: &str, code: tonic::Code, filled: Filled) -> Vec<AuditRecord> {
    let at = chrono::Utc::now();
    let targets: Vec<Option<String>> = if filled.targets.is_empty() {
        vec![None]
    } else {
        filled.targets.into_iter().map(Some).collect()
    };
    targets
        .into_iter()
        .map(|target| AuditRecord {
            id: uuid::Uuid::now_v7().to_string(),
            at,
            subject: caller.subject.clone(),
            on_behalf_of: filled.on_behalf_of.clone(),
            roles: caller.roles.iter().cloned().collect(),
            client_id: caller.client_id.clone(),
            rpc: rpc.to_owned(),
            target,
            outcome: code_name(code).to_owned(),
            detail: filled.detail.clone(),
        })
        .collect()
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

    /// The code of a gRPC answer made by the layer or the test handler.
    fn code_of(response: &http::Response<String>) -> Code {
        response
            .headers()
            .get("grpc-status")
            .map_or(Code::Ok, |v| Code::from_bytes(v.as_bytes()))
    }

    async fn call(layer: &AuthLayer, path: &str) -> http::Response<String> {
        use tower::{Layer, ServiceExt};
        // Names a target on /T, refuses on /Refuse, answers OK otherwise.
        let handler = tower::service_fn(|request: http::Request<()>| async move {
            let path = request.uri().path().to_owned();
            if path.ends_with("/T") {
                crate::audit::target("customer:c-1");
                crate::audit::note("purpose", "a complaint");
            }
            if path.ends_with("/Refuse") {
                return Ok::<_, std::convert::Infallible>(
                    Status::permission_denied("actor: names someone else").into_http(),
                );
            }
            Ok(http::Response::new(String::new()))
        });
        let request = http::Request::builder().uri(path).body(()).unwrap();
        layer.layer(handler).oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn denials_audited_rpcs_and_named_targets_are_recorded() {
        use crate::audit::memory::MemorySink;
        const AUDITED: &str = "/aftersales.bench.v1.Echo/Audited";
        const TARGETED: &str = "/aftersales.bench.v1.Echo/T";
        const REFUSE: &str = "/aftersales.bench.v1.Echo/Refuse";
        let sink = MemorySink::default();
        let table = Permissions::new(&[
            (ECHO, &["agent"]),
            (AUDITED, &["admin"]),
            (TARGETED, &["agent"]),
            (REFUSE, &["agent"]),
        ]);
        let layer = AuthLayer::disabled(table.clone()).with_audit(sink.clone(), &[AUDITED]);
        for path in [
            ECHO,
            AUDITED,
            TARGETED,
            REFUSE,
            "/aftersales.bench.v1.Echo/NoRow",
        ] {
            call(&layer, path).await;
        }
        let records = sink.records.lock().unwrap().clone();
        let seen: Vec<(&str, &str, Option<&str>)> = records
            .iter()
            .map(|r| (r.rpc.as_str(), r.outcome.as_str(), r.target.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                (AUDITED, "OK", None),
                (TARGETED, "OK", Some("customer:c-1")),
                (REFUSE, "PERMISSION_DENIED", None),
                ("/aftersales.bench.v1.Echo/NoRow", "PERMISSION_DENIED", None),
            ],
            "a plain call is not recorded"
        );
        assert!(records.iter().all(|r| r.subject == "anonymous"));
        assert_eq!(records[1].detail["purpose"], "a complaint");
        assert_eq!(records[2].detail["reason"], "actor: names someone else");
        assert_eq!(records[3].detail["reason"], "method not permitted");

        // A record that cannot be written withholds the answer.
        let broken = MemorySink {
            broken: true,
            ..MemorySink::default()
        };
        let layer = AuthLayer::disabled(table).with_audit(broken, &[AUDITED]);
        assert_eq!(code_of(&call(&layer, TARGETED).await), Code::Unavailable);
        assert_eq!(code_of(&call(&layer, ECHO).await), Code::Ok);
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
