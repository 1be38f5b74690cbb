//! Start-up of the tickets service: settings from the environment, database and
//! migrations, then the gRPC server, the SLA worker and the outbox relay, stopped together.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use aftersales_deadlines::{DeadlineQueue, worker::WorkerSettings};
use aftersales_eventbus::{EventBus, relay::Relay};
use aftersales_platform::{
    CancellationToken,
    config::{ConfigError, Env},
    db::{self, DbSettings},
    server::{self, GrpcServices, ServeError, ServerSettings},
};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::{
    api::TicketsApi, error::TicketsError, service::TicketsCore, store::migration::Migrator,
    worker::SlaFiring,
};

/// The gRPC port `aftersales dev` and the manifests use for tickets.
pub const DEFAULT_PORT: u16 = 50051;

#[derive(Debug, Clone)]
pub struct TicketsSettings {
    pub database: DbSettings,
    pub grpc_addr: SocketAddr,
    pub server: ServerSettings,
    pub worker: WorkerSettings,
    /// False for API-only replicas (`SLA_WORKER_ENABLED=false`).
    pub run_worker: bool,
    /// How long idempotency keys are honoured (`IDEMPOTENCY_RETENTION_HOURS`).
    pub idempotency_retention: Duration,
    /// How long published outbox rows are kept (`OUTBOX_RETENTION_HOURS`).
    pub outbox_retention: Duration,
}

impl TicketsSettings {
    /// `TICKETS_DATABASE_URL` (or `DATABASE_URL`), `TICKETS_GRPC_ADDR`, the server kit's
    /// variables and the SLA worker's `SLA_*` variables.
    pub fn from_env(env: &Env, default_database_url: Option<&str>) -> Result<Self, ConfigError> {
        let url = env
            .first_of(&["TICKETS_DATABASE_URL", "DATABASE_URL"])
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
        let grpc_addr = env.or(
            "TICKETS_GRPC_ADDR",
            SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
        )?;
        Ok(Self {
            database,
            grpc_addr,
            server: ServerSettings::from_env(env)?,
            worker: worker_settings(env)?,
            run_worker: env.or("SLA_WORKER_ENABLED", true)?,
            idempotency_retention: hours(env, "IDEMPOTENCY_RETENTION_HOURS", 72)?,
            outbox_retention: hours(env, "OUTBOX_RETENTION_HOURS", 168)?,
        })
    }
}

fn hours(env: &Env, name: &str, default: u64) -> Result<Duration, ConfigError> {
    let hours: u64 = env.or(name, default)?;
    if hours == 0 {
        return Err(ConfigError::new(name, "0", "must be at least 1"));
    }
    Ok(Duration::from_secs(hours * 3600))
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

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("tickets database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("tickets defaults: {0}")]
    Seed(#[from] TicketsError),
    #[error("tickets server: {0}")]
    Serve(#[from] ServeError),
}

/// A built service, bound to its port, not yet serving.
pub struct TicketsApp {
    core: Arc<TicketsCore>,
    listener: TcpListener,
    relay: Relay,
    queue: DeadlineQueue,
    settings: TicketsSettings,
}

/// Runs the migrations of the tickets database.
pub async fn migrate(database: &DbSettings) -> Result<DatabaseConnection, StartError> {
    let db = db::connect(database).await?;
    db::migrate::<Migrator>(&db).await?;
    Ok(db)
}

impl TicketsApp {
    pub async fn build(
        settings: TicketsSettings,
        bus: EventBus,
        queue: DeadlineQueue,
    ) -> Result<Self, StartError> {
        let db = migrate(&settings.database).await?;
        let relay = Relay::new(db.clone(), bus);
        let core = Arc::new(TicketsCore::new(db, queue.clone(), relay.nudge()));
        core.ensure_defaults().await?;
        let listener = server::bind(settings.grpc_addr).await?;
        Ok(Self {
            core,
            listener,
            relay,
            queue,
            settings,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.settings.grpc_addr)
    }

    pub fn core(&self) -> Arc<TicketsCore> {
        self.core.clone()
    }

    /// Serves until `shutdown`; then drains RPCs and stops the worker and the relay after
    /// their current batch, so no claim is left leased by a clean stop.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), StartError> {
        let background = CancellationToken::new();
        let worker = self.settings.run_worker.then(|| {
            tokio::spawn(aftersales_deadlines::worker::run(
                self.queue.clone(),
                Arc::new(SlaFiring::new(self.core.clone())),
                self.settings.worker.clone(),
                background.clone(),
            ))
        });
        let relay = tokio::spawn(self.relay.clone().run(background.clone()));
        let housekeeping = tokio::spawn(housekeeping(
            self.core.clone(),
            self.settings.clone(),
            background.clone(),
        ));
        tracing::info!(addr = %self.local_addr(), "tickets service listening");
        let services = GrpcServices::new().with(TicketsApi::new(self.core.clone()).into_server());
        let served = server::serve(
            self.listener,
            self.settings.server.clone(),
            services,
            shutdown,
        )
        .await;
        background.cancel();
        let stopped = async {
            if let Some(worker) = worker {
                let _ = worker.await;
            }
            let _ = relay.await;
            let _ = housekeeping.await;
        };
        if tokio::time::timeout(Duration::from_secs(10), stopped)
            .await
            .is_err()
        {
            tracing::warn!("tickets background tasks did not stop in time");
        }
        Ok(served?)
    }
}

/// Every ten minutes, trims expired idempotency keys and old published outbox rows.
async fn housekeeping(core: Arc<TicketsCore>, settings: TicketsSettings, stop: CancellationToken) {
    let to_chrono = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(600)) => {}
            () = stop.cancelled() => return,
        }
        let keys_for = to_chrono(settings.idempotency_retention);
        match core
            .housekeep(keys_for, to_chrono(settings.outbox_retention))
            .await
        {
            Ok((keys, events)) => tracing::debug!(keys, events, "housekeeping done"),
            Err(err) => tracing::warn!(error = %err, "housekeeping failed"),
        }
    }
}
