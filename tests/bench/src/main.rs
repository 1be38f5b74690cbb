//! `make bench`: starts the services against the local PostgreSQL and Redis and prints one
//! table of throughput, latency, SLA firing, webhook delivery and memory, each figure
//! beside the limit it is compared with, measured in the same run. Also written as JSON
//! under `target/bench/`. `--quick` runs in seconds (CI runs it so the harness cannot rot;
//! it asserts no timings); the default is the full run. `--only <section>` runs some
//! sections alone.

mod dispatch;
mod handlers;
mod home;
mod load;
mod report;
mod rpc;
mod secured;
mod sla;
mod soak;
mod webhooks;

use std::{sync::Arc, time::Duration};

use aftersales_deadlines::worker::WorkerSettings;
use aftersales_platform::CancellationToken;
use aftersales_returns::app::{ReturnsApp, ReturnsConfig};
use aftersales_runtime::ServiceSettings;
use aftersales_tickets::app::TicketsApp;
use clap::{Parser, ValueEnum};
use home::Home;
use load::Stats;
use report::{Row, row, rpc_rows, stats_json};
use rpc::Load;
use serde_json::json;

#[derive(Debug, Parser)]
#[command(about = "aftersales benchmark harness")]
struct Args {
    /// Seconds, not minutes: small counts, no targets judged.
    #[arg(long)]
    quick: bool,
    /// Instead of the benchmarks: the soak run (`make soak`).
    #[arg(long)]
    soak: bool,
    /// Minutes the soak runs.
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    /// The `aftersales` binary whose idle memory is measured.
    #[arg(long, env = "AFTERSALES_BIN")]
    binary: Option<std::path::PathBuf>,
    /// Runs only these sections (repeat or comma-separate); all of them by default.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Section>,
}

/// A part of the run that stands on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Section {
    /// The floor, GetTicket (plain, tokens, TLS), ListTickets, CreateTicket against raw
    /// inserts, GetReturn, RequestReturn.
    Rpc,
    /// CreateJob over 20 partners.
    Dispatch,
    /// The deadline engine alone: lateness, memory per clock and catch-up.
    Sla,
    /// Deadlines fired by the services' real handlers.
    Handlers,
    /// Outbound webhooks: an event's commit → the receiver's handler at a steady rate,
    /// beside signed POSTs straight to the receiver.
    Webhooks,
    /// An idle service's resident memory.
    Memory,
}

struct Plan {
    load: Load,
    seed: usize,
    /// The deadline engine runs, one per pending-clock scale.
    sla: Vec<sla::Plan>,
    /// Returns, dispatch and care deadlines under their real handlers.
    handlers: handlers::Plan,
    /// Outbound webhooks end to end.
    webhooks: webhooks::Plan,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            return Plan {
                load: Load {
                    concurrency: 64,
                    warmup: Duration::from_millis(300),
                    duration: Duration::from_secs(2),
                },
                seed: 200,
                // The ten-million path at a small size: the same layout, splits and index.
                sla: vec![sla::Plan {
                    pending: 30_000,
                    fired: 5_000,
                    window: Duration::from_secs(3),
                    backlog: 5_000,
                    stop: Duration::from_secs(2),
                    limits: sla::Limits::MILLION,
                }],
                handlers: handlers::Plan {
                    per_sec: 20,
                    duration: Duration::from_secs(2),
                    due_in: Duration::from_secs(2),
                    backlog: 40,
                    stop: Duration::from_secs(1),
                },
                webhooks: webhooks::Plan {
                    per_sec: 50,
                    warmup: Duration::from_millis(200),
                    window: Duration::from_secs(1),
                    stall: Duration::from_secs(30),
                },
            };
        }
        Plan {
            load: Load {
                concurrency: 64,
                warmup: Duration::from_secs(2),
                duration: Duration::from_secs(15),
            },
            seed: 2_000,
            sla: [
                (1_000_000, sla::Limits::MILLION),
                (10_000_000, sla::Limits::TEN_MILLION),
            ]
            .into_iter()
            .map(|(pending, limits)| sla::Plan {
                pending,
                fired: 300_000,
                window: Duration::from_secs(30),
                backlog: 1_000_000,
                stop: Duration::from_secs(60),
                limits,
            })
            .collect(),
            handlers: handlers::Plan {
                per_sec: 100,
                duration: Duration::from_secs(30),
                due_in: Duration::from_secs(10),
                backlog: 2_000,
                stop: Duration::from_secs(60),
            },
            webhooks: webhooks::Plan {
                per_sec: 1_000,
                warmup: Duration::from_secs(3),
                window: Duration::from_secs(20),
                stall: Duration::from_secs(30),
            },
        }
    }
}

/// Resident memory of an idle `aftersales serve tickets`, in MB.
async fn idle_rss_mb(binary: &std::path::Path, database_url: &str) -> anyhow::Result<f64> {
    let mut child = std::process::Command::new(binary)
        .args(["serve", "tickets"])
        .env("AUTH_MODE", "disabled")
        .env("DATABASE_URL", database_url)
        .env("REDIS_URL", aftersales_testkit::redis_url())
        .env("REDIS_KEY_PREFIX", aftersales_testkit::unique_prefix())
        .env("TICKETS_GRPC_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()));
    let _ = child.kill();
    let _ = child.wait();
    let kb: f64 = status?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS"))?;
    Ok(kb / 1024.0)
}

/// The tickets and returns services on PostgreSQL and Redis, as in production, and the
/// no-op floor beside them.
struct Services {
    tickets: Home,
    tickets_addr: std::net::SocketAddr,
    tickets_db: sea_orm::DatabaseConnection,
    returns_addr: std::net::SocketAddr,
    floor_addr: std::net::SocketAddr,
}

impl Services {
    async fn start(stop: &CancellationToken) -> anyhow::Result<Self> {
        let tickets = Home::fresh().await?;
        let app = TicketsApp::build(
            tickets.settings(),
            tickets.bus().await?,
            tickets.queue("sla").await?,
        )
        .await?;
        let tickets_addr = app.local_addr();
        let tickets_db = app.core().db().clone();
        tokio::spawn(app.run(stop.clone()));
        let returns = Home::fresh().await?;
        let returns_app = ReturnsApp::build(
            returns.settings(),
            ReturnsConfig::for_tests(aftersales_returns::ports::SimulatedPayments::new()),
            returns.bus().await?,
            returns.queue("returns").await?,
        )
        .await?;
        let returns_addr = returns_app.local_addr();
        tokio::spawn(returns_app.run(stop.clone()));
        let floor_addr = rpc::start_floor(stop.clone()).await?;
        Ok(Self {
            tickets,
            tickets_addr,
            tickets_db,
            returns_addr,
            floor_addr,
        })
    }
}

async fn connect(addr: std::net::SocketAddr) -> anyhow::Result<tonic::transport::Channel> {
    Ok(
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .connect()
            .await?,
    )
}

/// The RPC section: rows and their JSON.
async fn rpc_section(
    plan: &Plan,
    judged: bool,
    stop: &CancellationToken,
) -> anyhow::Result<(Vec<Row>, serde_json::Value)> {
    let services = Services::start(stop).await?;
    let tickets_channel = connect(services.tickets_addr).await?;
    eprintln!("bench: floor");
    let floor = rpc::floor(connect(services.floor_addr).await?, plan.load).await;
    eprintln!("bench: seeding {} tickets", plan.seed);
    let client = aftersales_protos::tickets::v1::ticket_service_client::TicketServiceClient::new(
        tickets_channel.clone(),
    );
    let ids = Arc::new(rpc::seed(client, plan.seed).await?);
    eprintln!("bench: GetTicket");
    let get = rpc::get_ticket(tickets_channel.clone(), None, ids.clone(), plan.load).await;
    let mut secured_runs = Vec::new();
    for (tls, tokens) in [(true, true), (false, true), (true, false)] {
        eprintln!("bench: GetTicket with tls={tls} tokens={tokens}");
        let security = secured::Security { tls, tokens };
        let secured = secured::start(&services.tickets, security, stop.clone()).await?;
        secured_runs
            .push(rpc::get_ticket(secured.channel, secured.bearer, ids.clone(), plan.load).await);
    }
    let [get_secured, get_tokens, get_tls]: [Stats; 3] = secured_runs
        .try_into()
        .map_err(|_| anyhow::anyhow!("three secured runs"))?;
    // Plain GetTicket once more: the secured runs are compared with the mean of the plain
    // runs before and after them, so a drift of the machine during the runs (a checkpoint,
    // the relay catching up) does not count for or against either.
    eprintln!("bench: GetTicket again");
    let get_after = rpc::get_ticket(tickets_channel.clone(), None, ids.clone(), plan.load).await;
    let plain_per_sec = (get.per_sec() + get_after.per_sec()) / 2.0;
    eprintln!("bench: ListTickets");
    let list = rpc::list_tickets(tickets_channel.clone(), plan.load).await;
    eprintln!("bench: CreateTicket");
    let create = rpc::create_ticket(tickets_channel.clone(), plan.load).await;
    let returns_channel = connect(services.returns_addr).await?;
    eprintln!("bench: seeding {} returns", plan.seed);
    let returns_client =
        aftersales_protos::returns::v1::return_service_client::ReturnServiceClient::new(
            returns_channel.clone(),
        );
    let return_ids = Arc::new(rpc::returns::seed(returns_client, plan.seed).await?);
    eprintln!("bench: GetReturn");
    let get_return = rpc::returns::get_return(returns_channel.clone(), return_ids, plan.load).await;
    eprintln!("bench: RequestReturn");
    let request_return = rpc::returns::request_return(returns_channel, plan.load).await;
    eprintln!("bench: raw inserts");
    // A twin of the tickets database, so the running service never sees these rows: its
    // worker would fire their clocks and its relay publish their events during the
    // measurements that follow.
    let twin = aftersales_platform::db::connect(&aftersales_platform::db::DbSettings::new(
        aftersales_testkit::fresh_postgres_url().await?,
    ))
    .await?;
    aftersales_platform::db::migrate::<aftersales_tickets::store::migration::Migrator>(&twin)
        .await?;
    let raw = rpc::raw_inserts(twin, plan.load).await;

    let judge = |met: bool| judged.then_some(met);
    let mut rows = rpc_rows("Floor (no-op RPC)", &floor, None, None, judged);
    rows.extend(rpc_rows("GetTicket", &get, Some(&floor), Some(0.5), judged));
    // The reference of this ratio is plain GetTicket above: the same database, the same
    // server kit, tokens verified and every byte through TLS.
    rows.push(row(
        "GetTicket again (after the secured runs)",
        format!("{:.0}/s ({} errors)", get_after.per_sec(), get_after.errors),
        "",
        None,
    ));
    // Against the mean of the two plain runs; each alone is reported, not judged, to tell
    // which costs what.
    for (name, stats, limit) in [
        ("GetTicket, tokens + TLS", &get_secured, Some(0.9)),
        ("GetTicket, tokens only", &get_tokens, None),
        ("GetTicket, TLS only", &get_tls, None),
    ] {
        rows.extend(rpc_rows(name, stats, None, None, judged));
        let ratio = stats.per_sec() / plain_per_sec;
        rows.push(row(
            &format!("{name} / plain GetTicket"),
            format!("{ratio:.3}"),
            &limit.map(|l| format!(">= {l:.2}")).unwrap_or_default(),
            limit.filter(|_| judged).map(|l| ratio >= l),
        ));
    }
    rows.extend(rpc_rows(
        "ListTickets",
        &list,
        Some(&floor),
        Some(0.3),
        judged,
    ));
    rows.extend(rpc_rows(
        "GetReturn",
        &get_return,
        Some(&floor),
        Some(0.4),
        judged,
    ));
    rows.extend(rpc_rows(
        "RequestReturn",
        &request_return,
        None,
        None,
        judged,
    ));
    rows.extend(rpc_rows("Raw DB, same rows", &raw, None, None, judged));
    rows.extend(rpc_rows(
        "CreateTicket",
        &create,
        Some(&raw),
        Some(0.7),
        judged,
    ));
    rows.push(row(
        "CreateTicket p99",
        format!("{:.2} ms", create.pct_ms(99.0)),
        "<= 10 ms",
        judge(create.pct_ms(99.0) <= 10.0),
    ));
    let json = json!({
        "floor": stats_json(&floor), "get_ticket": stats_json(&get),
        "get_ticket_tokens_tls": stats_json(&get_secured),
        "get_ticket_tokens_only": stats_json(&get_tokens),
        "get_ticket_again": stats_json(&get_after),
        "get_ticket_tls_only": stats_json(&get_tls), "list_tickets": stats_json(&list),
        "create_ticket": stats_json(&create), "raw_inserts": stats_json(&raw),
        "get_return": stats_json(&get_return), "request_return": stats_json(&request_return),
    });
    Ok((rows, json))
}

fn dispatch_rows(create_job: &Stats, judged: bool) -> Vec<Row> {
    let mut rows = rpc_rows("CreateJob (rank 20, offer)", create_job, None, None, judged);
    let (per_sec, p99) = (create_job.per_sec(), create_job.pct_ms(99.0));
    rows.push(row(
        "CreateJob throughput / p99",
        format!("{per_sec:.0}/s / {p99:.1} ms"),
        ">= 1000/s, <= 100 ms",
        judged.then_some(per_sec >= 1_000.0 && p99 <= 100.0),
    ));
    rows
}

fn handler_rows(deadlines: &[handlers::Report], judged: bool) -> Vec<Row> {
    let judge = |met: bool| judged.then_some(met);
    let mut rows = Vec::new();
    for d in deadlines {
        let name = format!("{} {}", d.service, d.deadline);
        let f = &d.firing;
        rows.push(row(
            &format!("{name}: due per second"),
            format!("{:.0}/s ({} fired)", d.due_per_sec, f.clocks),
            "",
            None,
        ));
        rows.push(row(
            &format!("{name}: lateness p50/p99/p99.9"),
            format!("{} / {} / {} ms", f.p50_ms, f.p99_ms, f.p999_ms),
            "<= 100 / 500 ms",
            judge(f.p99_ms <= 100 && f.p999_ms <= 500),
        ));
        rows.push(row(
            &format!("{name}: lateness max"),
            format!("{} ms", f.max_ms),
            "",
            None,
        ));
        let c = &d.catch_up;
        rows.push(row(
            &format!("{name}: catch-up after {:.0} s down", d.stopped_for_s),
            format!("{:.0}/s ({} fired)", c.fired_per_sec, c.clocks),
            ">= 5000/s",
            judge(c.fired_per_sec >= 5_000.0),
        ));
        rows.push(row(
            &format!("{name}: fired early"),
            format!("{}", f.early + c.early),
            "= 0",
            Some(f.early + c.early == 0),
        ));
    }
    rows
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    aftersales_platform::tls::install_default_provider();
    let plan = Plan::new(args.quick);
    let judged = !args.quick;
    let wants = |section: Section| args.only.is_empty() || args.only.contains(&section);
    let stop = CancellationToken::new();

    if args.soak {
        let services = Services::start(&stop).await?;
        let channel = connect(services.tickets_addr).await?;
        let passed = soak::run(channel, services.tickets_db, args.minutes).await?;
        stop.cancel();
        anyhow::ensure!(passed, "the soak run failed");
        return Ok(());
    }

    let mut rows = Vec::new();
    let mut report = serde_json::Map::new();
    if wants(Section::Rpc) {
        let (section, json) = rpc_section(&plan, judged, &stop).await?;
        rows.extend(section);
        report.insert("rpc".into(), json);
    }
    if wants(Section::Dispatch) {
        eprintln!("bench: CreateJob");
        let create_job = dispatch::run(plan.load).await?;
        rows.extend(dispatch_rows(&create_job, judged));
        report.insert("create_job".into(), stats_json(&create_job));
    }
    if wants(Section::Sla) {
        let worker_settings = WorkerSettings {
            batch: 1_000,
            max_idle: Duration::from_millis(500),
            ..ServiceSettings::for_tests(String::new(), Duration::from_secs(30)).worker
        };
        let mut runs = Vec::new();
        for sla_plan in &plan.sla {
            eprintln!("bench: SLA clocks, {} pending", sla_plan.pending);
            let run = sla::run(sla_plan, worker_settings.clone()).await?;
            rows.extend(run.rows(judged));
            runs.push(run);
        }
        report.insert("sla".into(), serde_json::to_value(&runs)?);
    }
    if wants(Section::Handlers) {
        let deadlines = handlers::run(plan.handlers).await?;
        rows.extend(handler_rows(&deadlines, judged));
        report.insert("deadlines".into(), serde_json::to_value(&deadlines)?);
    }
    if wants(Section::Webhooks) {
        let run = webhooks::run(plan.webhooks).await?;
        rows.extend(run.rows(judged));
        report.insert("webhooks".into(), serde_json::to_value(&run)?);
    }
    if wants(Section::Memory) {
        let rss = match &args.binary {
            Some(binary) => {
                Some(idle_rss_mb(binary, &aftersales_testkit::fresh_postgres_url().await?).await?)
            }
            None => None,
        };
        rows.push(match rss {
            Some(mb) => row(
                "Idle service resident memory",
                format!("{mb:.1} MB"),
                "<= 30 MB",
                judged.then_some(mb <= 30.0),
            ),
            None => row(
                "Idle service resident memory",
                "not measured (no --binary)".into(),
                "<= 30 MB",
                None,
            ),
        });
        report.insert("idle_rss_mb".into(), json!(rss));
    }
    stop.cancel();

    report::print(
        &format!(
            "aftersales bench ({}), {} in flight, {} s per RPC run",
            if args.quick { "quick" } else { "full" },
            plan.load.concurrency,
            plan.load.duration.as_secs()
        ),
        &rows,
    );
    report.insert(
        "mode".into(),
        json!(if args.quick { "quick" } else { "full" }),
    );
    report.insert("at".into(), json!(chrono::Utc::now().to_rfc3339()));
    report.insert("concurrency".into(), json!(plan.load.concurrency));
    report.insert("rows".into(), report::rows_json(&rows));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir)?;
    let name = match (args.quick, args.only.is_empty()) {
        (true, _) => "quick.json",
        (false, true) => "full.json",
        (false, false) => "partial.json",
    };
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!("written to {}", path.display());
    // Counts that must be zero (clocks fired early, webhooks lost, duplicated or
    // rejected) fail the run, quick or full: they are defects, not timings.
    let nonzero: Vec<&str> = rows
        .iter()
        .filter(|r| r.met == Some(false) && r.limit == "= 0")
        .map(|r| r.name.as_str())
        .collect();
    if !nonzero.is_empty() {
        anyhow::bail!("not zero: {}", nonzero.join("; "));
    }
    Ok(())
}
