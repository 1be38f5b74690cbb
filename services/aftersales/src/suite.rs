//! Runs the chosen services in this process until SIGTERM or Ctrl-C, then shuts them down
//! gracefully together.

use std::path::Path;

use aftersales_platform::{
    CancellationToken,
    config::Env,
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
    match cli.command {
        Command::Dev { data_dir } => dev_suite(&env, &data_dir).await,
        Command::Serve { services } => serve(&env, &services).await,
        Command::Migrate { services } => migrate(&env, &services).await,
    }
}

fn sqlite_url(data_dir: &Path, service: &str) -> String {
    format!("sqlite://{}/{service}.db?mode=rwc", data_dir.display())
}

async fn dev_suite(env: &Env, data_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let backbone = Backbone::in_process();
    let shutdown = shutdown_signal();
    let tickets_settings = tickets::settings_from_env(env, Some(&sqlite_url(data_dir, "tickets")))?;
    let tickets = TicketsApp::build(
        tickets_settings,
        backbone.bus.clone(),
        backbone.queue(tickets::QUEUE),
    )
    .await?;
    let (returns_settings, returns_config) =
        returns::settings_from_env(env, Some(&sqlite_url(data_dir, "returns")))?;
    let returns_queue = backbone.queue(returns::QUEUE);
    let returns = ReturnsApp::build(
        returns_settings,
        returns_config,
        backbone.bus.clone(),
        returns_queue,
    )
    .await?;
    tracing::info!(
        tickets = %tickets.local_addr(),
        returns = %returns.local_addr(),
        data_dir = %data_dir.display(),
        "aftersales dev suite up"
    );
    let (tickets, returns) = tokio::join!(tickets.run(shutdown.clone()), returns.run(shutdown));
    tickets?;
    returns?;
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

fn database_urls(
    env: &Env,
    services: &[ServiceName],
) -> anyhow::Result<Vec<(ServiceName, String)>> {
    services
        .iter()
        .map(|s| {
            let url = match s {
                ServiceName::Tickets => tickets::settings_from_env(env, None)?.database.url,
                ServiceName::Returns => returns::settings_from_env(env, None)?.0.database.url,
            };
            Ok((*s, url))
        })
        .collect()
}

async fn serve(env: &Env, services: &[ServiceName]) -> anyhow::Result<()> {
    let services = dedup(services);
    check_separate_databases(&database_urls(env, &services)?)?;
    let backbone = Backbone::from_env(env).await?;
    let shutdown = shutdown_signal();
    let mut running = tokio::task::JoinSet::new();
    for service in services {
        match service {
            ServiceName::Tickets => {
                let settings = tickets::settings_from_env(env, None)?;
                let app = TicketsApp::build(
                    settings,
                    backbone.bus.clone(),
                    backbone.queue(tickets::QUEUE),
                )
                .await?;
                let shutdown = shutdown.clone();
                running.spawn(async move { app.run(shutdown).await.map_err(anyhow::Error::from) });
            }
            ServiceName::Returns => {
                let (settings, config) = returns::settings_from_env(env, None)?;
                let app = ReturnsApp::build(
                    settings,
                    config,
                    backbone.bus.clone(),
                    backbone.queue(returns::QUEUE),
                )
                .await?;
                let shutdown = shutdown.clone();
                running.spawn(async move { app.run(shutdown).await.map_err(anyhow::Error::from) });
            }
        }
    }
    while let Some(result) = running.join_next().await {
        result??;
    }
    Ok(())
}

async fn migrate(env: &Env, services: &[ServiceName]) -> anyhow::Result<()> {
    let services = if services.is_empty() {
        ServiceName::all()
    } else {
        dedup(services)
    };
    for service in services {
        match service {
            ServiceName::Tickets => {
                let settings = tickets::settings_from_env(env, None)?;
                tickets::migrate(&settings.database).await?;
                tracing::info!("tickets migrations applied");
            }
            ServiceName::Returns => {
                let (settings, _) = returns::settings_from_env(env, None)?;
                returns::migrate(&settings.database).await?;
                tracing::info!("returns migrations applied");
            }
        }
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
