//! Start-up of the tickets service: settings, database and migrations, seeding, then the
//! gRPC server with the SLA worker, the outbox relay and housekeeping beside it, plus the
//! consumers of other services' events (only where the worker runs).

use std::{net::SocketAddr, sync::Arc};

use aftersales_deadlines::DeadlineQueue;
use aftersales_eventbus::{EventBus, relay::Relay};
use aftersales_platform::{
    CancellationToken,
    clock::{self, SharedClock},
    config::{ConfigError, Env},
    db::{self, DbSettings},
    server::{self, GrpcServices, ServeError},
};
use aftersales_runtime::{Background, ServiceSettings, command::Pipeline};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::{
    api::permissions::{AUDITED, PERMISSIONS},
    api::{DeskApi, TicketsApi},
    consumer::OtherServices,
    domain::commitments::{Commitments, DEFAULT_FORBIDDEN, OnForbidden},
    error::TicketsError,
    store::migration::Migrator,
    usecases::{TicketsCore, live::LiveDesk},
};

/// The gRPC port `aftersales dev` and the manifests use for tickets.
pub const DEFAULT_PORT: u16 = 50051;
/// The deadline queue tickets schedule SLA clocks on.
pub const QUEUE: &str = "sla";

/// `TICKETS_DATABASE_URL` (or `DATABASE_URL`), `TICKETS_GRPC_ADDR`, `TICKETS_WORKER_ENABLED`
/// and the variables every service shares.
pub fn settings_from_env(
    env: &Env,
    default_database_url: Option<&str>,
) -> Result<ServiceSettings, ConfigError> {
    ServiceSettings::from_env(env, "TICKETS", DEFAULT_PORT, default_database_url)
}

/// `TICKETS_FORBIDDEN_COMMITMENTS` (phrases separated by `|`; empty: none; unset: the
/// handbook's list) and `TICKETS_FORBIDDEN_COMMITMENTS_ACTION` (`refuse`, the default, or
/// `hold`).
pub fn commitments_from_env(env: &Env) -> Result<Commitments, ConfigError> {
    const ACTION: &str = "TICKETS_FORBIDDEN_COMMITMENTS_ACTION";
    let on_forbidden = match env.raw(ACTION) {
        None => OnForbidden::Refuse,
        Some(text) => OnForbidden::parse(&text)
            .ok_or_else(|| ConfigError::new(ACTION, &text, "must be refuse or hold"))?,
    };
    Ok(match env.raw("TICKETS_FORBIDDEN_COMMITMENTS") {
        None => Commitments::new(DEFAULT_FORBIDDEN.iter().copied(), on_forbidden),
        Some(list) => Commitments::new(list.split('|'), on_forbidden),
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
    #[error("tickets authentication: {0}")]
    Auth(#[from] aftersales_platform::auth::SetupError),
    #[error("tickets configuration: {0}")]
    Config(#[from] ConfigError),
}

/// Runs the migrations of the tickets database.
pub async fn migrate(database: &DbSettings) -> Result<DatabaseConnection, StartError> {
    let db = db::connect(database).await?;
    db::migrate::<Migrator>(&db).await?;
    Ok(db)
}

/// A built service, bound to its port, not yet serving.
pub struct TicketsApp {
    core: Arc<TicketsCore>,
    listener: TcpListener,
    relay: Relay,
    bus: EventBus,
    queue: DeadlineQueue,
    settings: ServiceSettings,
}

impl TicketsApp {
    /// Builds the service on the system clock.
    pub async fn build(
        settings: ServiceSettings,
        bus: EventBus,
        queue: DeadlineQueue,
    ) -> Result<Self, StartError> {
        Self::build_with_clock(settings, bus, queue, clock::system()).await
    }

    /// Builds the service with the use cases reading "now" from `clock` (a test's).
    pub async fn build_with_clock(
        settings: ServiceSettings,
        bus: EventBus,
        queue: DeadlineQueue,
        clock: SharedClock,
    ) -> Result<Self, StartError> {
        let commitments = commitments_from_env(&Env::process())?;
        Self::build_with(settings, bus, queue, clock, commitments).await
    }

    /// Builds the service on `clock` with the forbidden commitments given rather than
    /// configured.
    pub async fn build_with(
        settings: ServiceSettings,
        bus: EventBus,
        queue: DeadlineQueue,
        clock: SharedClock,
        commitments: Commitments,
    ) -> Result<Self, StartError> {
        let db = migrate(&settings.database).await?;
        let relay = Relay::new("tickets", db.clone(), bus.clone());
        let pipeline = Pipeline::new("tickets", db, queue.clone(), relay.nudge(), clock);
        let core = Arc::new(TicketsCore::new(pipeline).with_commitments(commitments));
        core.ensure_defaults().await?;
        let listener = server::bind(settings.grpc_addr).await?;
        Ok(Self {
            core,
            listener,
            relay,
            bus,
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

    /// Serves until `shutdown`, then drains and stops the worker and the relay.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), StartError> {
        let (core, bus) = (self.core.clone(), self.bus);
        let background = Background {
            db: self.core.db().clone(),
            queue: self.queue,
            relay: self.relay,
            fires: self.core.clone(),
        };
        // The live desk's streams end with the server, so they do not hold up its drain.
        let live = LiveDesk::start(
            background.db.clone(),
            chrono::Duration::from_std(self.settings.outbox_retention)
                .unwrap_or(chrono::Duration::MAX),
            shutdown.clone(),
        );
        let services = self.settings.guarded(
            GrpcServices::new()
                .with(TicketsApi::new(self.core.clone()).into_server())
                .with(DeskApi::new(self.core, live).into_server()),
            &background.db,
            PERMISSIONS,
            AUDITED,
        )?;
        // API-only replicas (`TICKETS_WORKER_ENABLED=false`) leave the events to the
        // replicas that run the worker, as they leave the SLA clocks.
        aftersales_runtime::run_with_tasks(
            "tickets",
            self.listener,
            services,
            background,
            &self.settings,
            shutdown,
            |stop| {
                OtherServices::consumers(core, bus)
                    .into_iter()
                    .map(|consumer| tokio::spawn(consumer.run(stop.clone())))
                    .collect()
            },
        )
        .await?;
        Ok(())
    }
}

aftersales_runtime::queued_service_app!(TicketsApp, "tickets");
