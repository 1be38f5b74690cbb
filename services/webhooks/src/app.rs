//! Start-up of the webhooks service: settings (delivery time-out, per-endpoint
//! concurrency, retry schedule, disable period, allowed targets, the keys endpoint
//! secrets are sealed with), database and migrations, then the gRPC server with the
//! deadline worker (delivery attempts), the outbox relay and housekeeping beside it, and
//! the consumers that turn the suite's events into deliveries.

use std::{net::SocketAddr, sync::Arc, time::Duration as StdDuration};

use aftersales_deadlines::DeadlineQueue;
use aftersales_eventbus::{EventBus, relay::Relay};
use aftersales_platform::{
    CancellationToken, clock,
    config::{ConfigError, Env},
    db::{self, DbSettings},
    seal::{Vault, VaultSettings, vault_from_env},
    server::{self, GrpcServices, ServeError},
};
use aftersales_runtime::{Background, ServiceSettings, command::Pipeline};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::{
    api::{
        WebhooksApi,
        permissions::{AUDITED, PERMISSIONS},
    },
    domain::{FailurePolicy, retry::RetrySchedule, target::AllowList},
    intake,
    sender::{Sender, SenderSettings},
    store::migration::Migrator,
    usecases::{SEAL_CONTEXT, WebhooksCore, direct},
};

/// The gRPC port `aftersales dev` and the manifests use for webhooks.
pub const DEFAULT_PORT: u16 = 50056;
/// The deadline queue delivery attempts are scheduled on.
pub const QUEUE: &str = "webhooks";

/// `WEBHOOKS_ENCRYPTION_KEYS` and `WEBHOOKS_ACTIVE_KEY_ID` seal endpoint secrets.
pub const VAULT: VaultSettings<'static> = VaultSettings {
    prefix: "WEBHOOKS",
    context: SEAL_CONTEXT,
    search: false,
    what: "webhook endpoint secrets",
};

/// What only the webhooks service is configured with.
#[derive(Debug, Clone)]
pub struct WebhooksConfig {
    pub sender: SenderSettings,
    pub policy: FailurePolicy,
    pub vault: Vault,
    /// How long a consumer waits for new events per read.
    pub consumer_block: StdDuration,
    /// Consumers per stream in this process: while one waits for its commit, another
    /// reads and applies the next events.
    pub intake_consumers: usize,
}

impl WebhooksConfig {
    /// Standard policy, the development key, loopback targets allowed, quick consumers.
    pub fn for_tests() -> Self {
        Self {
            sender: SenderSettings {
                timeout: StdDuration::from_secs(5),
                per_endpoint: 16,
                allow: AllowList::parse("127.0.0.0/8,::1/128,localhost").unwrap_or_default(),
            },
            policy: FailurePolicy::standard(),
            vault: Vault::development(SEAL_CONTEXT),
            consumer_block: StdDuration::from_millis(100),
            intake_consumers: 4,
        }
    }
}

/// `WEBHOOKS_*` variables and the ones every service shares.
pub fn settings_from_env(
    env: &Env,
    default_database_url: Option<&str>,
) -> Result<(ServiceSettings, WebhooksConfig), ConfigError> {
    let common = ServiceSettings::from_env(env, "WEBHOOKS", DEFAULT_PORT, default_database_url)?;
    let allowed = env.raw("WEBHOOKS_ALLOWED_TARGETS").unwrap_or_default();
    let allow = AllowList::parse(&allowed)
        .map_err(|reason| ConfigError::new("WEBHOOKS_ALLOWED_TARGETS", &allowed, reason))?;
    let first = env.millis("WEBHOOKS_RETRY_FIRST_MS", 5_000, false)?;
    let max = env.millis("WEBHOOKS_RETRY_MAX_MS", 3_600_000, false)?;
    if max < first {
        return Err(ConfigError::new(
            "WEBHOOKS_RETRY_MAX_MS",
            &max.as_millis().to_string(),
            "must be at least WEBHOOKS_RETRY_FIRST_MS",
        ));
    }
    let disable_after = env.millis("WEBHOOKS_DISABLE_AFTER_MS", 5 * 86_400_000, false)?;
    let disable_after = chrono::Duration::from_std(disable_after).map_err(|_| {
        ConfigError::new(
            "WEBHOOKS_DISABLE_AFTER_MS",
            &disable_after.as_millis().to_string(),
            "is too long",
        )
    })?;
    let vault = vault_from_env(env, VAULT, common.database.is_sqlite())?;
    Ok((
        common,
        WebhooksConfig {
            sender: SenderSettings {
                timeout: env.millis("WEBHOOKS_TIMEOUT_MS", 10_000, false)?,
                per_endpoint: env.positive("WEBHOOKS_ENDPOINT_CONCURRENCY", 16)?,
                allow,
            },
            policy: FailurePolicy {
                retry: RetrySchedule { first, max },
                disable_after,
                first_attempt_grace: chrono::Duration::from_std(env.millis(
                    "WEBHOOKS_FIRST_ATTEMPT_GRACE_MS",
                    30_000,
                    false,
                )?)
                .unwrap_or(chrono::Duration::seconds(30)),
            },
            vault,
            consumer_block: StdDuration::from_secs(1),
            intake_consumers: env.positive("WEBHOOKS_INTAKE_CONSUMERS", 4)?,
        },
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("webhooks database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("webhooks HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("webhooks server: {0}")]
    Serve(#[from] ServeError),
    #[error("webhooks authentication: {0}")]
    Auth(#[from] aftersales_platform::auth::SetupError),
}

/// Runs the migrations of the webhooks database.
pub async fn migrate(database: &DbSettings) -> Result<DatabaseConnection, StartError> {
    let db = db::connect(database).await?;
    db::migrate::<Migrator>(&db).await?;
    Ok(db)
}

pub struct WebhooksApp {
    core: Arc<WebhooksCore>,
    listener: TcpListener,
    relay: Relay,
    queue: DeadlineQueue,
    bus: EventBus,
    consumer_block: StdDuration,
    intake_consumers: usize,
    settings: ServiceSettings,
}

impl WebhooksApp {
    pub async fn build(
        settings: ServiceSettings,
        config: WebhooksConfig,
        bus: EventBus,
        queue: DeadlineQueue,
    ) -> Result<Self, StartError> {
        let db = migrate(&settings.database).await?;
        let relay = Relay::new("webhooks", db.clone(), bus.clone());
        let pipeline = Pipeline::new(
            "webhooks",
            db,
            queue.clone(),
            relay.nudge(),
            clock::system(),
        );
        let sender = Sender::new(config.sender)?;
        let core = Arc::new(WebhooksCore::new(
            pipeline,
            config.vault,
            sender,
            config.policy,
        ));
        let listener = server::bind(settings.grpc_addr).await?;
        Ok(Self {
            core,
            listener,
            relay,
            queue,
            bus,
            consumer_block: config.consumer_block,
            intake_consumers: config.intake_consumers,
            settings,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.settings.grpc_addr)
    }

    pub fn core(&self) -> Arc<WebhooksCore> {
        self.core.clone()
    }

    /// Serves until `shutdown`; the consumers stop after the server has drained.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), StartError> {
        let (core, bus, block) = (self.core.clone(), self.bus, self.consumer_block);
        let consumers = self.intake_consumers;
        let background = Background {
            db: self.core.db().clone(),
            queue: self.queue,
            relay: self.relay,
            fires: self.core.clone(),
        };
        let services = self.settings.guarded(
            GrpcServices::new().with(WebhooksApi::new(self.core).into_server()),
            &background.db,
            PERMISSIONS,
            AUDITED,
        )?;
        aftersales_runtime::run_with_tasks(
            "webhooks",
            self.listener,
            services,
            background,
            &self.settings,
            shutdown,
            |stop| {
                let mut tasks = intake::spawn(&core, &bus, block, consumers, stop);
                tasks.extend(direct::spawn(&core, stop));
                tasks
            },
        )
        .await?;
        Ok(())
    }
}

aftersales_runtime::queued_service_app!(WebhooksApp, "webhooks", WebhooksConfig);
