//! Runs the chosen services in this process until SIGTERM or Ctrl-C, then shuts them down
//! gracefully together.

use std::{future::Future, net::SocketAddr, path::Path, pin::Pin};

use aftersales_care::app::{self as care, CareApp};
use aftersales_dispatch::app::{self as dispatch, DispatchApp};
use aftersales_gateway::app::{self as gateway, GatewayApp};
use aftersales_platform::{
    CancellationToken,
    config::Env,
    db::DbSettings,
    metrics,
    telemetry::{self, LogFormat, TelemetrySettings},
};
use aftersales_returns::app::{self as returns, ReturnsApp};
use aftersales_tickets::app::{self as tickets, TicketsApp};
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

/// A built service, ready to run until the shutdown token fires.
type Running = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// Builds one service (migrations, listener) on the shared backbone; `dev_database` is
/// the embedded default used when no database variable is set.
async fn build(
    service: ServiceName,
    env: &Env,
    dev_database: Option<&str>,
    backbone: &Backbone,
    shutdown: CancellationToken,
) -> anyhow::Result<(SocketAddr, Running)> {
    Ok(match service {
        ServiceName::Tickets => {
            let settings = tickets::settings_from_env(env, dev_database)?;
            let app = TicketsApp::build(
                settings,
                backbone.bus.clone(),
                backbone.queue(tickets::QUEUE),
            )
            .await?;
            (
                app.local_addr(),
                Box::pin(async move { Ok(app.run(shutdown).await?) }),
            )
        }
        ServiceName::Returns => {
            let (settings, config) = returns::settings_from_env(env, dev_database)?;
            let queue = backbone.queue(returns::QUEUE);
            let app = ReturnsApp::build(settings, config, backbone.bus.clone(), queue).await?;
            (
                app.local_addr(),
                Box::pin(async move { Ok(app.run(shutdown).await?) }),
            )
        }
        ServiceName::Dispatch => {
            let (settings, config) = dispatch::settings_from_env(env, dev_database)?;
            let queue = backbone.queue(dispatch::QUEUE);
            let app = DispatchApp::build(settings, config, backbone.bus.clone(), queue).await?;
            (
                app.local_addr(),
                Box::pin(async move { Ok(app.run(shutdown).await?) }),
            )
        }
        ServiceName::Care => {
            let (settings, config) = care::settings_from_env(env, dev_database)?;
            let queue = backbone.queue(care::QUEUE);
            let app = CareApp::build(settings, config, backbone.bus.clone(), queue).await?;
            (
                app.local_addr(),
                Box::pin(async move { Ok(app.run(shutdown).await?) }),
            )
        }
        ServiceName::Gateway => {
            let app = GatewayApp::build(gateway::settings_from_env(env)?).await?;
            tracing::info!(http = %app.http_addr(), "partner gateway HTTP/JSON, /openapi.json");
            (
                app.grpc_addr(),
                Box::pin(async move { Ok(app.run(shutdown).await?) }),
            )
        }
    })
}

async fn dev_suite(env: &Env, data_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let backbone = Backbone::in_process();
    let shutdown = shutdown_signal();
    let mut running = tokio::task::JoinSet::new();
    for service in ServiceName::all() {
        let url = sqlite_url(data_dir, service.name());
        let database = service.has_database().then_some(url.as_str());
        let (addr, run) = build(service, env, database, &backbone, shutdown.clone()).await?;
        tracing::info!(service = service.name(), %addr, "service up");
        running.spawn(run);
    }
    tracing::info!(data_dir = %data_dir.display(), "aftersales dev suite up");
    wait_all(running).await
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
    Ok(match service {
        ServiceName::Tickets => tickets::QUEUE,
        ServiceName::Returns => returns::QUEUE,
        ServiceName::Dispatch => dispatch::QUEUE,
        ServiceName::Care => care::QUEUE,
        ServiceName::Gateway => anyhow::bail!("the gateway schedules no deadlines"),
    })
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
    services
        .iter()
        .filter_map(|s| {
            let database = match s {
                ServiceName::Tickets => tickets::settings_from_env(env, None).map(|s| s.database),
                ServiceName::Returns => returns::settings_from_env(env, None).map(|s| s.0.database),
                ServiceName::Dispatch => {
                    dispatch::settings_from_env(env, None).map(|s| s.0.database)
                }
                ServiceName::Care => care::settings_from_env(env, None).map(|s| s.0.database),
                ServiceName::Gateway => return None,
            };
            Some(
                database
                    .map(|database| (*s, database))
                    .map_err(anyhow::Error::from),
            )
        })
        .collect()
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
        let (addr, run) = build(service, env, None, &backbone, shutdown.clone()).await?;
        tracing::info!(service = service.name(), %addr, "service up");
        running.spawn(run);
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
        match service {
            ServiceName::Tickets => drop(tickets::migrate(&database).await?),
            ServiceName::Returns => drop(returns::migrate(&database).await?),
            ServiceName::Dispatch => drop(dispatch::migrate(&database).await?),
            ServiceName::Care => drop(care::migrate(&database).await?),
            ServiceName::Gateway => continue,
        }
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
