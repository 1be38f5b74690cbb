//! Runs the chosen services in this process until SIGTERM or Ctrl-C, then shuts them down
//! gracefully together.

use std::path::Path;

use aftersales_care::app::CareApp;
use aftersales_dispatch::app::DispatchApp;
use aftersales_gateway::app::GatewayApp;
use aftersales_platform::{
    CancellationToken,
    auth::{DevClient, DevIssuer, roles},
    config::Env,
    db::DbSettings,
    metrics,
    telemetry::{self, LogFormat, TelemetrySettings},
};
use aftersales_returns::app::ReturnsApp;
use aftersales_runtime::module::{Module, ServiceModule, Started};
use aftersales_tickets::app::TicketsApp;
use aftersales_webhooks::app::WebhooksApp;
use anyhow::Context;

use crate::{
    backbone::Backbone,
    cli::{Cli, Command, ServiceName},
};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let env = Env::process();
    let dev = matches!(cli.command, Command::Dev { .. });
    let format = if dev {
        LogFormat::Text
    } else {
        LogFormat::Json
    };
    let _telemetry = telemetry::init(&TelemetrySettings::from_env(&env, "aftersales", format)?)
        .map_err(|e| anyhow::anyhow!("telemetry: {e}"))?;
    let metrics_default = if dev {
        "127.0.0.1:9090"
    } else {
        "0.0.0.0:9090"
    };
    let serves = matches!(cli.command, Command::Dev { .. } | Command::Serve { .. });
    if serves && let Some(addr) = metrics::addr_from_env(&env, metrics_default)? {
        // Lives as long as the process: a scrape during shutdown still answers.
        tokio::spawn(metrics::serve(addr, CancellationToken::new()));
    }
    match cli.command {
        Command::Dev { data_dir } => dev_suite(&env, &data_dir).await,
        Command::Serve { services } => serve(&env, &services).await,
        Command::Migrate { services } => migrate(&env, &services).await,
        Command::Admin { command } => crate::admin::run(&env, command).await,
    }
}

fn sqlite_url(data_dir: &Path, service: &str) -> String {
    format!("sqlite://{}/{service}.db?mode=rwc", data_dir.display())
}

static TICKETS: Module<TicketsApp> = Module::new();
static RETURNS: Module<ReturnsApp> = Module::new();
static DISPATCH: Module<DispatchApp> = Module::new();
static CARE: Module<CareApp> = Module::new();
static WEBHOOKS: Module<WebhooksApp> = Module::new();
static GATEWAY: Module<GatewayApp> = Module::new();

/// The one place a service name meets its crate: everything else goes through the module.
pub fn module(service: ServiceName) -> &'static dyn ServiceModule {
    match service {
        ServiceName::Tickets => &TICKETS,
        ServiceName::Returns => &RETURNS,
        ServiceName::Dispatch => &DISPATCH,
        ServiceName::Care => &CARE,
        ServiceName::Webhooks => &WEBHOOKS,
        ServiceName::Gateway => &GATEWAY,
    }
}

/// Builds one service (migrations, listener) on the shared backbone; `dev_database` is
/// the embedded default used when no database variable is set.
async fn build(
    service: ServiceName,
    env: &Env,
    dev_database: Option<&str>,
    backbone: &Backbone,
    shutdown: CancellationToken,
) -> anyhow::Result<Started> {
    let module = module(service);
    let queue = module.queue().map(|name| backbone.queue(name));
    module
        .start(env, dev_database, backbone.bus.clone(), queue, shutdown)
        .await
}

/// Where `aftersales dev` serves its development issuer (discovery, JWKS, `/token`).
pub const DEV_ISSUER_PORT: u16 = 8089;

/// Where `aftersales dev` lets webhooks deliver besides public hosts: this machine.
const DEV_WEBHOOK_TARGETS: &str = "127.0.0.0/8,::1,localhost";

/// The development issuer's key file in a data directory.
pub fn dev_issuer_file(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("dev-issuer.json")
}

/// The services that call others, with the roles their accounts carry in development.
const DEV_CLIENTS: &[(&str, &str, &[&str])] = &[
    ("CARE", "care", &[roles::CARE]),
    ("GATEWAY", "gateway", &[roles::GATEWAY, roles::ACT_AS]),
];

async fn dev_suite(env: &Env, data_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let shutdown = shutdown_signal();
    let env = dev_issuer(env, data_dir, shutdown.clone())
        .await?
        // Development receivers listen on this machine; production allows public hosts only.
        .with_default("WEBHOOKS_ALLOWED_TARGETS", DEV_WEBHOOK_TARGETS);
    let backbone = Backbone::in_process();
    let mut running = tokio::task::JoinSet::new();
    for service in ServiceName::all() {
        let url = sqlite_url(data_dir, service.name());
        let database = service.has_database().then_some(url.as_str());
        let started = build(service, &env, database, &backbone, shutdown.clone()).await?;
        tracing::info!(service = service.name(), addr = %started.addr, "service up");
        running.spawn(started.run);
    }
    tracing::info!(data_dir = %data_dir.display(), "aftersales dev suite up");
    wait_all(running).await
}

/// Starts the development issuer on loopback and returns `env` with the suite pointed at
/// it (where the caller set nothing else): tokens are checked in development exactly as
/// in production, and `aftersales admin token` mints them with the same key.
async fn dev_issuer(
    env: &Env,
    data_dir: &Path,
    shutdown: CancellationToken,
) -> anyhow::Result<Env> {
    let url = format!("http://127.0.0.1:{DEV_ISSUER_PORT}");
    let issuer = DevIssuer::load_or_generate(
        &dev_issuer_file(data_dir),
        &url,
        DevIssuer::DEFAULT_AUDIENCE,
    )?;
    let mut env = env
        .clone()
        .with_default("AUTH_ISSUER", &url)
        .with_default("AUTH_AUDIENCE", DevIssuer::DEFAULT_AUDIENCE);
    let mut clients = Vec::new();
    for (prefix, id, client_roles) in DEV_CLIENTS {
        let secret = uuid::Uuid::new_v4().simple().to_string();
        env = env
            .with_default(format!("{prefix}_CLIENT_ID"), *id)
            .with_default(format!("{prefix}_CLIENT_SECRET"), &secret);
        clients.push(DevClient {
            id: (*id).to_owned(),
            secret,
            roles: client_roles.iter().map(|r| (*r).to_owned()).collect(),
        });
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", DEV_ISSUER_PORT))
        .await
        .with_context(|| format!("development issuer: port {DEV_ISSUER_PORT} is taken"))?;
    let router = issuer.router_with_clients(clients);
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "development issuer stopped");
        }
    });
    tracing::info!(
        issuer = %url,
        "development issuer up: `aftersales admin token --roles agent` mints a token"
    );
    Ok(env)
}

async fn wait_all(mut running: tokio::task::JoinSet<anyhow::Result<()>>) -> anyhow::Result<()> {
    while let Some(result) = running.join_next().await {
        result??;
    }
    Ok(())
}

/// Each service owns its database: two services in one process must not share a URL.
fn check_separate_databases(urls: &[(ServiceName, String)]) -> anyhow::Result<()> {
    for (i, (a, url)) in urls.iter().enumerate() {
        if let Some((b, _)) = urls[i + 1..].iter().find(|(_, other)| other == url) {
            anyhow::bail!(
                "{a:?} and {b:?} would share the database {url}; each service owns its own: set \
                 TICKETS_DATABASE_URL, RETURNS_DATABASE_URL, … instead of one DATABASE_URL"
            );
        }
    }
    Ok(())
}

/// The deadline queue a service schedules on (the gateway has none).
pub fn queue_name(service: ServiceName) -> anyhow::Result<&'static str> {
    module(service)
        .queue()
        .with_context(|| format!("{} schedules no deadlines", service.name()))
}

/// One service's database settings from the environment.
pub fn database_of(env: &Env, service: ServiceName) -> anyhow::Result<DbSettings> {
    database_urls(env, &[service])?
        .pop()
        .map(|(_, database)| database)
        .with_context(|| format!("{} has no database", service.name()))
}

/// The database of each service that has one.
fn database_urls(
    env: &Env,
    services: &[ServiceName],
) -> anyhow::Result<Vec<(ServiceName, DbSettings)>> {
    let mut found = Vec::new();
    for service in services {
        if let Some(database) = module(*service).database(env, None)? {
            found.push((*service, database));
        }
    }
    Ok(found)
}

async fn serve(env: &Env, services: &[ServiceName]) -> anyhow::Result<()> {
    let services = dedup(services);
    let urls: Vec<(ServiceName, String)> = database_urls(env, &services)?
        .into_iter()
        .map(|(s, db)| (s, db.url))
        .collect();
    check_separate_databases(&urls)?;
    let backbone = Backbone::from_env(env).await?;
    let shutdown = shutdown_signal();
    let mut running = tokio::task::JoinSet::new();
    for service in services {
        let started = build(service, env, None, &backbone, shutdown.clone()).await?;
        tracing::info!(service = service.name(), addr = %started.addr, "service up");
        running.spawn(started.run);
    }
    wait_all(running).await
}

pub async fn migrate(env: &Env, services: &[ServiceName]) -> anyhow::Result<()> {
    let services = if services.is_empty() {
        ServiceName::all()
    } else {
        dedup(services)
    };
    for (service, database) in database_urls(env, &services)? {
        module(service).migrate(&database).await?;
        tracing::info!(service = service.name(), "migrations applied");
    }
    Ok(())
}

fn dedup(services: &[ServiceName]) -> Vec<ServiceName> {
    let mut out = Vec::new();
    for s in services {
        if !out.contains(s) {
            out.push(*s);
        }
    }
    out
}

/// Cancelled on SIGTERM (Kubernetes) or Ctrl-C.
fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested");
        trigger.cancel();
    });
    token
}
