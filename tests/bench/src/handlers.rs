//! Deadlines of the real services, fired by their real handlers: returns step deadlines,
//! dispatch offer lapses, care follow-ups and tickets' SLA clocks. For each service,
//! deadlines come due at a steady rate while it runs; a deadline's lateness is the
//! handler's own "now" minus its due time, both read back from the service's database.
//! Then a backlog comes due while the service is stopped, and the restarted service's
//! catch-up rate is measured.
//!
//! The services run with the deadline worker's production settings (`SLA_BATCH`'s
//! default claim size), and the catch-up backlog is [`CATCH_UP_SCALE`] times the plan's,
//! so a rate of thousands per second takes seconds to drain rather than a fraction of one
//! (where the service's start would dominate). Care's backlog is made by its event
//! consumer, one resolution per transaction, so it is smaller and given longer to come
//! due: the measurement is of firing, not of consuming.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use aftersales_care::app::{CareApp, CareConfig};
use aftersales_deadlines::now_ms;
use aftersales_dispatch::app::{DispatchApp, DispatchConfig};
use aftersales_eventbus::BusMessage;
use aftersales_platform::{CancellationToken, codes::timestamp};
use aftersales_protos::{
    dispatch::v1::{self as dispatch_pb, dispatch_service_client::DispatchServiceClient},
    events::v1::{EventEnvelope, TicketResolved, event_envelope::Payload, type_name},
    returns::v1::return_service_client::ReturnServiceClient,
    tickets::v1::{self as tickets_pb, ticket_service_client::TicketServiceClient},
};
use aftersales_returns::{
    app::{ReturnsApp, ReturnsConfig},
    domain::rma::StepTargets,
    ports::SimulatedPayments,
};
use aftersales_runtime::ServiceSettings;
use aftersales_tickets::app::TicketsApp;
use futures::{StreamExt, future::BoxFuture};
use prost::Message;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};

use crate::{home::Home, sla::Firing};

/// Partners covering the region in the dispatch measurement: each job is offered to both
/// in turn, so it carries two acceptance deadlines before it ends unassigned.
const OFFERS_PER_JOB: u32 = 2;
/// Calls in flight while the backlog is made.
const BACKLOG_CONCURRENCY: usize = 64;
/// The catch-up backlog, in multiples of the plan's (care's: [`CARE_CATCH_UP_SCALE`]).
const CATCH_UP_SCALE: u64 = 10;
const CARE_CATCH_UP_SCALE: u64 = 2;
/// Members the worker claims per round trip: `SLA_BATCH`'s default in production.
const CLAIM_BATCH: usize = 256;
/// Resolution target of the tickets measured: far beyond any run, so only their
/// first-response clocks come due.
const RESOLUTION_SECS: u64 = 30 * 86_400;

#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Deadlines coming due per second while the services run.
    pub per_sec: u32,
    /// How long they keep coming.
    pub duration: Duration,
    /// From making a thing (a return, a job, a resolved ticket) to its deadline.
    pub due_in: Duration,
    /// Things made just before the service stops.
    pub backlog: u64,
    /// How long the service stays down once the backlog is due.
    pub stop: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub service: &'static str,
    pub deadline: &'static str,
    /// The rate the steady deadlines actually came due at.
    pub due_per_sec: f64,
    pub firing: Firing,
    pub catch_up: Firing,
    pub stopped_for_s: f64,
}

/// Makes one thing with a deadline; answers whether that worked.
type Make = Arc<dyn Fn(u64) -> BoxFuture<'static, bool> + Send + Sync>;

/// A service under measurement.
struct Running {
    db: DatabaseConnection,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    make: Make,
}

impl Running {
    async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

#[derive(Debug, Clone, Copy)]
enum Service {
    Returns,
    Dispatch,
    Care,
    Tickets,
}

async fn connect(addr: std::net::SocketAddr) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?)
}

/// The settings a service under measurement runs with: the home's, claiming as many
/// members per round trip as production does.
pub(crate) fn settings(home: &Home) -> ServiceSettings {
    let mut settings = home.settings();
    settings.worker.batch = CLAIM_BATCH;
    settings
}

/// The policy every measured ticket gets: a first response due `due_in` after creation,
/// breached and escalated when missed.
fn clock_policy(due_in: chrono::Duration) -> tickets_pb::UpsertSlaPolicyRequest {
    let target = |seconds: u64| {
        Some(tickets_pb::SlaTarget {
            seconds,
            calendar_id: String::new(),
        })
    };
    tickets_pb::UpsertSlaPolicyRequest {
        policy: Some(tickets_pb::SlaPolicy {
            id: "bench-clocks".into(),
            name: "bench clocks".into(),
            priority: 1,
            first_response: target(due_in.num_seconds().max(1) as u64),
            resolution: target(RESOLUTION_SECS),
            escalate_on_breach: true,
            ..Default::default()
        }),
    }
}

/// Runs a built service until its `Running` is stopped.
fn spawn<F>(
    run: impl FnOnce(CancellationToken) -> F,
) -> (CancellationToken, tokio::task::JoinHandle<()>)
where
    F: std::future::Future + Send + 'static,
{
    let stop = CancellationToken::new();
    let running = run(stop.clone());
    let task = tokio::spawn(async move {
        running.await;
    });
    (stop, task)
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Returns => "returns",
            Service::Dispatch => "dispatch",
            Service::Care => "care",
            Service::Tickets => "tickets",
        }
    }

    fn deadline(self) -> &'static str {
        match self {
            Service::Returns => "step deadline",
            Service::Dispatch => "offer acceptance",
            Service::Care => "follow-up due",
            Service::Tickets => "SLA first-response clock",
        }
    }

    /// The catch-up backlog and how long after its making it comes due.
    fn catch_up(self, plan: Plan) -> (u64, Duration) {
        match self {
            Service::Care => (plan.backlog * CARE_CATCH_UP_SCALE, plan.due_in * 9),
            _ => (plan.backlog * CATCH_UP_SCALE, plan.due_in * 3),
        }
    }

    /// Things to make per second so that `deadlines_per_sec` come due.
    fn things_per_sec(self, deadlines_per_sec: u32) -> u32 {
        match self {
            Service::Dispatch => (deadlines_per_sec / OFFERS_PER_JOB).max(1),
            Service::Returns | Service::Care | Service::Tickets => deadlines_per_sec,
        }
    }

    /// Starts the service in `home` with every deadline `due_in` after its cause.
    async fn start(self, home: &Home, due_in: Duration, fresh: bool) -> anyhow::Result<Running> {
        let due_in = chrono::Duration::from_std(due_in)?;
        let queue = home.queue(self.name()).await?;
        let bus = home.bus().await?;
        match self {
            Service::Returns => {
                let mut config = ReturnsConfig::for_tests(SimulatedPayments::new());
                config.targets = StepTargets {
                    review: due_in,
                    pickup: due_in,
                    inspection: due_in,
                    refund: due_in,
                    third_party: due_in,
                };
                let app = ReturnsApp::build(settings(home), config, bus, queue).await?;
                let db = app.core().db().clone();
                let channel = connect(app.local_addr()).await?;
                let (stop, task) = spawn(|stop| app.run(stop));
                let make: Make = Arc::new(move |_| {
                    let mut client = ReturnServiceClient::new(channel.clone());
                    Box::pin(async move {
                        client
                            .request_return(crate::rpc::returns::request(String::new()))
                            .await
                            .is_ok()
                    })
                });
                Ok(Running {
                    db,
                    stop,
                    task,
                    make,
                })
            }
            Service::Dispatch => {
                let mut config = DispatchConfig::for_tests();
                config.rules.offer_timeout = due_in;
                let app = DispatchApp::build(settings(home), config, bus, queue).await?;
                let db = app.core().db().clone();
                let channel = connect(app.local_addr()).await?;
                let (stop, task) = spawn(|stop| app.run(stop));
                if fresh {
                    let mut client = DispatchServiceClient::new(channel.clone());
                    for i in 0..OFFERS_PER_JOB as usize {
                        client
                            .register_partner(dispatch_pb::RegisterPartnerRequest {
                                spec: Some(crate::dispatch::partner(i)),
                                ..Default::default()
                            })
                            .await?;
                    }
                }
                let make: Make = Arc::new(move |seq| {
                    let mut client = DispatchServiceClient::new(channel.clone());
                    Box::pin(
                        async move { client.create_job(crate::dispatch::job(seq)).await.is_ok() },
                    )
                });
                Ok(Running {
                    db,
                    stop,
                    task,
                    make,
                })
            }
            Service::Care => {
                let mut config = CareConfig::for_tests();
                config.rules.follow_up_window = due_in;
                let app = CareApp::build(settings(home), config, bus.clone(), queue).await?;
                let db = app.core().db().clone();
                let (stop, task) = spawn(|stop| app.run(stop));
                // The tickets service resolving tickets, as care sees it: on the bus.
                let make: Make = Arc::new(move |seq| {
                    let bus = bus.clone();
                    Box::pin(async move { bus.publish("tickets", &[resolved(seq)]).await.is_ok() })
                });
                Ok(Running {
                    db,
                    stop,
                    task,
                    make,
                })
            }
            Service::Tickets => {
                let app = TicketsApp::build(settings(home), bus, queue).await?;
                let db = app.core().db().clone();
                let channel = connect(app.local_addr()).await?;
                let (stop, task) = spawn(|stop| app.run(stop));
                if fresh {
                    TicketServiceClient::new(channel.clone())
                        .upsert_sla_policy(clock_policy(due_in))
                        .await?;
                }
                let make: Make = Arc::new(move |_| {
                    let mut client = TicketServiceClient::new(channel.clone());
                    Box::pin(async move {
                        client
                            .create_ticket(crate::rpc::create_request(String::new()))
                            .await
                            .is_ok()
                    })
                });
                Ok(Running {
                    db,
                    stop,
                    task,
                    make,
                })
            }
        }
    }

    /// `(due_ms, fired_ms)` of every deadline the service fired, "fired" being the
    /// instant its handler took as now.
    fn fired_sql(self) -> &'static str {
        match self {
            Service::Returns => {
                "SELECT CAST(EXTRACT(EPOCH FROM d.due_at) * 1000 AS BIGINT) AS due_ms, \
                 CAST(EXTRACT(EPOCH FROM r.updated_at) * 1000 AS BIGINT) AS fired_ms \
                 FROM return_deadlines d JOIN returns r ON r.id = d.return_id \
                 WHERE d.state = 'missed'"
            }
            Service::Dispatch => {
                "SELECT CAST(EXTRACT(EPOCH FROM expires_at) * 1000 AS BIGINT) AS due_ms, \
                 CAST(EXTRACT(EPOCH FROM CAST(body::json->>'responded_at' AS timestamptz)) * 1000 AS BIGINT) AS fired_ms \
                 FROM offers WHERE status = 'expired'"
            }
            Service::Care => {
                "SELECT CAST(EXTRACT(EPOCH FROM f.due_at) * 1000 AS BIGINT) AS due_ms, \
                 CAST(EXTRACT(EPOCH FROM o.created_at) * 1000 AS BIGINT) AS fired_ms \
                 FROM follow_ups f JOIN outbox o \
                 ON o.subject_id = f.ticket_id AND o.event_type = 'care.FollowUpOverdue'"
            }
            Service::Tickets => {
                "SELECT CAST(EXTRACT(EPOCH FROM due_at) * 1000 AS BIGINT) AS due_ms, \
                 CAST(EXTRACT(EPOCH FROM breached_at) * 1000 AS BIGINT) AS fired_ms \
                 FROM sla_clocks WHERE state = 'breached'"
            }
        }
    }

    /// How many deadlines due before `before_ms` have not fired yet, counting, for care,
    /// follow-ups of the `made` resolutions its consumer has not created yet.
    fn unfired_sql(self, before_ms: i64, made: u64) -> String {
        let before = format!("to_timestamp({before_ms} / 1000.0)");
        match self {
            Service::Returns => format!(
                "SELECT COUNT(*) AS n FROM return_deadlines WHERE state = 'running' AND due_at < {before}"
            ),
            Service::Dispatch => format!(
                "SELECT COUNT(*) AS n FROM offers WHERE status = 'open' AND expires_at < {before}"
            ),
            Service::Care => format!(
                "SELECT ({made} - (SELECT COUNT(*) FROM follow_ups)) + \
                 (SELECT COUNT(*) FROM follow_ups WHERE status = 'pending' AND due_at < {before}) AS n"
            ),
            Service::Tickets => format!(
                "SELECT COUNT(*) AS n FROM sla_clocks WHERE state = 'running' AND due_at < {before}"
            ),
        }
    }

    async fn fired(self, db: &DatabaseConnection) -> anyhow::Result<Vec<(i64, i64)>> {
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                self.fired_sql(),
            ))
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some((
                    r.try_get("", "due_ms").ok()?,
                    r.try_get("", "fired_ms").ok()?,
                ))
            })
            .collect())
    }

    /// Waits until every deadline due before `before_ms` fired, or `limit` passed.
    async fn wait_fired(
        self,
        db: &DatabaseConnection,
        before_ms: i64,
        made: u64,
        limit: Duration,
    ) -> anyhow::Result<()> {
        let sql = self.unfired_sql(before_ms, made);
        let until = Instant::now() + limit;
        loop {
            let left: i64 = db
                .query_one_raw(Statement::from_string(
                    db.get_database_backend(),
                    sql.clone(),
                ))
                .await?
                .and_then(|r| r.try_get("", "n").ok())
                .unwrap_or_default();
            if left <= 0 {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < until,
                "{}: {left} deadlines still unfired after {limit:?}",
                self.name()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A resolved ticket as the tickets service publishes it.
fn resolved(seq: u64) -> BusMessage {
    let ticket_id = format!("bench-ticket-{seq}-{}", uuid::Uuid::now_v7().simple());
    let payload = Payload::TicketResolved(TicketResolved {
        ticket_id: ticket_id.clone(),
        customer_id: format!("bench-cust-{}", seq % 1_000),
        resolved_at: Some(timestamp(chrono::Utc::now())),
        ..Default::default()
    });
    let envelope = EventEnvelope {
        id: uuid::Uuid::now_v7().to_string(),
        r#type: type_name(&payload).to_owned(),
        subject_id: ticket_id,
        occurred_at: Some(timestamp(chrono::Utc::now())),
        source: "bench".into(),
        payload: Some(payload),
    };
    BusMessage {
        event_id: envelope.id.clone(),
        event_type: envelope.r#type.clone(),
        subject_id: envelope.subject_id.clone(),
        payload: envelope.encode_to_vec(),
        headers: Default::default(),
    }
}

/// Lateness of `(due_ms, fired_ms)` pairs, at the rate they fired over `elapsed`.
fn firing(pairs: &[(i64, i64)], elapsed: Duration) -> Firing {
    Firing::of(
        pairs.iter().map(|(due, fired)| fired - due).collect(),
        elapsed,
    )
}

fn span_ms(values: impl Iterator<Item = i64> + Clone) -> Duration {
    let (min, max) = (values.clone().min(), values.max());
    Duration::from_millis(
        max.zip(min)
            .map_or(0, |(max, min)| (max - min).max(0) as u64),
    )
}

async fn measure(service: Service, plan: Plan) -> anyhow::Result<Report> {
    let settle = plan.due_in * 3 + Duration::from_secs(120);

    // Steady: deadlines come due at the planned rate while the service runs.
    let home = Home::fresh().await?;
    let running = service.start(&home, plan.due_in, true).await?;
    let make = running.make.clone();
    let made = crate::load::paced(
        service.things_per_sec(plan.per_sec),
        Duration::ZERO,
        plan.duration,
        move |seq| make(seq),
    )
    .await
    .results
    .into_iter()
    .filter(|made| *made)
    .count() as u64;
    let far = now_ms() + 86_400_000;
    service.wait_fired(&running.db, far, made, settle).await?;
    let pairs = service.fired(&running.db).await?;
    running.stop().await;
    let steady = firing(&pairs, span_ms(pairs.iter().map(|p| p.1)));
    let due_span = span_ms(pairs.iter().map(|p| p.0)).as_secs_f64().max(0.001);

    // Catch-up: a backlog made just before the service stops comes due while it is down.
    // Its deadlines are due later than the steady ones, so making the larger backlog is
    // done before the first of them comes due.
    let (backlog, due_in) = service.catch_up(plan);
    let home = Home::fresh().await?;
    let running = service.start(&home, due_in, true).await?;
    let began = Instant::now();
    let make = running.make.clone();
    let made = futures::stream::iter(0..backlog)
        .map(|seq| make(seq))
        .buffer_unordered(BACKLOG_CONCURRENCY)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await as u64;
    // Give care's consumer until the first due time to turn the resolutions into
    // follow-ups; any it has not reached by then wait for the restart, as they would.
    let _ = service
        .wait_fired(
            &running.db,
            0,
            made,
            (began + due_in).saturating_duration_since(Instant::now()),
        )
        .await;
    running.stop().await;
    tokio::time::sleep((began + due_in + plan.stop).saturating_duration_since(Instant::now()))
        .await;
    let restart_ms = now_ms();
    let running = service.start(&home, due_in, false).await?;
    service
        .wait_fired(&running.db, restart_ms, made, settle)
        .await?;
    let backlog: Vec<(i64, i64)> = service
        .fired(&running.db)
        .await?
        .into_iter()
        // Only what the restarted service fired: had making the backlog taken longer
        // than `due_in`, its first deadlines fired before the stop.
        .filter(|(due, fired)| *due < restart_ms && *fired >= restart_ms)
        .collect();
    running.stop().await;
    let drained = backlog.iter().map(|p| p.1).max().unwrap_or(restart_ms) - restart_ms;
    let catch_up = firing(&backlog, Duration::from_millis(drained.max(1) as u64));

    Ok(Report {
        service: service.name(),
        deadline: service.deadline(),
        due_per_sec: pairs.len() as f64 / due_span,
        firing: steady,
        catch_up,
        stopped_for_s: plan.stop.as_secs_f64(),
    })
}

/// Measures returns, dispatch, care and tickets in turn, each alone on the machine.
pub async fn run(plan: Plan) -> anyhow::Result<Vec<Report>> {
    let mut reports = Vec::new();
    for service in [
        Service::Returns,
        Service::Dispatch,
        Service::Care,
        Service::Tickets,
    ] {
        eprintln!("bench: {} deadlines", service.name());
        let report = measure(service, plan).await?;
        // Each service's figures as soon as they are known: a later one failing loses
        // none of them.
        eprintln!(
            "bench: {} catch-up {:.0}/s ({} fired), steady p99 {} ms",
            report.service,
            report.catch_up.fired_per_sec,
            report.catch_up.clocks,
            report.firing.p99_ms
        );
        reports.push(report);
    }
    Ok(reports)
}
