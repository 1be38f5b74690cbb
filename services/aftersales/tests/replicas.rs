//! Many replicas: two processes each of tickets, returns, dispatch and care on the same
//! PostgreSQL databases and one Redis, under a steady load of short deadlines (SLA clocks
//! that breach after 2 s and 3 s, return pickups due after 3 s, repair offers that lapse
//! after 2 s, follow-ups due 5 s after a resolution: short, yet long enough that the
//! schedule always holds some due in the next seconds). One replica of each service is
//! killed with SIGKILL while holding work: the survivor is paused for a moment (SIGSTOP)
//! and the victim's database link held (a stalled network), so the victim claims the next
//! due deadlines and takes the next events, which it can no longer finish; then it dies,
//! the link closes as the kernel would close it, and the survivor continues.
//!
//! The survivor must take that work over within the bound README states ("Running
//! several replicas"): a dead replica's claims when their lease runs out
//! (`SLA_LEASE_MS`, plus at most `SLA_MAX_IDLE_MS` of sleep), its deliveries when they
//! have been pending for the consuming group's stale period. Afterwards, from the
//! databases: every deadline's effect happened exactly once (one breach per clock, and
//! one escalation unless the ticket was at the top already, one overdue event per return
//! step, one lapse per offer and one
//! `JobUnassigned` per job, one follow-up per resolution and one overdue event per
//! follow-up), nothing is left pending, and every event of every stream was applied by
//! every consumer group that reads it, none dead-lettered.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

#[path = "support/db_link.rs"]
mod db_link;

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use aftersales_eventbus::envelope;
use aftersales_protos::{
    care::v1::{self as cpb, care_service_client::CareServiceClient},
    common::v1 as common,
    dispatch::v1::{self as dpb, dispatch_service_client::DispatchServiceClient},
    events::v1::event_envelope::Payload,
    returns::v1::{self as rpb, return_service_client::ReturnServiceClient},
    tickets::v1::{self as tpb, ticket_service_client::TicketServiceClient},
};
use db_link::DbLink;
use redis::{
    AsyncCommands,
    streams::{StreamInfoConsumersReply, StreamPendingCountReply, StreamPendingId},
};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use tonic::{Code, Status, transport::Channel};

const BIN: &str = env!("CARGO_BIN_EXE_aftersales");
/// A 32-byte key for the sealed columns of dispatch and care, tests only.
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// `SLA_LEASE_MS`: how long a claim is held before another replica may take it.
const LEASE: Duration = Duration::from_millis(4_000);
/// `SLA_MAX_IDLE_MS`: the longest a worker sleeps without looking at the schedule.
const MAX_IDLE: Duration = Duration::from_millis(200);
/// `SLA_RECONCILE_INTERVAL_MS` of the survivors: a command the victim committed just
/// before it died, without scheduling its deadlines, is scheduled by the next rebuild.
const SURVIVOR_RECONCILE: Duration = Duration::from_secs(3);
/// The victims rebuild only at start (the default minute is longer than they live), so
/// the held link finds their workers claiming, not rebuilding.
const VICTIM_RECONCILE: Duration = Duration::from_secs(60);
/// What a busy two-core machine adds to a takeover of claims: the survivor's wake-up,
/// the firing itself, and this test's own polling.
const CLAIM_SLACK: Duration = Duration::from_millis(2_500);
/// The same for deliveries, where a survivor's consumer claims stale deliveries before
/// each read, so after the batch it has in hand (up to 64 events, each applied in a
/// transaction of its own, when the group lags behind its stream).
const DELIVERY_SLACK: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Service {
    Tickets,
    Returns,
    Dispatch,
    Care,
}

/// The order the victims are killed in: dispatch last, because a held dispatch replica
/// may hold the partners' row locks and so pause the dispatch stream the other victims'
/// consumers need to have taken deliveries from.
const SERVICES: [Service; 4] = [
    Service::Tickets,
    Service::Returns,
    Service::Care,
    Service::Dispatch,
];

impl Service {
    fn name(self) -> &'static str {
        match self {
            Self::Tickets => "tickets",
            Self::Returns => "returns",
            Self::Dispatch => "dispatch",
            Self::Care => "care",
        }
    }

    fn env_prefix(self) -> &'static str {
        match self {
            Self::Tickets => "TICKETS",
            Self::Returns => "RETURNS",
            Self::Dispatch => "DISPATCH",
            Self::Care => "CARE",
        }
    }

    /// Its deadline queue's name in Redis keys.
    fn queue(self) -> &'static str {
        match self {
            Self::Tickets => "sla",
            other => other.name(),
        }
    }

    /// The streams it consumes, each in the group named after it.
    fn reads(self) -> &'static [&'static str] {
        match self {
            Self::Tickets => &["dispatch", "care"],
            Self::Returns => &["care", "dispatch"],
            Self::Dispatch => &["care", "returns"],
            Self::Care => &["tickets", "returns", "dispatch"],
        }
    }

    /// How long a delivery stays pending before another consumer of the group takes it:
    /// the event bus's default for tickets and returns, care's and dispatch's own.
    fn stale_after(self) -> Duration {
        match self {
            Self::Tickets | Self::Returns => Duration::from_secs(30),
            Self::Dispatch | Self::Care => Duration::from_secs(5),
        }
    }
}

struct Suite {
    prefix: String,
    databases: HashMap<Service, String>,
    tickets_ports: [u16; 2],
}

struct Replica {
    child: support::KillOnDrop,
    channel: Channel,
    /// Held and cut before and after the kill (the victim only).
    link: Option<DbLink>,
}

impl Suite {
    async fn spawn(&self, service: Service, victim: bool, port: u16) -> Replica {
        let url = &self.databases[&service];
        let (link, url) = if victim {
            let link = DbLink::start(db_link::upstream_of(url)).await;
            let through = db_link::through(url, link.port());
            (Some(link), through)
        } else {
            (None, url.clone())
        };
        let reconcile = if victim {
            VICTIM_RECONCILE
        } else {
            SURVIVOR_RECONCILE
        };
        let p = service.env_prefix();
        let mut command = Command::new(BIN);
        command
            .args(["serve", service.name()])
            .env("AUTH_MODE", "disabled")
            .env_remove("DATABASE_URL")
            .env(format!("{p}_DATABASE_URL"), url)
            .env(format!("{p}_GRPC_ADDR"), format!("127.0.0.1:{port}"))
            .env("REDIS_URL", aftersales_testkit::redis_url())
            .env("REDIS_KEY_PREFIX", &self.prefix)
            .env("METRICS_ADDR", "off")
            .env("DATABASE_MAX_CONNECTIONS", "8")
            .env("SLA_SHARDS", "4")
            .env("SLA_LEASE_MS", LEASE.as_millis().to_string())
            .env("SLA_MAX_IDLE_MS", MAX_IDLE.as_millis().to_string())
            .env("SLA_LOST_CHECK_INTERVAL_MS", "200")
            .env(
                "SLA_RECONCILE_INTERVAL_MS",
                reconcile.as_millis().to_string(),
            )
            .env("SHUTDOWN_HEALTH_GRACE_MS", "0")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        match service {
            Service::Tickets => {}
            Service::Returns => {
                command
                    .env("RETURNS_REVIEW_DEADLINE_SECS", "3")
                    .env("RETURNS_PICKUP_DEADLINE_SECS", "3");
            }
            Service::Dispatch => {
                command
                    .env("DISPATCH_OFFER_TIMEOUT_SECS", "2")
                    .env("DISPATCH_ENCRYPTION_KEYS", format!("k1:{KEY}"));
            }
            Service::Care => {
                command
                    .env("CARE_FOLLOW_UP_WINDOW_SECS", "5")
                    .env("CARE_ENCRYPTION_KEYS", format!("k1:{KEY}"))
                    .env("CARE_SEARCH_KEY", KEY)
                    .env(
                        "CARE_TICKETS_URL",
                        format!("http://127.0.0.1:{}", self.tickets_ports[1]),
                    );
            }
        }
        let mut child = support::KillOnDrop(command.spawn().expect("serve starts"));
        let channel = ready(port, &mut child).await;
        Replica {
            child,
            channel,
            link,
        }
    }

    /// Starts the victim, then the survivor (one after the other: the first runs the
    /// migrations).
    async fn pair(&self, service: Service, ports: [u16; 2]) -> [Replica; 2] {
        let victim = self.spawn(service, true, ports[0]).await;
        let survivor = self.spawn(service, false, ports[1]).await;
        [victim, survivor]
    }
}

async fn ready(port: u16, child: &mut support::KillOnDrop) -> Channel {
    let url = format!("http://127.0.0.1:{port}");
    let began = Instant::now();
    loop {
        let endpoint = Channel::from_shared(url.clone())
            .unwrap()
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(3));
        if endpoint.connect().await.is_ok() {
            return endpoint.connect_lazy();
        }
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "serve on {port} exited early"
        );
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "no server on {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Calls `op` on one replica and, while that fails, on the other and back: a held or
/// dead replica times out or refuses, and a keyed retry is safe. Answers that no retry
/// changes (a rule refusing the call) are returned.
async fn on_either<C: Clone, T, Fut>(
    clients: &[C; 2],
    first: usize,
    op: impl Fn(C) -> Fut,
) -> Result<T, Status>
where
    Fut: Future<Output = Result<tonic::Response<T>, Status>>,
{
    let began = Instant::now();
    let mut i = first;
    loop {
        match op(clients[i % 2].clone()).await {
            Ok(answer) => return Ok(answer.into_inner()),
            Err(status)
                if matches!(
                    status.code(),
                    Code::FailedPrecondition
                        | Code::InvalidArgument
                        | Code::NotFound
                        | Code::AlreadyExists
                ) =>
            {
                return Err(status);
            }
            Err(status) => {
                assert!(
                    began.elapsed() < Duration::from_secs(60),
                    "no replica answered for a minute: {status:?}"
                );
                i += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// What the load created, as acknowledged to it.
#[derive(Default)]
struct Created {
    tickets: Vec<String>,
    resolved: Vec<String>,
    /// Tickets a repair job was created for.
    with_jobs: Vec<String>,
    returns: Vec<String>,
    jobs: Vec<String>,
    customers: usize,
}

const REGION: &str = "310104";

fn partner(name: &str, lat: f64, lon: f64) -> dpb::PartnerSpec {
    let cny = |minor_units| common::Money {
        minor_units,
        currency: "CNY".into(),
    };
    dpb::PartnerSpec {
        name: name.into(),
        coverage: vec![dpb::Coverage {
            region_code: REGION.into(),
            area: dpb::AreaKind::Urban as i32,
        }],
        location: Some(dpb::GeoPoint {
            latitude: lat,
            longitude: lon,
        }),
        service_radius_km: 0.0,
        skills: vec!["appliance".into()],
        daily_capacity: 100_000,
        active: true,
        insured: true,
        fees: Some(dpb::FeeSchedule {
            labour: vec![dpb::LabourRate {
                product_line: "appliance".into(),
                price: Some(cny(10_000)),
            }],
            parts: vec![],
            call_out_fee: Some(cny(3_000)),
        }),
        time_zone: "Asia/Shanghai".into(),
    }
}

fn job_request(ticket_id: &str) -> dpb::CreateJobRequest {
    dpb::CreateJobRequest {
        idempotency_key: format!("job-{ticket_id}"),
        ticket_id: ticket_id.into(),
        customer_id: format!("cust-{ticket_id}"),
        location: Some(dpb::CustomerLocation {
            region_code: REGION.into(),
            point: Some(dpb::GeoPoint {
                latitude: 31.20,
                longitude: 121.45,
            }),
        }),
        contact: Some(dpb::CustomerContact {
            name: "Li Lei".into(),
            phone: "13800000000".into(),
            address: "1 Huaihai Road".into(),
        }),
        product_line: "appliance".into(),
        fault_description: "washing machine does not drain".into(),
        urgency: dpb::Urgency::Normal as i32,
        ..Default::default()
    }
}

fn return_request(n: u64) -> rpb::RequestReturnRequest {
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    rpb::RequestReturnRequest {
        idempotency_key: format!("return-{n}"),
        order_id: format!("order-{n}"),
        customer_id: format!("cust-r{n}"),
        lines: vec![rpb::ReturnLine {
            sku: "KETTLE-1".into(),
            product_line: "kettle".into(),
            quantity: 1,
            unit_price: Some(common::Money {
                minor_units: 19_900,
                currency: "CNY".into(),
            }),
            delivered_at: Some(prost_types::Timestamp {
                seconds: yesterday.timestamp(),
                nanos: 0,
            }),
        }],
        reason: rpb::ReturnReason::NoReason as i32,
        evidence: vec!["s3://evidence/kettle.jpg".into()],
        desired_outcome: rpb::Outcome::Refund as i32,
        customer_time_zone: "Asia/Shanghai".into(),
        ..Default::default()
    }
}

/// The steady load, one task per service, until `stop`: a ticket every 300 ms (every
/// other one resolved 4 s later, after both its clocks breached; every third one gets a
/// repair job no partner takes), a return every 200 ms, a customer every 250 ms.
async fn load(
    tickets: [TicketServiceClient<Channel>; 2],
    returns: [ReturnServiceClient<Channel>; 2],
    dispatch: [DispatchServiceClient<Channel>; 2],
    care: [CareServiceClient<Channel>; 2],
    stop: Arc<AtomicBool>,
) -> Created {
    let (jobs_tx, mut jobs_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let tickets_task = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut created = Vec::new();
            let mut resolved = Vec::new();
            let mut to_resolve = std::collections::VecDeque::new();
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let request = tpb::CreateTicketRequest {
                    idempotency_key: format!("ticket-{n}"),
                    customer_id: format!("cust-t{n}"),
                    channel: tpb::Channel::Social as i32,
                    category: tpb::Category::Complaint as i32,
                    subject: "Heater smokes".into(),
                    ..Default::default()
                };
                let ticket = on_either(&tickets, n as usize, |mut c| {
                    let request = request.clone();
                    async move { c.create_ticket(request).await }
                })
                .await
                .expect("tickets are created");
                if n.is_multiple_of(3) {
                    let _ = jobs_tx.send(ticket.id.clone());
                }
                if n % 2 == 1 {
                    to_resolve.push_back((Instant::now(), ticket.id.clone()));
                }
                created.push(ticket.id);
                while let Some((at, _)) = to_resolve.front() {
                    if at.elapsed() < Duration::from_secs(4) {
                        break;
                    }
                    let (_, id) = to_resolve.pop_front().unwrap();
                    let request = tpb::ChangeStatusRequest {
                        ticket_id: id.clone(),
                        status: tpb::TicketStatus::Resolved as i32,
                        reason: "called back".into(),
                        actor: None,
                    };
                    match on_either(&tickets, n as usize, |mut c| {
                        let request = request.clone();
                        async move { c.change_status(request).await }
                    })
                    .await
                    {
                        Ok(_) => {}
                        // An earlier attempt went through before its answer was lost.
                        Err(status) if status.code() == Code::FailedPrecondition => {}
                        Err(status) => panic!("resolving {id}: {status:?}"),
                    }
                    resolved.push(id);
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            (created, resolved)
        })
    };
    let dispatch_task = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut jobs = Vec::new();
            let mut with_jobs = Vec::new();
            let mut n = 0;
            loop {
                let ticket_id = tokio::select! {
                    id = jobs_rx.recv() => match id { Some(id) => id, None => break },
                    () = tokio::time::sleep(Duration::from_millis(200)) => {
                        if stop.load(Ordering::Relaxed) { break } else { continue }
                    }
                };
                n += 1;
                let request = job_request(&ticket_id);
                let job = on_either(&dispatch, n, |mut c| {
                    let request = request.clone();
                    async move { c.create_job(request).await }
                })
                .await
                .expect("jobs are created");
                jobs.push(job.id);
                with_jobs.push(ticket_id);
            }
            (jobs, with_jobs)
        })
    };
    let returns_task = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut created = Vec::new();
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let request = return_request(n);
                let r = on_either(&returns, n as usize, |mut c| {
                    let request = request.clone();
                    async move { c.request_return(request).await }
                })
                .await
                .expect("returns are requested");
                created.push(r.id);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            created
        })
    };
    let care_task = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let request = cpb::UpsertCustomerRequest {
                    idempotency_key: format!("customer-{n}"),
                    customer_id: format!("cust-c{n}"),
                    name: "Han Meimei".into(),
                    purchases: Some(cpb::PurchaseStats {
                        order_count: 40,
                        order_value: Some(common::Money {
                            minor_units: 50_000_000,
                            currency: "CNY".into(),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                on_either(&care, n as usize, |mut c| {
                    let request = request.clone();
                    async move { c.upsert_customer(request).await }
                })
                .await
                .expect("customers are saved");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            n as usize
        })
    };
    let (tickets, resolved) = tickets_task.await.unwrap();
    let (jobs, with_jobs) = dispatch_task.await.unwrap();
    Created {
        tickets,
        resolved,
        with_jobs,
        returns: returns_task.await.unwrap(),
        jobs,
        customers: care_task.await.unwrap(),
    }
}

/// Every member of `service`'s lease sets with its lease expiry (ms).
async fn leases(
    redis: &mut redis::aio::ConnectionManager,
    prefix: &str,
    service: Service,
) -> HashMap<Vec<u8>, i64> {
    let name = service.queue();
    let mut all = HashMap::new();
    for shard in 0..4 {
        let key = format!("{prefix}{name}:{{{name}-{shard}}}:lease");
        let members: Vec<(Vec<u8>, f64)> = redis.zrange_withscores(&key, 0, -1).await.unwrap();
        all.extend(members.into_iter().map(|(m, s)| (m, s as i64)));
    }
    all
}

/// The deliveries pending in `group` on `stream`.
async fn pending(
    redis: &mut redis::aio::ConnectionManager,
    prefix: &str,
    stream: &str,
    group: &str,
) -> Vec<StreamPendingId> {
    let reply: StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(format!("{prefix}events:{stream}"))
        .arg(group)
        .arg("-")
        .arg("+")
        .arg(10_000)
        .query_async(redis)
        .await
        .unwrap();
    reply.ids
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What a victim held when it died, and how long the survivor took to finish it.
#[derive(Debug)]
struct Takeover {
    service: Service,
    claims: usize,
    deliveries: usize,
    claims_done: Duration,
    deliveries_done: Duration,
}

/// What a victim held when it was killed.
struct Held {
    killed: Instant,
    /// Claimed deadlines (stored member, lease expiry in ms).
    claims: HashMap<Vec<u8>, i64>,
    /// Deliveries it had taken: stream, its consumer there, the entries.
    deliveries: Vec<(&'static str, String, Vec<String>)>,
}

fn signal(child: &support::KillOnDrop, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &child.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill {signal}");
}

/// Kills the victim (SIGKILL) while it holds work it cannot finish, and returns that
/// work: deadlines it claimed and deliveries it took.
///
/// For a moment the survivor is stopped (SIGSTOP, like a long pause of its runtime), so
/// the next due deadline and the next event on each stream the service reads go to the
/// victim for certain, not to whichever replica asks first: a claim made after the stop
/// is the victim's, and so is the consumer that takes deliveries meanwhile. Its database
/// link is held, so whatever it claims or takes waits on the database. Then the victim is killed, its link cut (as the kernel
/// closes a dead process's sockets) and the survivor continued. Should an attempt see no
/// deadline come due or no event arrive in time, both go on and it is tried again.
async fn kill_holding_work(prefix: &str, service: Service, pair: &mut [Replica; 2]) -> Held {
    let mut redis = aftersales_testkit::redis_connection().await.unwrap();
    let [victim, survivor] = pair;
    let link = victim.link.as_ref().unwrap();
    // Which consumer of each group is the victim's: the one that takes deliveries while
    // the survivor is stopped (a consumer's idle time restarts with each delivery).
    let mut names: HashMap<&'static str, String> = HashMap::new();
    for _ in 0..4 {
        signal(&survivor.child, "-STOP");
        let stopped = Instant::now();
        while names.len() < service.reads().len() && stopped.elapsed() < Duration::from_secs(4) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            learn_victim_consumers(&mut redis, prefix, service, stopped, &mut names).await;
        }
        signal(&survivor.child, "-CONT");
        if names.len() == service.reads().len() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        names.len(),
        service.reads().len(),
        "{}: the victim's consumers took no events on some of {:?}",
        service.name(),
        service.reads()
    );
    for attempt in 1..=6 {
        signal(&survivor.child, "-STOP");
        let stopped = Instant::now();
        let stopped_ms = now_ms();
        // The victim finishes what it was doing (a batch it claimed before the stop is
        // not told from the survivor's), then everything it claims or takes waits on the
        // database.
        tokio::time::sleep(Duration::from_secs(1)).await;
        link.hold();
        loop {
            // A claim's lease runs from the moment it was made: made after the stop, it
            // is the victim's.
            let claims: HashMap<Vec<u8>, i64> = leases(&mut redis, prefix, service)
                .await
                .into_iter()
                .filter(|(_, expiry)| *expiry - LEASE.as_millis() as i64 >= stopped_ms + 20)
                .collect();
            let mut deliveries = Vec::new();
            for stream in service.reads() {
                let ids: Vec<String> = pending(&mut redis, prefix, stream, service.name())
                    .await
                    .into_iter()
                    .filter(|p| names.get(stream) == Some(&p.consumer))
                    .map(|p| p.id)
                    .collect();
                if !ids.is_empty() {
                    deliveries.push((*stream, names[stream].clone(), ids));
                }
            }
            if !claims.is_empty() && deliveries.len() == service.reads().len() {
                victim.child.0.kill().unwrap();
                let killed = Instant::now();
                victim.child.0.wait().unwrap();
                link.cut();
                signal(&survivor.child, "-CONT");
                return Held {
                    killed,
                    claims,
                    deliveries,
                };
            }
            if stopped.elapsed() > Duration::from_millis(3_500) {
                signal(&survivor.child, "-CONT");
                link.open();
                println!(
                    "{}: attempt {attempt} saw {} claims and deliveries on {:?}; again",
                    service.name(),
                    claims.len(),
                    deliveries.iter().map(|(s, _, _)| *s).collect::<Vec<_>>()
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!(
        "the {} victim never claimed a deadline and took an event on each of {:?}",
        service.name(),
        service.reads()
    );
}

/// Notes, per stream `service` reads, the consumer that has had a delivery since the
/// survivor was stopped: the victim's.
async fn learn_victim_consumers(
    redis: &mut redis::aio::ConnectionManager,
    prefix: &str,
    service: Service,
    stopped: Instant,
    names: &mut HashMap<&'static str, String>,
) {
    for stream in service.reads() {
        let reply: StreamInfoConsumersReply = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(format!("{prefix}events:{stream}"))
            .arg(service.name())
            .query_async(redis)
            .await
            .unwrap();
        let since_stop = stopped.elapsed().as_millis() as usize;
        for consumer in reply.consumers {
            if consumer.idle + 20 < since_stop {
                names.insert(stream, consumer.name);
            }
        }
    }
}

/// Waits until the survivor has fired and acknowledged every claim the victim held and
/// taken over every delivery it had taken (applying them is checked at the end).
async fn watch_takeover(prefix: String, service: Service, held: Held) -> Takeover {
    let Held {
        killed,
        claims,
        deliveries,
    } = held;
    let mut redis = aftersales_testkit::redis_connection().await.unwrap();
    let limit = LEASE.max(service.stale_after()) + Duration::from_secs(20);
    let mut claims_done = None;
    let mut deliveries_done = None;
    loop {
        if claims_done.is_none() {
            let leased = leases(&mut redis, &prefix, service).await;
            if claims.keys().all(|m| !leased.contains_key(m)) {
                claims_done = Some(killed.elapsed());
            }
        }
        if deliveries_done.is_none() {
            // Taken over: acknowledged, or pending with another consumer.
            let mut left = 0;
            for (stream, consumer, ids) in &deliveries {
                let still: HashSet<String> = pending(&mut redis, &prefix, stream, service.name())
                    .await
                    .into_iter()
                    .filter(|p| p.consumer == *consumer)
                    .map(|p| p.id)
                    .collect();
                left += ids.iter().filter(|id| still.contains(*id)).count();
            }
            if left == 0 {
                deliveries_done = Some(killed.elapsed());
            }
        }
        if let (Some(claims_done), Some(deliveries_done)) = (claims_done, deliveries_done) {
            return Takeover {
                service,
                claims: claims.len(),
                deliveries: deliveries.iter().map(|(_, _, ids)| ids.len()).sum(),
                claims_done,
                deliveries_done,
            };
        }
        assert!(
            killed.elapsed() < limit,
            "{}: the survivor had not taken over {limit:?} after the kill (claims done: \
             {claims_done:?}, deliveries done: {deliveries_done:?})",
            service.name()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn rows(db: &DatabaseConnection, sql: &str) -> Vec<sea_orm::QueryResult> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        sql.to_owned(),
    ))
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    rows(db, sql)
        .await
        .first()
        .map(|row| row.try_get::<i64>("", "n").unwrap())
        .unwrap_or(0)
}

async fn strings(db: &DatabaseConnection, sql: &str, column: &str) -> Vec<String> {
    rows(db, sql)
        .await
        .iter()
        .map(|row| row.try_get::<String>("", column).unwrap())
        .collect()
}

/// Every outbox event of a stream, decoded.
async fn outbox(db: &DatabaseConnection, stream: &str) -> Vec<(String, Option<Payload>)> {
    rows(
        db,
        &format!("SELECT event_id, payload FROM outbox WHERE stream = '{stream}'"),
    )
    .await
    .iter()
    .map(|row| {
        let id: String = row.try_get("", "event_id").unwrap();
        let payload: Vec<u8> = row.try_get("", "payload").unwrap();
        (id, envelope::decode(&payload).unwrap().payload)
    })
    .collect()
}

/// How often each key occurs.
fn tally<K: std::hash::Hash + Eq>(keys: impl IntoIterator<Item = K>) -> HashMap<K, usize> {
    let mut counts = HashMap::new();
    for key in keys {
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivors_take_over_a_killed_replicas_work_and_every_effect_happens_once() {
    let began = Instant::now();
    let mut databases = HashMap::new();
    for service in SERVICES {
        databases.insert(
            service,
            aftersales_testkit::fresh_postgres_url().await.unwrap(),
        );
    }
    let ports = |_| [support::free_port(), support::free_port()];
    let all_ports: HashMap<Service, [u16; 2]> = SERVICES.iter().map(|s| (*s, ports(s))).collect();
    let suite = Arc::new(Suite {
        prefix: aftersales_testkit::unique_prefix(),
        databases,
        tickets_ports: all_ports[&Service::Tickets],
    });

    // Each pair starts in order (the victim migrates first); the four pairs side by side.
    let mut starting = Vec::new();
    for service in SERVICES {
        let suite = suite.clone();
        let ports = all_ports[&service];
        starting.push(tokio::spawn(async move {
            (service, suite.pair(service, ports).await)
        }));
    }
    let mut replicas: HashMap<Service, [Replica; 2]> = HashMap::new();
    for pair in starting {
        let (service, pair) = pair.await.unwrap();
        replicas.insert(service, pair);
    }
    let channels = |s: Service| {
        let [a, b] = &replicas[&s];
        [a.channel.clone(), b.channel.clone()]
    };
    let tickets = channels(Service::Tickets).map(TicketServiceClient::new);
    let returns = channels(Service::Returns).map(ReturnServiceClient::new);
    let dispatch = channels(Service::Dispatch).map(DispatchServiceClient::new);
    let care = channels(Service::Care).map(CareServiceClient::new);
    println!("8 replicas up after {:?}", began.elapsed());

    tickets[1]
        .clone()
        .upsert_sla_policy(support::fast_social_policy(2, 3))
        .await
        .unwrap();
    // Two partners that never answer: each job's offer lapses twice, then it is
    // unassigned (and tickets escalates its ticket).
    for (name, lat, lon) in [("near", 31.201, 121.451), ("far", 31.25, 121.50)] {
        dispatch[1]
            .clone()
            .register_partner(dpb::RegisterPartnerRequest {
                spec: Some(partner(name, lat, lon)),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(load(
        tickets.clone(),
        returns.clone(),
        dispatch.clone(),
        care.clone(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(5)).await;

    // One victim after another, each killed holding work; the survivors take over while
    // the load goes on.
    let mut watching = Vec::new();
    for service in SERVICES {
        let pair = replicas.get_mut(&service).unwrap();
        let held = kill_holding_work(&suite.prefix, service, pair).await;
        println!(
            "{:?}: {} victim killed holding {} claims and {:?} deliveries",
            began.elapsed(),
            service.name(),
            held.claims.len(),
            held.deliveries
                .iter()
                .map(|(s, _, ids)| (*s, ids.len()))
                .collect::<Vec<_>>()
        );
        watching.push(tokio::spawn(watch_takeover(
            suite.prefix.clone(),
            service,
            held,
        )));
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    let created = load.await.unwrap();
    println!(
        "load: {} tickets ({} resolved), {} jobs, {} returns, {} customers",
        created.tickets.len(),
        created.resolved.len(),
        created.jobs.len(),
        created.returns.len(),
        created.customers
    );

    // The takeover bound (README, "Running several replicas").
    for watch in watching {
        let t = watch.await.unwrap();
        println!("{t:?}");
        let claims_bound = LEASE + MAX_IDLE + CLAIM_SLACK;
        assert!(
            t.claims_done <= claims_bound,
            "{}: the dead replica's {} claims were fired {:?} after the kill (bound {claims_bound:?})",
            t.service.name(),
            t.claims,
            t.claims_done
        );
        let deliveries_bound = t.service.stale_after() + DELIVERY_SLACK;
        assert!(
            t.deliveries_done <= deliveries_bound,
            "{}: the dead replica's {} deliveries were taken over {:?} after the kill (bound {deliveries_bound:?})",
            t.service.name(),
            t.deliveries,
            t.deliveries_done
        );
    }

    // From the databases: nothing left pending, then each deadline's effect once.
    let mut db = HashMap::new();
    for service in SERVICES {
        db.insert(
            service,
            Database::connect(suite.databases[&service].as_str())
                .await
                .unwrap(),
        );
    }
    nothing_pending(&db, began).await;
    tickets_fired_once(&db[&Service::Tickets], &created).await;
    returns_fired_once(&db[&Service::Returns], &created).await;
    dispatch_fired_once(&db[&Service::Dispatch], &created).await;
    care_fired_once(&db[&Service::Care], &created).await;

    for pair in replicas.values_mut() {
        let exit = support::terminate(&mut pair[1].child, Duration::from_secs(20)).await;
        assert!(exit.success(), "{exit}");
    }
    println!("done after {:?}", began.elapsed());
}

/// Waits (at most 30 s) until every deadline has fired and every group has applied every
/// event of the streams it reads (a rebuild every `SURVIVOR_RECONCILE` schedules what a
/// victim committed without scheduling), then checks that no group applied more and none
/// dead-lettered anything.
async fn nothing_pending(db: &HashMap<Service, DatabaseConnection>, began: Instant) {
    let open_deadlines = [
        (
            Service::Tickets,
            "SELECT COUNT(*) AS n FROM sla_clocks WHERE next_fire_at IS NOT NULL",
        ),
        (
            Service::Returns,
            "SELECT COUNT(*) AS n FROM return_deadlines WHERE next_fire_at IS NOT NULL",
        ),
        (
            Service::Dispatch,
            "SELECT COUNT(*) AS n FROM offers WHERE status = 'open'",
        ),
        (
            Service::Care,
            "SELECT COUNT(*) AS n FROM follow_ups WHERE status = 'pending'",
        ),
    ];
    let settle = Instant::now();
    loop {
        let mut waiting = Vec::new();
        for (service, sql) in open_deadlines {
            let n = count(&db[&service], sql).await;
            if n > 0 {
                waiting.push(format!("{n} {} deadlines", service.name()));
            }
        }
        for producer in SERVICES {
            let published: HashSet<String> = strings(
                &db[&producer],
                &format!(
                    "SELECT event_id FROM outbox WHERE stream = '{}'",
                    producer.name()
                ),
                "event_id",
            )
            .await
            .into_iter()
            .collect();
            for consumer in SERVICES
                .into_iter()
                .filter(|c| c.reads().contains(&producer.name()))
            {
                let applied: HashSet<String> = strings(
                    &db[&consumer],
                    &format!(
                        "SELECT event_id FROM processed_events WHERE consumer_group = '{}'",
                        consumer.name()
                    ),
                    "event_id",
                )
                .await
                .into_iter()
                .collect();
                let missing = published.difference(&applied).count();
                if missing > 0 {
                    waiting.push(format!(
                        "{missing} of {} {} events not applied by {}",
                        published.len(),
                        producer.name(),
                        consumer.name()
                    ));
                }
            }
        }
        if waiting.is_empty() {
            println!("{:?}: nothing pending", began.elapsed());
            break;
        }
        assert!(
            settle.elapsed() < Duration::from_secs(30),
            "30 s after the load: {waiting:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for service in SERVICES {
        let dead = count(&db[&service], "SELECT COUNT(*) AS n FROM dead_letters").await;
        assert_eq!(dead, 0, "{} dead-lettered events", service.name());
        let applied = count(
            &db[&service],
            &format!(
                "SELECT COUNT(*) AS n FROM processed_events WHERE consumer_group = '{}'",
                service.name()
            ),
        )
        .await;
        let mut published = 0;
        for stream in service.reads() {
            let producer = SERVICES.into_iter().find(|s| s.name() == *stream).unwrap();
            published += count(
                &db[&producer],
                &format!("SELECT COUNT(*) AS n FROM outbox WHERE stream = '{stream}'"),
            )
            .await;
        }
        assert_eq!(
            applied,
            published,
            "group {} applied exactly the events of {:?}",
            service.name(),
            service.reads()
        );
    }
}

/// Every acknowledged ticket stored once; each breached clock breached once and escalated
/// at most once; both clocks of every unresolved ticket breached.
async fn tickets_fired_once(tickets_db: &DatabaseConnection, created: &Created) {
    assert_eq!(
        count(tickets_db, "SELECT COUNT(*) AS n FROM tickets").await as usize,
        created.tickets.len()
    );
    let events = outbox(tickets_db, "tickets").await;
    let breaches = tally(events.iter().filter_map(|(_, p)| match p {
        Some(Payload::SlaBreached(b)) => Some(b.clock_id.clone()),
        _ => None,
    }));
    let escalations = tally(events.iter().filter_map(|(_, p)| match p {
        Some(Payload::TicketEscalated(e)) if !e.clock_id.is_empty() => Some(e.clock_id.clone()),
        _ => None,
    }));
    let breached: HashSet<String> = strings(
        tickets_db,
        "SELECT id FROM sla_clocks WHERE state = 'breached'",
        "id",
    )
    .await
    .into_iter()
    .collect();
    assert_eq!(breaches.keys().cloned().collect::<HashSet<_>>(), breached);
    assert!(
        breaches.values().all(|n| *n == 1),
        "a clock breached twice: {:?}",
        breaches.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    assert!(
        escalations.values().all(|n| *n == 1),
        "a breach escalated twice: {:?}",
        escalations
            .iter()
            .filter(|(_, n)| **n > 1)
            .collect::<Vec<_>>()
    );
    // Every breach escalates one level, unless an unplaceable repair job already took
    // its ticket up a level and the first breach the rest of the way.
    let with_jobs: HashSet<&String> = created.with_jobs.iter().collect();
    let breached_without_jobs: HashSet<String> = rows(
        tickets_db,
        "SELECT id, ticket_id FROM sla_clocks WHERE state = 'breached'",
    )
    .await
    .iter()
    .filter(|row| !with_jobs.contains(&row.try_get::<String>("", "ticket_id").unwrap()))
    .map(|row| row.try_get::<String>("", "id").unwrap())
    .collect();
    assert!(escalations.keys().all(|clock| breached.contains(clock)));
    assert!(
        breached_without_jobs
            .iter()
            .all(|clock| escalations.contains_key(clock)),
        "a breach did not escalate"
    );
    let resolved: HashSet<&String> = created.resolved.iter().collect();
    let unresolved: Vec<&String> = created
        .tickets
        .iter()
        .filter(|id| !resolved.contains(id))
        .collect();
    let list = |ids: &[&String]| {
        ids.iter()
            .map(|id| format!("'{id}'"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let unresolved_breached = count(
        tickets_db,
        &format!(
            "SELECT COUNT(*) AS n FROM sla_clocks WHERE state = 'breached' AND ticket_id IN ({})",
            list(&unresolved)
        ),
    )
    .await;
    assert_eq!(
        unresolved_breached as usize,
        2 * unresolved.len(),
        "both clocks of every unresolved ticket breached"
    );
}

/// Each return's pickup deadline missed once.
async fn returns_fired_once(returns_db: &DatabaseConnection, created: &Created) {
    assert_eq!(
        count(returns_db, "SELECT COUNT(*) AS n FROM returns").await as usize,
        created.returns.len()
    );
    let overdue = tally(outbox(returns_db, "returns").await.into_iter().filter_map(
        |(_, p)| match p {
            Some(Payload::ReturnStepOverdue(o)) => Some((o.return_id, o.step)),
            _ => None,
        },
    ));
    assert_eq!(
        overdue.len(),
        created.returns.len(),
        "every return's pickup deadline fired"
    );
    assert!(
        overdue.values().all(|n| *n == 1),
        "a step deadline fired twice: {:?}",
        overdue.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
}

/// Each offer lapsed once; each job offered to both partners once and unassigned once.
async fn dispatch_fired_once(dispatch_db: &DatabaseConnection, created: &Created) {
    assert_eq!(
        count(dispatch_db, "SELECT COUNT(*) AS n FROM jobs").await as usize,
        created.jobs.len()
    );
    let events = outbox(dispatch_db, "dispatch").await;
    let lapses = tally(events.iter().filter_map(|(_, p)| match p {
        Some(Payload::JobDeclined(d)) if d.expired => Some(d.offer_id.clone()),
        _ => None,
    }));
    let unassigned = tally(events.iter().filter_map(|(_, p)| match p {
        Some(Payload::JobUnassigned(u)) => Some(u.job_id.clone()),
        _ => None,
    }));
    let offers = count(dispatch_db, "SELECT COUNT(*) AS n FROM offers").await;
    assert_eq!(offers as usize, 2 * created.jobs.len(), "two offers a job");
    let offered_pairs = count(
        dispatch_db,
        "SELECT COUNT(*) AS n FROM (SELECT DISTINCT job_id, partner_id FROM offers) AS pairs",
    )
    .await;
    assert_eq!(offered_pairs, offers, "no partner offered a job twice");
    assert_eq!(lapses.len() as i64, offers, "every offer lapsed");
    assert!(
        lapses.values().all(|n| *n == 1),
        "an offer lapsed twice: {:?}",
        lapses.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    assert_eq!(unassigned.len(), created.jobs.len(), "every job unassigned");
    assert!(
        unassigned.values().all(|n| *n == 1),
        "a job unassigned twice"
    );
}

/// One follow-up per resolution, each overdue once.
async fn care_fired_once(care_db: &DatabaseConnection, created: &Created) {
    let resolved: HashSet<&String> = created.resolved.iter().collect();
    let follow_ups = tally(strings(care_db, "SELECT ticket_id FROM follow_ups", "ticket_id").await);
    assert_eq!(
        follow_ups.keys().collect::<HashSet<_>>(),
        resolved,
        "a follow-up for every resolved ticket"
    );
    assert!(
        follow_ups.values().all(|n| *n == 1),
        "a resolution followed up twice"
    );
    let overdue = tally(
        outbox(care_db, "care")
            .await
            .into_iter()
            .filter_map(|(_, p)| match p {
                Some(Payload::FollowUpOverdue(o)) => Some(o.follow_up_id),
                _ => None,
            }),
    );
    assert_eq!(
        overdue.len(),
        created.resolved.len(),
        "every follow-up fired"
    );
    assert!(
        overdue.values().all(|n| *n == 1),
        "a follow-up turned overdue twice"
    );
}
