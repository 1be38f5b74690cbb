//! `make bench`: starts the tickets service against the local PostgreSQL and Redis and
//! prints one table of throughput, latency, SLA firing and memory, each figure beside the
//! limit it is compared with, measured in the same run. Also written as JSON under
//! `target/bench/`. `--quick` runs in seconds (CI runs it so the harness cannot rot; it
//! asserts no timings); the default is the full run.

mod dispatch;
mod handlers;
mod home;
mod load;
mod rpc;
mod secured;
mod sla;
mod soak;

use std::{sync::Arc, time::Duration};

use aftersales_deadlines::worker::WorkerSettings;
use aftersales_platform::CancellationToken;
use aftersales_returns::app::{ReturnsApp, ReturnsConfig};
use aftersales_runtime::ServiceSettings;
use aftersales_tickets::app::TicketsApp;
use clap::Parser;
use home::Home;
use load::Stats;
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
}

struct Plan {
    load: Load,
    seed: usize,
    clocks: u64,
    window: Duration,
    stop: Duration,
    /// Returns, dispatch and care deadlines under their real handlers.
    handlers: handlers::Plan,
}

/// One line of the table.
struct Row {
    name: String,
    value: String,
    limit: String,
    /// `Some(met)` for a target; `None` for a figure reported only.
    met: Option<bool>,
}

fn row(name: &str, value: String, limit: &str, met: Option<bool>) -> Row {
    Row {
        name: name.into(),
        value,
        limit: limit.into(),
        met,
    }
}

/// Throughput and latency rows; with a reference and a minimum ratio, the ratio row too
/// (judged only when `judged`).
fn rpc_rows(
    name: &str,
    s: &Stats,
    floor: Option<&Stats>,
    min_ratio: Option<f64>,
    judged: bool,
) -> Vec<Row> {
    let mut rows = vec![row(
        &format!("{name} throughput"),
        format!("{:.0}/s ({} errors)", s.per_sec(), s.errors),
        "",
        None,
    )];
    rows.push(row(
        &format!("{name} latency p50/p99/p999"),
        format!(
            "{:.2} / {:.2} / {:.2} ms",
            s.pct_ms(50.0),
            s.pct_ms(99.0),
            s.pct_ms(99.9)
        ),
        "",
        None,
    ));
    if let Some(floor) = floor {
        let ratio = s.per_sec() / floor.per_sec();
        let limit = min_ratio
            .map(|min| format!(">= {min:.2}"))
            .unwrap_or_default();
        let met = min_ratio.filter(|_| judged).map(|min| ratio >= min);
        rows.push(row(
            &format!("{name} / reference"),
            format!("{ratio:.3}"),
            &limit,
            met,
        ));
    }
    rows
}

fn stats_json(s: &Stats) -> serde_json::Value {
    json!({
        "per_sec": s.per_sec(), "ok": s.ok, "errors": s.errors,
        "p50_ms": s.pct_ms(50.0), "p99_ms": s.pct_ms(99.0), "p999_ms": s.pct_ms(99.9),
    })
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    aftersales_platform::tls::install_default_provider();
    let plan = if args.quick {
        Plan {
            load: Load {
                concurrency: 64,
                warmup: Duration::from_millis(300),
                duration: Duration::from_secs(2),
            },
            seed: 200,
            clocks: 20_000,
            window: Duration::from_secs(3),
            stop: Duration::from_secs(2),
            handlers: handlers::Plan {
                per_sec: 20,
                duration: Duration::from_secs(2),
                due_in: Duration::from_secs(2),
                backlog: 40,
                stop: Duration::from_secs(1),
            },
        }
    } else {
        Plan {
            load: Load {
                concurrency: 64,
                warmup: Duration::from_secs(2),
                duration: Duration::from_secs(15),
            },
            seed: 2_000,
            clocks: 1_000_000,
            window: Duration::from_secs(60),
            stop: Duration::from_secs(60),
            handlers: handlers::Plan {
                per_sec: 100,
                duration: Duration::from_secs(30),
                due_in: Duration::from_secs(10),
                backlog: 2_000,
                stop: Duration::from_secs(60),
            },
        }
    };
    let judged = !args.quick;
    let stop = CancellationToken::new();

    // The service under test, on PostgreSQL and Redis, as in production.
    // The services under test, on PostgreSQL and Redis, as in production.
    let tickets = Home::fresh().await?;
    let app = TicketsApp::build(
        tickets.settings(),
        tickets.bus().await?,
        tickets.queue("sla").await?,
    )
    .await?;
    let tickets_addr = app.local_addr();
    let db = app.core().db().clone();
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
    let connect = |addr: std::net::SocketAddr| {
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
    };
    let floor_channel = connect(floor_addr)?.connect().await?;
    let tickets_channel = connect(tickets_addr)?.connect().await?;

    if args.soak {
        let passed = soak::run(tickets_channel, db, args.minutes).await?;
        stop.cancel();
        anyhow::ensure!(passed, "the soak run failed");
        return Ok(());
    }

    eprintln!("bench: floor");
    let floor = rpc::floor(floor_channel, plan.load).await;
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
        let secured = secured::start(&tickets, security, stop.clone()).await?;
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
    let returns_channel = connect(returns_addr)?.connect().await?;
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
    eprintln!("bench: CreateJob");
    let create_job = dispatch::run(plan.load).await?;
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
    eprintln!("bench: {} SLA clocks", plan.clocks);
    let worker_settings = WorkerSettings {
        batch: 1_000,
        ..ServiceSettings::for_tests(String::new(), Duration::from_secs(30)).worker
    };
    let worker_settings = WorkerSettings {
        max_idle: Duration::from_millis(500),
        ..worker_settings
    };
    let sla = sla::run(plan.clocks, plan.window, plan.stop, worker_settings).await?;
    let deadlines = handlers::run(plan.handlers).await?;
    let rss = match &args.binary {
        Some(binary) => {
            Some(idle_rss_mb(binary, &aftersales_testkit::fresh_postgres_url().await?).await?)
        }
        None => None,
    };
    stop.cancel();

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
    rows.extend(rpc_rows("ListTickets", &list, Some(&floor), None, judged));
    rows.extend(rpc_rows(
        "GetReturn",
        &get_return,
        Some(&floor),
        None,
        judged,
    ));
    rows.extend(rpc_rows(
        "RequestReturn",
        &request_return,
        None,
        None,
        judged,
    ));
    rows.extend(rpc_rows(
        "CreateJob (rank 20, offer)",
        &create_job,
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
    let f = &sla.firing;
    rows.push(row(
        "SLA clocks pending (queue as for returns)",
        format!("{}", f.clocks),
        "",
        None,
    ));
    rows.push(row(
        "SLA lateness p50",
        format!("{} ms", f.p50_ms),
        "",
        None,
    ));
    rows.push(row(
        "SLA lateness p99",
        format!("{} ms", f.p99_ms),
        "<= 100 ms",
        judge(f.p99_ms <= 100),
    ));
    rows.push(row(
        "SLA lateness p99.9",
        format!("{} ms", f.p999_ms),
        "<= 500 ms",
        judge(f.p999_ms <= 500),
    ));
    rows.push(row(
        "SLA lateness max",
        format!("{} ms", f.max_ms),
        "",
        None,
    ));
    rows.push(row(
        "SLA fired early",
        format!("{}", f.early),
        "= 0",
        Some(f.early == 0),
    ));
    rows.push(row(
        "SLA fired per second",
        format!("{:.0}/s", f.fired_per_sec),
        "",
        None,
    ));
    rows.push(row(
        "Redis bytes per pending clock",
        format!("{:.0} B", sla.bytes_per_clock),
        "<= 150 B",
        judge(sla.bytes_per_clock <= 150.0),
    ));
    let c = &sla.catch_up;
    rows.push(row(
        &format!("Catch-up after a {:.0} s stop", sla.stopped_for_s),
        format!("{:.0} clocks/s", c.fired_per_sec),
        ">= 100000/s",
        judge(c.fired_per_sec >= 100_000.0),
    ));
    rows.push(row(
        "Catch-up lateness p50/p99/max",
        format!("{} / {} / {} ms", c.p50_ms, c.p99_ms, c.max_ms),
        "",
        None,
    ));
    rows.push(row(
        "Catch-up fired early",
        format!("{}", c.early),
        "= 0",
        Some(c.early == 0),
    ));
    for d in &deadlines {
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
            "",
            None,
        ));
        rows.push(row(
            &format!("{name}: fired early"),
            format!("{}", f.early + c.early),
            "= 0",
            Some(f.early + c.early == 0),
        ));
    }
    match rss {
        Some(mb) => rows.push(row(
            "Idle service resident memory",
            format!("{mb:.1} MB"),
            "<= 30 MB",
            judge(mb <= 30.0),
        )),
        None => rows.push(row(
            "Idle service resident memory",
            "not measured (no --binary)".into(),
            "<= 30 MB",
            None,
        )),
    }

    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(10);
    println!(
        "aftersales bench ({}), {} in flight, {} s per RPC run",
        if args.quick { "quick" } else { "full" },
        plan.load.concurrency,
        plan.load.duration.as_secs()
    );
    println!(
        "{:width$}  {:>28}  {:>12}  result",
        "measure", "value", "target"
    );
    for r in &rows {
        let result = match r.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        println!(
            "{:width$}  {:>28}  {:>12}  {result}",
            r.name, r.value, r.limit
        );
    }

    let report = json!({
        "mode": if args.quick { "quick" } else { "full" },
        "at": chrono::Utc::now().to_rfc3339(),
        "concurrency": plan.load.concurrency,
        "floor": stats_json(&floor), "get_ticket": stats_json(&get),
        "get_ticket_tokens_tls": stats_json(&get_secured),
        "get_ticket_tokens_only": stats_json(&get_tokens), "get_ticket_again": stats_json(&get_after), "get_ticket_tls_only": stats_json(&get_tls), "list_tickets": stats_json(&list),
        "create_ticket": stats_json(&create), "raw_inserts": stats_json(&raw),
        "get_return": stats_json(&get_return), "request_return": stats_json(&request_return),
        "create_job": stats_json(&create_job), "deadlines": deadlines,
        "sla": sla, "idle_rss_mb": rss,
        "rows": rows.iter().map(|r| json!({"name": r.name, "value": r.value, "target": r.limit, "met": r.met})).collect::<Vec<_>>(),
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(if args.quick {
        "quick.json"
    } else {
        "full.json"
    });
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!("written to {}", path.display());
    if rows
        .iter()
        .any(|r| r.met == Some(false) && r.limit == "= 0")
    {
        anyhow::bail!("a clock fired before its due time");
    }
    Ok(())
}
