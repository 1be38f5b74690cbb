//! What every service process runs around its gRPC API: the settings all services share
//! (database, listen address, server kit, deadline worker, retention), and [`run`], which
//! serves the API with the deadline worker, the outbox relay and housekeeping beside it
//! and stops them together: NOT_SERVING, drain, then the background tasks finish their
//! current batch, so a clean stop leaves no claim leased.

pub mod command;
pub mod firing;
pub mod module;
#[cfg(feature = "testing")]
pub mod testing;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use aftersales_deadlines::{
    DeadlineQueue,
    worker::{self, Deadlines, WorkerSettings},
};
use aftersales_eventbus::relay::Relay;
use aftersales_platform::{
    CancellationToken,
    audit::AuditLog,
    auth::{AuthLayer, AuthSettings, Permissions, SetupError},
    config::{ConfigError, Env},
    db::DbSettings,
    idempotency, metrics,
    server::{self, GrpcServices, ServeError, ServerSettings},
    tls::UpstreamTls,
};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

/// Settings every service reads, under its own prefix where they differ per service.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub database: DbSettings,
    pub grpc_addr: SocketAddr,
    pub server: ServerSettings,
    pub worker: WorkerSettings,
    /// False for API-only replicas (`<PREFIX>_WORKER_ENABLED=false`).
    pub run_worker: bool,
    /// How long idempotency keys are honoured (`IDEMPOTENCY_RETENTION_HOURS`).
    pub idempotency_retention: Duration,
    /// How long published outbox rows are kept (`OUTBOX_RETENTION_HOURS`).
    pub outbox_retention: Duration,
    /// Who may call (`AUTH_*`); `None` when none are set, and then the server refuses to
    /// start (migrations and admin commands need none). `AUTH_MODE=disabled` must be
    /// explicit.
    pub auth: Option<AuthSettings>,
    /// How `https://` upstreams (care → tickets) are checked (`UPSTREAM_*`).
    pub upstream_tls: UpstreamTls,
}

impl ServiceSettings {
    /// `<PREFIX>_DATABASE_URL` (or `DATABASE_URL`), `<PREFIX>_GRPC_ADDR`, the server kit's
    /// variables, the deadline worker's `SLA_*` variables and the retention periods.
    pub fn from_env(
        env: &Env,
        prefix: &str,
        default_port: u16,
        default_database_url: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let db_var = format!("{prefix}_DATABASE_URL");
        let url = env
            .first_of(&[&db_var, "DATABASE_URL"])
            .or(default_database_url.map(str::to_owned))
            .ok_or_else(|| {
                ConfigError::new(
                    "DATABASE_URL",
                    "",
                    "is required (postgres://… or sqlite://…)",
                )
            })?;
        if !(url.starts_with("postgres://")
            || url.starts_with("postgresql://")
            || url.starts_with("sqlite:"))
        {
            return Err(ConfigError::new(
                "DATABASE_URL",
                &url,
                "must start with postgres:// or sqlite:",
            ));
        }
        let mut database = DbSettings::new(url);
        database.max_connections = env.or("DATABASE_MAX_CONNECTIONS", 16u32)?;
        let addr_var = format!("{prefix}_GRPC_ADDR");
        let mut server = ServerSettings::from_env(env)?;
        server.health_addr = env.optional(&format!("{prefix}_GRPC_HEALTH_ADDR"))?;
        Ok(Self {
            database,
            grpc_addr: env.or(&addr_var, SocketAddr::from(([0, 0, 0, 0], default_port)))?,
            server,
            worker: worker_settings(env)?,
            run_worker: env.or(&format!("{prefix}_WORKER_ENABLED"), true)?,
            idempotency_retention: env.hours("IDEMPOTENCY_RETENTION_HOURS", 72)?,
            outbox_retention: env.hours("OUTBOX_RETENTION_HOURS", 168)?,
            auth: auth_settings(env)?,
            upstream_tls: UpstreamTls::from_env(env)?,
        })
    }

    /// Settings for a test: port 0 on loopback, short leases and quick rebuild checks.
    pub fn for_tests(database_url: String, lease: Duration) -> Self {
        Self {
            database: DbSettings::new(database_url),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            server: ServerSettings::for_tests(),
            worker: WorkerSettings {
                batch: 64,
                lease,
                max_idle: Duration::from_millis(200),
                reconcile_every: Duration::from_secs(60),
                lost_check_every: Duration::from_millis(200),
            },
            run_worker: true,
            idempotency_retention: Duration::from_secs(3600),
            outbox_retention: Duration::from_secs(3600),
            auth: Some(AuthSettings::disabled()),
            upstream_tls: UpstreamTls::default(),
        }
    }

    /// `services` behind the service's permission table, with its audit trail in `db`:
    /// every denial and every call of an `audited` RPC recorded, and the trail's listing
    /// RPC served beside them (its row is in `permissions`, like every other).
    pub fn guarded(
        &self,
        services: GrpcServices,
        db: &DatabaseConnection,
        permissions: &[(&'static str, &'static [&'static str])],
        audited: &'static [&'static str],
    ) -> Result<GrpcServices, SetupError> {
        let audit = AuditLog::new(db.clone());
        Ok(services
            .with(audit.api())
            .with_auth(self.auth_layer(permissions)?.with_audit(audit, audited)))
    }

    /// The server layer that checks callers against `permissions` (the service's table).
    fn auth_layer(
        &self,
        permissions: &[(&'static str, &'static [&'static str])],
    ) -> Result<AuthLayer, SetupError> {
        match &self.auth {
            Some(auth) => AuthLayer::from_settings(auth, Permissions::new(permissions)),
            // Says what to set: AUTH_ISSUER and AUTH_AUDIENCE, or AUTH_MODE=disabled.
            None => Err(
                AuthSettings::from_env(&Env::from_pairs::<String, String>([]))
                    .err()
                    .map_or_else(
                        || SetupError::Provider("no authentication settings".into()),
                        SetupError::from,
                    ),
            ),
        }
    }
}

/// The `AUTH_*` settings; `None` when none is set at all (a malformed one is an error).
fn auth_settings(env: &Env) -> Result<Option<AuthSettings>, ConfigError> {
    let any = ["AUTH_MODE", "AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_JWKS_URL"]
        .iter()
        .any(|name| env.raw(name).is_some());
    if any {
        AuthSettings::from_env(env).map(Some)
    } else {
        Ok(None)
    }
}

fn worker_settings(env: &Env) -> Result<WorkerSettings, ConfigError> {
    Ok(WorkerSettings {
        batch: env.positive("SLA_BATCH", 256)?,
        lease: env.millis("SLA_LEASE_MS", 30_000, false)?,
        max_idle: env.millis("SLA_MAX_IDLE_MS", 500, false)?,
        reconcile_every: env.millis("SLA_RECONCILE_INTERVAL_MS", 60_000, false)?,
        lost_check_every: env.millis("SLA_LOST_CHECK_INTERVAL_MS", 1_000, false)?,
    })
}

/// The parts of a built service that run beside its API.
pub struct Background<C> {
    pub db: DatabaseConnection,
    pub queue: DeadlineQueue,
    pub relay: Relay,
    /// The service core that fires its deadlines.
    pub fires: Arc<C>,
}

/// Serves `services` on `listener` until `shutdown`, with the deadline worker (unless
/// disabled), the relay and housekeeping running beside it; then stops everything.
pub async fn run<C: Deadlines>(
    name: &'static str,
    listener: TcpListener,
    services: GrpcServices,
    background: Background<C>,
    settings: &ServiceSettings,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    if settings.run_worker {
        tasks.push(tokio::spawn(worker::run(
            background.queue.clone(),
            background.fires.clone(),
            settings.worker.clone(),
            move |late| metrics::clock_fired(name, late),
            stop.clone(),
        )));
    }
    tasks.push(tokio::spawn(background.relay.clone().run(stop.clone())));
    tasks.push(tokio::spawn(sample_metrics(
        name,
        background.db.clone(),
        background.queue.clone(),
        stop.clone(),
    )));
    tasks.push(tokio::spawn(housekeeping(
        background.db.clone(),
        settings.clone(),
        stop.clone(),
    )));
    let addr = listener.local_addr().ok();
    tracing::info!(service = name, ?addr, "listening");
    let served = server::serve(listener, settings.server.clone(), services, shutdown).await;
    stop.cancel();
    let stopped = async {
        for task in tasks {
            let _ = task.await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .is_err()
    {
        tracing::warn!(service = name, "background tasks did not stop in time");
    }
    served
}

/// Serves like [`run`], with the service's own background tasks (its event consumers,
/// say) beside it: `spawn` starts them, only on replicas that run the worker, with a token
/// that is cancelled once the server has drained; they are awaited before this returns.
pub async fn run_with_tasks<C: Deadlines>(
    name: &'static str,
    listener: TcpListener,
    services: GrpcServices,
    background: Background<C>,
    settings: &ServiceSettings,
    shutdown: CancellationToken,
    spawn: impl FnOnce(&CancellationToken) -> Vec<tokio::task::JoinHandle<()>>,
) -> Result<(), ServeError> {
    let stop = CancellationToken::new();
    let tasks = if settings.run_worker {
        spawn(&stop)
    } else {
        Vec::new()
    };
    let served = run(name, listener, services, background, settings, shutdown).await;
    stop.cancel();
    for task in tasks {
        let _ = task.await;
    }
    served
}

/// How often the gauges (pending deadlines, outbox backlog, pool use) are refreshed.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// Refreshes the gauges no single event moves: now, then every `SAMPLE_EVERY`.
async fn sample_metrics(
    name: &'static str,
    db: DatabaseConnection,
    queue: DeadlineQueue,
    stop: CancellationToken,
) {
    loop {
        match queue.stats().await {
            Ok(stats) => metrics::clocks_pending(name, stats.scheduled),
            Err(err) => tracing::debug!(error = %err, "deadline queue stats unavailable"),
        }
        match aftersales_eventbus::outbox::backlog(&db).await {
            Ok((count, oldest)) => {
                let age = oldest
                    .and_then(|t| (chrono::Utc::now() - t).to_std().ok())
                    .unwrap_or_default();
                metrics::outbox(name, count, age);
            }
            Err(err) => tracing::debug!(error = %err, "outbox backlog unavailable"),
        }
        let (in_use, idle, max) = aftersales_platform::db::pool_stats(&db);
        metrics::db_pool(name, in_use, idle, max);
        tokio::select! {
            () = tokio::time::sleep(SAMPLE_EVERY) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Every ten minutes, trims expired idempotency keys and old published outbox rows.
async fn housekeeping(db: DatabaseConnection, settings: ServiceSettings, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(600)) => {}
            () = stop.cancelled() => return,
        }
        match trim(&db, &settings).await {
            Ok((keys, events)) => tracing::debug!(keys, events, "housekeeping done"),
            Err(err) => tracing::warn!(error = %err, "housekeeping failed"),
        }
    }
}

/// Deletes idempotency keys and published outbox rows past their retention; returns how
/// many of each.
pub async fn trim(
    db: &DatabaseConnection,
    settings: &ServiceSettings,
) -> Result<(u64, u64), sea_orm::DbErr> {
    let now = chrono::Utc::now();
    let ago = |d: Duration| {
        chrono::Duration::from_std(d)
            .ok()
            .and_then(|d| now.checked_sub_signed(d))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
    };
    let keys = idempotency::forget_before(db, ago(settings.idempotency_retention)).await?;
    let events =
        aftersales_eventbus::outbox::purge_published_before(db, ago(settings.outbox_retention))
            .await?;
    Ok((keys, events))
}
