//! Start-up of the dispatch service: settings (with the keys customers' contacts are
//! sealed with), database and migrations (and sealing contacts older versions stored in
//! clear text), then the gRPC server (DispatchService and PartnerKeyService) with the
//! deadline worker (offer and visit deadlines), the outbox relay and housekeeping beside
//! it, the consumer of care's `CustomerAnonymised` and the consumer of returns'
//! `RepairJobRequested`.

use std::{net::SocketAddr, sync::Arc, time::Duration as StdDuration};

use aftersales_deadlines::DeadlineQueue;
use aftersales_eventbus::{EventBus, relay::Relay};
use aftersales_platform::{
    CancellationToken,
    clock::{self, SharedClock},
    config::{ConfigError, Env},
    db::{self, DbSettings},
    seal::{Vault, VaultSettings, vault_from_env},
    server::{self, GrpcServices, ServeError},
};
use aftersales_runtime::{Background, ServiceSettings, command::Pipeline};
use chrono::Duration;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::{
    anonymisation,
    api::permissions::{AUDITED, PERMISSIONS},
    api::{DispatchApi, PartnerKeyApi},
    domain::job::VisitTargets,
    repairs,
    store::migration::Migrator,
    usecases::{DispatchCore, DispatchRules, SEAL_CONTEXT},
};

/// The gRPC port `aftersales dev` and the manifests use for dispatch.
pub const DEFAULT_PORT: u16 = 50053;
/// The deadline queue dispatch schedules offer and visit deadlines on.
pub const QUEUE: &str = "dispatch";

/// How dispatch's vault is configured: `DISPATCH_ENCRYPTION_KEYS` and
/// `DISPATCH_ACTIVE_KEY_ID` (no search hash: nothing is looked up by contact).
pub const VAULT: VaultSettings<'static> = VaultSettings {
    prefix: "DISPATCH",
    context: SEAL_CONTEXT,
    search: false,
    what: "customer contacts on jobs",
};

/// What only the dispatch service is configured with.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    pub rules: DispatchRules,
    pub vault: Vault,
    /// How long the consumers of care's and returns' events wait for new ones per read.
    pub consumer_block: StdDuration,
    /// Where "now" comes from: the system's; tests move a manual one.
    pub clock: SharedClock,
}

impl DispatchConfig {
    /// Handbook rules, the development key, and a quick consumer.
    pub fn for_tests() -> Self {
        Self {
            rules: DispatchRules::handbook(),
            vault: Vault::development(SEAL_CONTEXT),
            consumer_block: StdDuration::from_millis(100),
            clock: clock::system(),
        }
    }
}

/// `DISPATCH_*` variables and the ones every service shares.
pub fn settings_from_env(
    env: &Env,
    default_database_url: Option<&str>,
) -> Result<(ServiceSettings, DispatchConfig), ConfigError> {
    let common = ServiceSettings::from_env(env, "DISPATCH", DEFAULT_PORT, default_database_url)?;
    let seconds = |name: &str, default: u32| -> Result<Duration, ConfigError> {
        let secs: u32 = env.or(name, default)?;
        if secs == 0 {
            return Err(ConfigError::new(name, "0", "must be at least 1"));
        }
        Ok(Duration::seconds(i64::from(secs)))
    };
    let tolerance: u32 = env.or("DISPATCH_QUOTE_TOLERANCE_PERCENT", 5)?;
    if tolerance > 100 {
        return Err(ConfigError::new(
            "DISPATCH_QUOTE_TOLERANCE_PERCENT",
            &tolerance.to_string(),
            "must be at most 100",
        ));
    }
    let rules = DispatchRules {
        offer_timeout: seconds("DISPATCH_OFFER_TIMEOUT_SECS", 30 * 60)?,
        visit_targets: VisitTargets {
            urban: seconds("DISPATCH_VISIT_URBAN_SECS", 24 * 3_600)?,
            county: seconds("DISPATCH_VISIT_COUNTY_SECS", 48 * 3_600)?,
        },
        quote_tolerance_percent: tolerance,
    };
    let vault = vault_from_env(env, VAULT, common.database.is_sqlite())?;
    Ok((
        common,
        DispatchConfig {
            rules,
            vault,
            consumer_block: StdDuration::from_secs(1),
            clock: clock::system(),
        },
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("dispatch database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("dispatch: sealing contacts stored in clear text: {0}")]
    Seal(crate::error::DispatchError),
    #[error("dispatch server: {0}")]
    Serve(#[from] ServeError),
    #[error("dispatch authentication: {0}")]
    Auth(#[from] aftersales_platform::auth::SetupError),
}

/// Runs the migrations of the dispatch database.
pub async fn migrate(database: &DbSettings) -> Result<DatabaseConnection, StartError> {
    let db = db::connect(database).await?;
    db::migrate::<Migrator>(&db).await?;
    Ok(db)
}

pub struct DispatchApp {
    core: Arc<DispatchCore>,
    listener: TcpListener,
    relay: Relay,
    queue: DeadlineQueue,
    bus: EventBus,
    consumer_block: StdDuration,
    settings: ServiceSettings,
}

impl DispatchApp {
    pub async fn build(
        settings: ServiceSettings,
        config: DispatchConfig,
        bus: EventBus,
        queue: DeadlineQueue,
    ) -> Result<Self, StartError> {
        let db = migrate(&settings.database).await?;
        let relay = Relay::new("dispatch", db.clone(), bus.clone());
        let pipeline = Pipeline::new("dispatch", db, queue.clone(), relay.nudge(), config.clock);
        let core = Arc::new(DispatchCore::new(pipeline, config.rules, config.vault));
        let sealed = core.seal_clear_contacts().await.map_err(StartError::Seal)?;
        if sealed > 0 {
            tracing::info!(jobs = sealed, "sealed contacts stored in clear text");
        }
        let listener = server::bind(settings.grpc_addr).await?;
        Ok(Self {
            core,
            listener,
            relay,
            queue,
            bus,
            consumer_block: config.consumer_block,
            settings,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.settings.grpc_addr)
    }

    pub fn core(&self) -> Arc<DispatchCore> {
        self.core.clone()
    }

    /// Serves until `shutdown`; the consumers stop after the server has drained, like
    /// the runtime's own background tasks.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), StartError> {
        let (core, bus, block) = (self.core.clone(), self.bus, self.consumer_block);
        let background = Background {
            db: self.core.db().clone(),
            queue: self.queue,
            relay: self.relay,
            fires: self.core.clone(),
        };
        let services = self.settings.guarded(
            GrpcServices::new()
                .with(DispatchApi::new(self.core.clone()).into_server())
                .with(PartnerKeyApi::new(self.core).into_server()),
            &background.db,
            PERMISSIONS,
            AUDITED,
        )?;
        aftersales_runtime::run_with_tasks(
            "dispatch",
            self.listener,
            services,
            background,
            &self.settings,
            shutdown,
            |stop| {
                vec![
                    anonymisation::spawn(&core, &bus, block, stop),
                    repairs::spawn(&core, &bus, block, stop),
                ]
            },
        )
        .await?;
        Ok(())
    }
}

aftersales_runtime::queued_service_app!(DispatchApp, "dispatch", DispatchConfig);
