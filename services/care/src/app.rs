//! Start-up of the care service: settings (with the encryption keys), database and
//! migrations (and sealing names older versions stored in clear text), then the gRPC
//! server with the deadline worker (follow-up due times, reopen retries), the outbox relay
//! and housekeeping beside it, plus the event consumers that keep care's read model and
//! the retention run.

use std::{net::SocketAddr, sync::Arc, time::Duration as StdDuration};

use aftersales_deadlines::DeadlineQueue;
use aftersales_eventbus::{EventBus, relay::Relay};
use aftersales_platform::{
    CancellationToken,
    auth::TokenSource,
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
    api::CareApi,
    api::permissions::{AUDITED, PERMISSIONS},
    domain::incident::IncidentRules,
    ports::TicketsPort,
    projection::Projection,
    store::migration::Migrator,
    usecases::{CareCore, CareRules, SEAL_CONTEXT},
    worker,
};

/// The gRPC port `aftersales dev` and the manifests use for care.
pub const DEFAULT_PORT: u16 = 50054;
/// The deadline queue care schedules follow-ups and reopen retries on.
pub const QUEUE: &str = "care";
/// Where the tickets service is unless `CARE_TICKETS_URL` says otherwise.
pub const DEFAULT_TICKETS_URL: &str = "http://127.0.0.1:50051";

/// What only the care service is configured with.
#[derive(Debug, Clone)]
pub struct CareConfig {
    pub rules: CareRules,
    pub vault: Vault,
    pub tickets_url: String,
    /// Care's service token for tickets (`CARE_CLIENT_ID`/`_SECRET`); none: calls go
    /// without one.
    pub tickets_token: Option<TokenSource>,
    /// How long a consumer waits for new events per read.
    pub consumer_block: StdDuration,
    /// How often the retention run looks for inactive customers.
    pub retention_every: StdDuration,
    /// Where the use cases read "now": the system's, unless a test sets its own.
    pub clock: SharedClock,
}

impl CareConfig {
    /// Handbook rules, the development key, and quick consumers.
    pub fn for_tests() -> Self {
        Self {
            rules: CareRules::handbook(),
            vault: Vault::development(SEAL_CONTEXT),
            tickets_url: DEFAULT_TICKETS_URL.into(),
            tickets_token: None,
            consumer_block: StdDuration::from_millis(100),
            retention_every: StdDuration::from_secs(24 * 3600),
            clock: clock::system(),
        }
    }
}

/// `CARE_*` variables and the ones every service shares.
pub fn settings_from_env(
    env: &Env,
    default_database_url: Option<&str>,
) -> Result<(ServiceSettings, CareConfig), ConfigError> {
    let common = ServiceSettings::from_env(env, "CARE", DEFAULT_PORT, default_database_url)?;
    let at_least_one = |name: &str, default: u32| -> Result<u32, ConfigError> {
        let n: u32 = env.or(name, default)?;
        if n == 0 {
            return Err(ConfigError::new(name, "0", "must be at least 1"));
        }
        Ok(n)
    };
    let rules = CareRules {
        follow_up_window: Duration::seconds(i64::from(at_least_one(
            "CARE_FOLLOW_UP_WINDOW_SECS",
            24 * 3_600,
        )?)),
        reminder_days_before: env.or("CARE_REMINDER_DAYS_BEFORE", 30)?,
        manager_after_reopens: at_least_one("CARE_MANAGER_AFTER_REOPENS", 2)?,
        retention: Duration::days(i64::from(at_least_one("CARE_RETENTION_DAYS", 730)?)),
        incidents: IncidentRules {
            batch_threshold: env.or("CARE_INCIDENT_BATCH_THRESHOLD", 5)?,
            window: Duration::minutes(i64::from(at_least_one(
                "CARE_INCIDENT_WINDOW_MINUTES",
                24 * 60,
            )?)),
            on_urgent_complaint: env.or("CARE_INCIDENT_ON_URGENT_COMPLAINT", true)?,
            statement_within: Duration::seconds(i64::from(at_least_one(
                "CARE_INCIDENT_STATEMENT_WITHIN_SECS",
                2 * 3_600,
            )?)),
            recall_within: Duration::seconds(i64::from(at_least_one(
                "CARE_INCIDENT_RECALL_WITHIN_SECS",
                48 * 3_600,
            )?)),
        },
        spot_check_rate_percent: {
            let rate = at_least_one(
                "CARE_SPOT_CHECK_RATE_PERCENT",
                crate::domain::spot_check::DEFAULT_RATE_PERCENT,
            )?;
            if rate > 100 {
                return Err(ConfigError::new(
                    "CARE_SPOT_CHECK_RATE_PERCENT",
                    &rate.to_string(),
                    "must be 1 to 100",
                ));
            }
            rate
        },
    };
    let tickets_url = env
        .raw("CARE_TICKETS_URL")
        .unwrap_or_else(|| DEFAULT_TICKETS_URL.into());
    if !(tickets_url.starts_with("http://") || tickets_url.starts_with("https://"))
        || tickets_url.parse::<http::Uri>().is_err()
    {
        return Err(ConfigError::new(
            "CARE_TICKETS_URL",
            &tickets_url,
            "must be an http:// or https:// URL",
        ));
    }
    let vault = vault_from_env(env, VAULT, common.database.is_sqlite())?;
    Ok((
        common,
        CareConfig {
            rules,
            vault,
            tickets_url,
            tickets_token: TokenSource::optional_from_env(env, "CARE").map_err(|e| {
                ConfigError::new("CARE_CLIENT_ID", "", format!("service token: {e}"))
            })?,
            consumer_block: StdDuration::from_secs(1),
            retention_every: StdDuration::from_secs(3_600),
            clock: clock::system(),
        },
    ))
}

/// How care's vault is configured: `CARE_ENCRYPTION_KEYS`, `CARE_ACTIVE_KEY_ID` and
/// `CARE_SEARCH_KEY` (the phone search hash).
pub const VAULT: VaultSettings<'static> = VaultSettings {
    prefix: "CARE",
    context: SEAL_CONTEXT,
    search: true,
    what: "customer names and contact fields",
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("care database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("care: sealing names stored in clear text: {0}")]
    Seal(crate::error::CareError),
    #[error("care tickets client: {0}")]
    Tickets(String),
    #[error("care server: {0}")]
    Serve(#[from] ServeError),
    #[error("care authentication: {0}")]
    Auth(#[from] aftersales_platform::auth::SetupError),
}

/// Runs the migrations of the care database.
pub async fn migrate(database: &DbSettings) -> Result<DatabaseConnection, StartError> {
    let db = db::connect(database).await?;
    db::migrate::<Migrator>(&db).await?;
    Ok(db)
}

pub struct CareApp {
    core: Arc<CareCore>,
    listener: TcpListener,
    relay: Relay,
    queue: DeadlineQueue,
    bus: EventBus,
    projection: Arc<Projection>,
    config: CareConfig,
    settings: ServiceSettings,
}

impl CareApp {
    pub async fn build(
        settings: ServiceSettings,
        config: CareConfig,
        bus: EventBus,
        queue: DeadlineQueue,
    ) -> Result<Self, StartError> {
        let db = migrate(&settings.database).await?;
        let relay = Relay::new("care", db.clone(), bus.clone());
        let tickets = TicketsPort::grpc(
            &config.tickets_url,
            &settings.upstream_tls,
            config.tickets_token.clone(),
        )
        .map_err(StartError::Tickets)?;
        let pipeline = Pipeline::new(
            "care",
            db,
            queue.clone(),
            relay.nudge(),
            config.clock.clone(),
        );
        let core = Arc::new(CareCore::new(
            pipeline,
            config.vault.clone(),
            tickets,
            config.rules,
        ));
        let sealed = core.seal_clear_names().await.map_err(StartError::Seal)?;
        if sealed > 0 {
            tracing::info!(customers = sealed, "sealed names stored in clear text");
        }
        let projection = Projection::new(core.clone());
        let listener = server::bind(settings.grpc_addr).await?;
        Ok(Self {
            core,
            listener,
            relay,
            queue,
            bus,
            projection,
            config,
            settings,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.settings.grpc_addr)
    }

    pub fn core(&self) -> Arc<CareCore> {
        self.core.clone()
    }

    /// Serves until `shutdown`; the consumers and the retention run stop after the
    /// server has drained, like the runtime's own background tasks.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), StartError> {
        let (core, bus, projection) = (self.core.clone(), self.bus, self.projection);
        let config = self.config;
        let background = Background {
            db: self.core.db().clone(),
            queue: self.queue,
            relay: self.relay,
            fires: self.core.clone(),
        };
        let services = self.settings.guarded(
            GrpcServices::new().with(CareApi::new(self.core).into_server()),
            &background.db,
            PERMISSIONS,
            AUDITED,
        )?;
        aftersales_runtime::run_with_tasks(
            "care",
            self.listener,
            services,
            background,
            &self.settings,
            shutdown,
            |stop| {
                let mut tasks =
                    worker::spawn_consumers(&core, &bus, &projection, config.consumer_block, stop);
                tasks.push(worker::spawn_retention(
                    core.clone(),
                    config.retention_every,
                    stop.clone(),
                ));
                tasks
            },
        )
        .await?;
        Ok(())
    }
}

aftersales_runtime::queued_service_app!(CareApp, "care", CareConfig);
