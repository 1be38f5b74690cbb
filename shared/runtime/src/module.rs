//! The seam between a service crate and the binary that runs it: each service exports one
//! [`ServiceModule`], and the `aftersales` binary (serve, dev, migrate, admin) treats all
//! of them alike through it instead of a `match` per service and per verb.

use std::{future::Future, net::SocketAddr, pin::Pin};

use aftersales_deadlines::DeadlineQueue;
use aftersales_eventbus::EventBus;
use aftersales_platform::{
    CancellationToken,
    config::{ConfigError, Env},
    db::DbSettings,
};

/// A boxed future, so the trait stays usable as `&dyn ServiceModule`.
pub type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A service built and bound to its port: where it listens, and the future that serves it
/// until the shutdown token given to [`ServiceModule::start`] fires.
pub struct Started {
    pub addr: SocketAddr,
    pub run: Boxed<'static, anyhow::Result<()>>,
}

/// What the binary needs of a service.
pub trait ServiceModule: Send + Sync {
    /// Its name on the command line, in metrics and in logs: `tickets`, …
    fn name(&self) -> &'static str;

    /// The deadline queue it schedules on; `None` when it schedules nothing.
    fn queue(&self) -> Option<&'static str>;

    /// Its database from the environment (`<NAME>_DATABASE_URL` or `DATABASE_URL`, else
    /// `dev_default`); `None` when it keeps no database.
    fn database(
        &self,
        env: &Env,
        dev_default: Option<&str>,
    ) -> Result<Option<DbSettings>, ConfigError>;

    /// Applies its migrations.
    fn migrate<'a>(&'a self, database: &'a DbSettings) -> Boxed<'a, anyhow::Result<()>>;

    /// Builds it from the environment on the process's shared bus and its queue:
    /// migrations, seeding, the bound listener.
    fn start<'a>(
        &'a self,
        env: &'a Env,
        dev_database: Option<&'a str>,
        bus: EventBus,
        queue: Option<DeadlineQueue>,
        shutdown: CancellationToken,
    ) -> Boxed<'a, anyhow::Result<Started>>;
}

/// How a service crate's app is built and run; a service implements this once and gets
/// its [`ServiceModule`] from [`Module`].
pub trait ServiceApp: Sized + Send + 'static {
    const NAME: &'static str;
    /// The deadline queue it schedules on, if any.
    const QUEUE: Option<&'static str>;
    /// Everything it reads from the environment.
    type Settings: Send;

    fn settings(env: &Env, dev_database: Option<&str>) -> Result<Self::Settings, ConfigError>;

    /// Its database, if it keeps one.
    fn database(settings: &Self::Settings) -> Option<&DbSettings>;

    fn migrate(database: &DbSettings) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Migrates, seeds and binds; `queue` is the one named [`Self::QUEUE`].
    fn build(
        settings: Self::Settings,
        bus: EventBus,
        queue: Option<DeadlineQueue>,
    ) -> impl Future<Output = anyhow::Result<Self>> + Send;

    /// Where it listens (its gRPC port).
    fn addr(&self) -> SocketAddr;

    /// Serves until `shutdown`, then drains and stops its background work.
    fn serve(self, shutdown: CancellationToken) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The [`ServiceModule`] of a [`ServiceApp`].
pub struct Module<A>(std::marker::PhantomData<fn() -> A>);

impl<A> Module<A> {
    pub const fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<A> Default for Module<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: ServiceApp> ServiceModule for Module<A> {
    fn name(&self) -> &'static str {
        A::NAME
    }

    fn queue(&self) -> Option<&'static str> {
        A::QUEUE
    }

    fn database(
        &self,
        env: &Env,
        dev_default: Option<&str>,
    ) -> Result<Option<DbSettings>, ConfigError> {
        let settings = A::settings(env, dev_default)?;
        Ok(A::database(&settings).cloned())
    }

    fn migrate<'a>(&'a self, database: &'a DbSettings) -> Boxed<'a, anyhow::Result<()>> {
        Box::pin(A::migrate(database))
    }

    fn start<'a>(
        &'a self,
        env: &'a Env,
        dev_database: Option<&'a str>,
        bus: EventBus,
        queue: Option<DeadlineQueue>,
        shutdown: CancellationToken,
    ) -> Boxed<'a, anyhow::Result<Started>> {
        Box::pin(async move {
            let settings = A::settings(env, dev_database)?;
            let app = A::build(settings, bus, queue).await?;
            Ok(Started {
                addr: app.addr(),
                run: Box::pin(app.serve(shutdown)),
            })
        })
    }
}

/// The [`ServiceApp`] of a service crate laid out as every queued service is: an `app`
/// module with `QUEUE`, `settings_from_env(env, dev_database)`, `migrate(database)`, and
/// an app type with `build(settings, [config,] bus, queue)`, `local_addr()` and
/// `run(shutdown)`. `queued_service_app!(ReturnsApp, "returns", ReturnsConfig)` for a
/// service with its own configuration, `queued_service_app!(TicketsApp, "tickets")` for
/// one without.
#[macro_export]
macro_rules! queued_service_app {
    ($app:ty, $name:literal $(, $config:ty)?) => {
        impl $crate::module::ServiceApp for $app {
            const NAME: &'static str = $name;
            const QUEUE: Option<&'static str> = Some(QUEUE);
            type Settings = $crate::queued_service_app!(@settings $($config)?);

            fn settings(
                env: &::aftersales_platform::config::Env,
                dev_database: Option<&str>,
            ) -> Result<Self::Settings, ::aftersales_platform::config::ConfigError> {
                settings_from_env(env, dev_database)
            }

            fn database(
                settings: &Self::Settings,
            ) -> Option<&::aftersales_platform::db::DbSettings> {
                Some($crate::queued_service_app!(@database settings $($config)?))
            }

            async fn migrate(
                database: &::aftersales_platform::db::DbSettings,
            ) -> ::anyhow::Result<()> {
                migrate(database).await?;
                Ok(())
            }

            async fn build(
                settings: Self::Settings,
                bus: ::aftersales_eventbus::EventBus,
                queue: Option<::aftersales_deadlines::DeadlineQueue>,
            ) -> ::anyhow::Result<Self> {
                let queue = queue
                    .ok_or_else(|| ::anyhow::anyhow!(concat!($name, " needs its deadline queue")))?;
                Ok($crate::queued_service_app!(@build settings bus queue $($config)?))
            }

            fn addr(&self) -> ::std::net::SocketAddr {
                self.local_addr()
            }

            async fn serve(
                self,
                shutdown: ::aftersales_platform::CancellationToken,
            ) -> ::anyhow::Result<()> {
                Ok(self.run(shutdown).await?)
            }
        }
    };
    (@settings) => { $crate::ServiceSettings };
    (@settings $config:ty) => { ($crate::ServiceSettings, $config) };
    (@database $settings:ident) => { &$settings.database };
    (@database $settings:ident $config:ty) => { &$settings.0.database };
    (@build $settings:ident $bus:ident $queue:ident) => {
        Self::build($settings, $bus, $queue).await?
    };
    (@build $settings:ident $bus:ident $queue:ident $config:ty) => {
        Self::build($settings.0, $settings.1, $bus, $queue).await?
    };
}
