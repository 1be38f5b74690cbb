//! Start-up of the returns service: settings, database and migrations, seeding, then the
//! gRPC server with the deadline worker (step deadlines, refund retries), the outbox relay
//! and housekeeping beside it, plus the consumer of other services' events (only where
//! the worker runs).

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
use chrono::Duration;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::{
    api::ReturnsApi,
    api::permissions::{AUDITED, PERMISSIONS},
    consumer::OtherServices,
    domain::{
        compensation::ApprovalLimits,
        rma::{StepTargets, repair::Unrepairable},
    },
    error::ReturnsError,
    ports::{Carriers, PaymentProvider, SimulatedPayments},
    store::migration::Migrator,
    usecases::{RepairSettings, ReturnsCore},
};

/// The gRPC port `aftersales dev` and the manifests use for returns.
pub const DEFAULT_PORT: u16 = 50052;
/// The deadline queue returns schedule step deadlines and refund retries on.
pub const QUEUE: &str = "returns";

/// What only the returns service is configured with.
#[derive(Debug, Clone)]
pub struct ReturnsConfig {
    pub targets: StepTargets,
    pub simulated_carrier_fee_minor: i64,
    pub refund_safety_net: Duration,
    pub payments: PaymentProvider,
    /// Where returned goods are repaired, and what those that cannot be become.
    pub repair: RepairSettings,
    /// How much compensation each desk role may approve.
    pub compensation_limits: ApprovalLimits,
    /// Where the use cases read "now": the system's, unless a test sets its own.
    pub clock: SharedClock,
}

impl ReturnsConfig {
    pub fn for_tests(payments: SimulatedPayments) -> Self {
        Self {
            targets: StepTargets::handbook(),
            simulated_carrier_fee_minor: 1_200,
            refund_safety_net: Duration::seconds(2),
            payments: PaymentProvider::Simulated(payments),
            repair: RepairSettings::default(),
            compensation_limits: ApprovalLimits::default(),
            clock: clock::system(),
        }
    }
}

/// `RETURNS_COMPENSATION_LIMIT_{AGENT,SUPERVISOR,MANAGER}_MINOR`: each not negative and
/// not below the one of the role under it.
fn compensation_limits(env: &Env) -> Result<ApprovalLimits, ConfigError> {
    let defaults = ApprovalLimits::default();
    let mut limits = defaults;
    let mut floor = 0i64;
    for (role, default, slot) in [
        ("AGENT", defaults.agent, &mut limits.agent),
        ("SUPERVISOR", defaults.supervisor, &mut limits.supervisor),
        ("MANAGER", defaults.manager, &mut limits.manager),
    ] {
        let name = format!("RETURNS_COMPENSATION_LIMIT_{role}_MINOR");
        let value: i64 = env.or(&name, default)?;
        if value < floor {
            return Err(ConfigError::new(
                &name,
                &value.to_string(),
                "must not be negative nor below the limit of the role under it",
            ));
        }
        floor = value;
        *slot = value;
    }
    Ok(limits)
}

/// `RETURNS_*` variables and the ones every service shares.
pub fn settings_from_env(
    env: &Env,
    default_database_url: Option<&str>,
) -> Result<(ServiceSettings, ReturnsConfig), ConfigError> {
    let common = ServiceSettings::from_env(env, "RETURNS", DEFAULT_PORT, default_database_url)?;
    let seconds = |name: &str| -> Result<Duration, ConfigError> {
        let secs: u32 = env.or(name, 86_400)?;
        if secs == 0 {
            return Err(ConfigError::new(name, "0", "must be at least 1"));
        }
        Ok(Duration::seconds(i64::from(secs)))
    };
    let targets = StepTargets {
        review: seconds("RETURNS_REVIEW_DEADLINE_SECS")?,
        pickup: seconds("RETURNS_PICKUP_DEADLINE_SECS")?,
        inspection: seconds("RETURNS_INSPECTION_DEADLINE_SECS")?,
        refund: seconds("RETURNS_REFUND_DEADLINE_SECS")?,
        third_party: {
            let name = "RETURNS_THIRD_PARTY_DEADLINE_SECS";
            let secs: u32 = env.or(name, 7 * 86_400)?;
            if secs == 0 {
                return Err(ConfigError::new(name, "0", "must be at least 1"));
            }
            Duration::seconds(i64::from(secs))
        },
    };
    let provider = env
        .raw("PAYMENT_PROVIDER")
        .unwrap_or_else(|| "simulated".into());
    let payments = match provider.as_str() {
        "simulated" => PaymentProvider::Simulated(SimulatedPayments::new()),
        other => {
            return Err(ConfigError::new(
                "PAYMENT_PROVIDER",
                other,
                "the only provider built in is simulated",
            ));
        }
    };
    let safety_net = env.millis("RETURNS_REFUND_RETRY_AFTER_MS", 30_000, false)?;
    let defaults = RepairSettings::default();
    let region_code = env
        .raw("RETURNS_REPAIR_REGION_CODE")
        .unwrap_or(defaults.region_code);
    if region_code.trim().is_empty() {
        return Err(ConfigError::new(
            "RETURNS_REPAIR_REGION_CODE",
            &region_code,
            "must name a region",
        ));
    }
    let unrepairable = match env.raw("RETURNS_UNREPAIRABLE") {
        None => defaults.unrepairable,
        Some(raw) => raw.parse::<Unrepairable>().map_err(|_| {
            ConfigError::new("RETURNS_UNREPAIRABLE", &raw, "must be refund or exchange")
        })?,
    };
    Ok((
        common,
        ReturnsConfig {
            targets,
            simulated_carrier_fee_minor: env.or("RETURNS_SIMULATED_CARRIER_FEE_MINOR", 1_200i64)?,
            refund_safety_net: Duration::from_std(safety_net).unwrap_or(Duration::seconds(30)),
            payments,
            repair: RepairSettings {
                region_code,
                unrepairable,
            },
            compensation_limits: compensation_limits(env)?,
            clock: clock::system(),
        },
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("returns database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("returns defaults: {0}")]
    Seed(#[from] ReturnsError),
    #[error("returns server: {0}")]
    Serve(#[from] ServeError),
    #[error("returns authentication: {0}")]
    Auth(#[from] aftersales_platform::auth::SetupError),
}

/// Runs the migrations of the returns database.
pub async fn migrate(database: &DbSettings) -> Result<DatabaseConnection, StartError> {
    let db = db::connect(database).await?;
    db::migrate::<Migrator>(&db).await?;
    Ok(db)
}

pub struct ReturnsApp {
    core: Arc<ReturnsCore>,
    listener: TcpListener,
    relay: Relay,
    bus: EventBus,
    queue: DeadlineQueue,
    settings: ServiceSettings,
}

impl ReturnsApp {
    pub async fn build(
        settings: ServiceSettings,
        config: ReturnsConfig,
        bus: EventBus,
        queue: DeadlineQueue,
    ) -> Result<Self, StartError> {
        let db = migrate(&settings.database).await?;
        let relay = Relay::new("returns", db.clone(), bus.clone());
        let pipeline = Pipeline::new("returns", db, queue.clone(), relay.nudge(), config.clock);
        let core = Arc::new(ReturnsCore::new(
            pipeline,
            Carriers::new(config.simulated_carrier_fee_minor),
            config.payments,
            config.targets,
            config.refund_safety_net,
            config.repair,
            config.compensation_limits,
        ));
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

    pub fn core(&self) -> Arc<ReturnsCore> {
        self.core.clone()
    }

    pub async fn run(self, shutdown: CancellationToken) -> Result<(), StartError> {
        let (core, bus) = (self.core.clone(), self.bus);
        let background = Background {
            db: self.core.db().clone(),
            queue: self.queue,
            relay: self.relay,
            fires: self.core.clone(),
        };
        let services = self.settings.guarded(
            GrpcServices::new().with(ReturnsApi::new(self.core).into_server()),
            &background.db,
            PERMISSIONS,
            AUDITED,
        )?;
        // API-only replicas (`RETURNS_WORKER_ENABLED=false`) leave the events to the
        // replicas that run the worker, as they leave the deadlines.
        aftersales_runtime::run_with_tasks(
            "returns",
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

aftersales_runtime::queued_service_app!(ReturnsApp, "returns", ReturnsConfig);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensation_limits_default_to_the_handbook_and_must_rise_with_seniority() {
        let none = Env::from_pairs(Vec::<(String, String)>::new());
        assert_eq!(
            compensation_limits(&none).unwrap(),
            ApprovalLimits::default()
        );
        let set = Env::from_pairs([
            ("RETURNS_COMPENSATION_LIMIT_AGENT_MINOR", "100"),
            ("RETURNS_COMPENSATION_LIMIT_SUPERVISOR_MINOR", "100"),
            ("RETURNS_COMPENSATION_LIMIT_MANAGER_MINOR", "900"),
        ]);
        assert_eq!(
            compensation_limits(&set).unwrap(),
            ApprovalLimits {
                agent: 100,
                supervisor: 100,
                manager: 900,
            }
        );
        for (name, value) in [
            ("RETURNS_COMPENSATION_LIMIT_AGENT_MINOR", "-1"),
            ("RETURNS_COMPENSATION_LIMIT_SUPERVISOR_MINOR", "4999"),
            ("RETURNS_COMPENSATION_LIMIT_MANAGER_MINOR", "lots"),
        ] {
            let err = compensation_limits(&Env::from_pairs([(name, value)])).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
