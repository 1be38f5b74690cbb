//! Outbound webhooks end to end, from the commit of an event to the receiver's handler.
//! A producing service's side: a database with the outbox and its relay, committing one
//! `tickets.TicketCreated` per transaction at a steady rate onto the Redis bus. The
//! webhooks service (PostgreSQL + Redis, the production claim size) consumes it and POSTs
//! each delivery, signed, to a real receiver that verifies it with the official
//! `standardwebhooks` library and records its arrival minus the body's `timestamp` (the
//! event's `occurred_at`, taken in the producer's transaction).
//!
//! Beside it, in the same run, the floor: the same signed body POSTed from here straight
//! to the same receiver at the same rate, no database and no Redis, so a reader sees how
//! much of the figure is the receiver and Node. Where the rest goes is read back from the
//! producer's outbox (when the relay published) and the service's delivery log (intake,
//! first attempt, HTTP time).
//!
//! Needs the local PostgreSQL and Redis, and the receiver `make tools` installs.

mod producer;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use aftersales_eventbus::envelope;
use aftersales_platform::CancellationToken;
use aftersales_protos::webhooks::v1::{self as pb, webhook_service_client::WebhookServiceClient};
use aftersales_testkit::webhook_receiver::{Received, WebhookReceiver};
use aftersales_webhooks::{
    app::{QUEUE, WebhooksApp, WebhooksConfig},
    domain::{Attempt, signing},
    events::outgoing,
};
use chrono::Utc;
use producer::{Producer, count, ticket_created};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde::Serialize;

use crate::{
    home::Home,
    load::{paced, percentile},
    report::{Row, row},
};

/// The event type the endpoint subscribes to: what the producer commits.
const EVENT_TYPE: &str = "tickets.TicketCreated";
/// The target: p99 from commit to the receiver's handler, at this rate at least.
const TARGET_P99_MS: f64 = 100.0;
const TARGET_PER_SEC: f64 = 1_000.0;
/// The share of the target's rate the committed rate must reach to count as "at" it (the
/// last commit's own time is inside the span the rate is taken over).
const RATE_TOLERANCE: f64 = 0.98;

#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Events committed (and, for the floor, POSTs sent) per second.
    pub per_sec: u32,
    /// At the same rate before the measured window, not recorded.
    pub warmup: Duration,
    pub window: Duration,
    /// Once every event is committed, how long the count of recorded deliveries may stand
    /// still before the missing ones count as not delivered (a slow service is measured,
    /// not cut off).
    pub stall: Duration,
}

/// Percentiles of a latency, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Spread {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Spread {
    fn of_micros(mut micros: Vec<i64>) -> Self {
        micros.sort_unstable();
        let ms = |us: i64| us as f64 / 1_000.0;
        Spread {
            count: micros.len(),
            p50_ms: ms(percentile(&micros, 50.0)),
            p99_ms: ms(percentile(&micros, 99.0)),
            p999_ms: ms(percentile(&micros, 99.9)),
            max_ms: ms(micros.last().copied().unwrap_or_default()),
        }
    }

    fn of_millis(ms: impl Iterator<Item = i64>) -> Self {
        Self::of_micros(ms.map(|ms| ms * 1_000).collect())
    }
}

/// Signed POSTs straight to the receiver.
#[derive(Debug, Clone, Serialize)]
pub struct Floor {
    pub per_sec: f64,
    pub sent: u64,
    pub errors: u64,
    /// The receiver's arrival minus the body's timestamp, as for the deliveries.
    pub latency: Spread,
}

/// Where the time of a delivery goes, each from the commit instant (the event's
/// `occurred_at`, exact here rather than the body's milliseconds).
#[derive(Debug, Clone, Serialize)]
pub struct Stages {
    /// The relay's clock once the bus took the event (the outbox row's `published_at`).
    pub on_bus: Spread,
    /// The consumer's clock as it turned the event into a delivery.
    pub intake: Spread,
    /// Measured events turned into deliveries per second, first to last.
    pub intake_per_sec: f64,
    /// The deadline worker's clock as it began the batch that made the first attempt.
    pub first_attempt: Spread,
    /// The first attempt's HTTP time as the sender measured it (not from the commit).
    pub attempt_http: Spread,
    /// Deliveries that needed more than one attempt.
    pub retried: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub planned_per_sec: u32,
    pub warmup_s: f64,
    pub window_s: f64,
    /// Commits of the measured window per second, from its first tick to its last commit.
    pub committed_per_sec: f64,
    pub committed: u64,
    pub commit_errors: u64,
    /// The producer's INSERT and COMMIT, after the event's timestamp was taken.
    pub insert_commit: Spread,
    /// Measured events the receiver verified.
    pub delivered: u64,
    /// Over the receiver's whole run (floor and warm-up included).
    pub duplicates: u64,
    pub rejected: u64,
    pub malformed: u64,
    /// Commit → the receiver's handler, by the receiver's clock.
    pub latency: Spread,
    pub stages: Stages,
    pub floor: Floor,
}

impl Report {
    pub fn rows(&self, judged: bool) -> Vec<Row> {
        let p = |s: &Spread| format!("{:.1} / {:.1} ms", s.p50_ms, s.p99_ms);
        let tail = |s: &Spread| {
            format!(
                "{:.0} / {:.0} / {:.0} / {:.0} ms",
                s.p50_ms, s.p99_ms, s.p999_ms, s.max_ms
            )
        };
        let (f, st) = (&self.floor, &self.stages);
        let lost = self.committed.saturating_sub(self.delivered);
        let at_rate = self.committed_per_sec >= TARGET_PER_SEC * RATE_TOLERANCE;
        vec![
            row(
                "webhooks: events committed",
                format!(
                    "{:.0}/s ({} in {:.0} s, {} errors)",
                    self.committed_per_sec, self.committed, self.window_s, self.commit_errors
                ),
                "",
                None,
            ),
            row(
                "webhooks: producer insert+commit p50/p99",
                p(&self.insert_commit),
                "",
                None,
            ),
            row(
                "webhooks floor: signed POSTs",
                format!("{:.0}/s ({} errors)", f.per_sec, f.errors),
                "",
                None,
            ),
            row(
                "webhooks floor: POST → receiver p50/p99/p99.9/max",
                tail(&f.latency),
                "",
                None,
            ),
            row(
                "webhooks: commit → on the bus p50/p99",
                p(&st.on_bus),
                "",
                None,
            ),
            row(
                "webhooks: commit → intake p50/p99",
                format!("{} ({:.0}/s taken in)", p(&st.intake), st.intake_per_sec),
                "",
                None,
            ),
            row(
                "webhooks: commit → first attempt p50/p99",
                p(&st.first_attempt),
                "",
                None,
            ),
            row(
                "webhooks: first attempt's HTTP p50/p99",
                format!("{} ({} retried)", p(&st.attempt_http), st.retried),
                "",
                None,
            ),
            row(
                "webhooks: commit → receiver p50/p99/p99.9/max",
                tail(&self.latency),
                "",
                None,
            ),
            row(
                "webhooks: commit → receiver p99",
                format!(
                    "{:.0} ms at {:.0}/s",
                    self.latency.p99_ms, self.committed_per_sec
                ),
                "≤ 100 ms at 1,000 events/s",
                judged.then_some(self.latency.p99_ms <= TARGET_P99_MS && at_rate),
            ),
            row(
                "webhooks: not delivered",
                format!("{lost} (of {} committed)", self.committed),
                "= 0",
                Some(lost == 0),
            ),
            row(
                "webhooks: duplicates",
                format!("{}", self.duplicates),
                "= 0",
                Some(self.duplicates == 0),
            ),
            row(
                "webhooks: rejected / malformed",
                format!("{} / {}", self.rejected, self.malformed),
                "= 0",
                Some(self.rejected == 0 && self.malformed == 0),
            ),
        ]
    }
}

/// The floor: the body the service would send for a new event, signed with the
/// endpoint's secret and POSTed from here straight to the receiver's `/floor`. Answers it
/// with how many deliveries the receiver has verified once it is done.
async fn floor(
    receiver: &WebhookReceiver,
    secret: String,
    plan: Plan,
) -> anyhow::Result<(Floor, usize)> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let (url, secret) = (Arc::new(receiver.url("floor")), Arc::new(secret));
    let sent = paced(plan.per_sec, plan.warmup, plan.window, move |seq| {
        let (client, url, secret) = (client.clone(), url.clone(), secret.clone());
        async move {
            let at = Utc::now();
            let event = envelope::decode(&ticket_created(seq, at).payload).ok()?;
            let out = outgoing(&event).ok()?;
            let signature = signing::header(
                &[secret.as_str()],
                &out.id,
                at.timestamp(),
                out.body.as_bytes(),
            );
            let response = client
                .post(url.as_str())
                .header("content-type", "application/json")
                .header("webhook-id", &out.id)
                .header("webhook-timestamp", at.timestamp().to_string())
                .header("webhook-signature", signature)
                .body(out.body)
                .send()
                .await
                .ok()?;
            response.status().is_success().then_some(out.id)
        }
    })
    .await;
    // A POST answered 204 was verified and recorded before the answer.
    let received = receiver.deliveries().await?;
    let by_id = latencies(&received);
    let accepted: Vec<i64> = sent
        .results
        .iter()
        .flatten()
        .filter_map(|id| by_id.get(id.as_str()).copied())
        .collect();
    let floor = Floor {
        per_sec: sent.per_sec(),
        sent: sent.results.len() as u64,
        errors: (sent.results.len() - accepted.len()) as u64,
        latency: Spread::of_millis(accepted.into_iter()),
    };
    Ok((floor, received.verified.len()))
}

/// Latency by `webhook-id` of what the receiver verified.
fn latencies(received: &Received) -> HashMap<&str, i64> {
    received
        .verified
        .iter()
        .map(|d| (d.id.as_str(), d.latency_ms))
        .collect()
}

/// Waits, off the receiver, until the service has recorded as many deliveries as the
/// producer committed events, or their count stood still for `stall`: polling the
/// receiver's whole log while the last deliveries arrive would slow the handler whose
/// latency is measured. Answers how many events were committed.
async fn settle(
    service_db: &DatabaseConnection,
    producer: &Producer,
    stall: Duration,
) -> anyhow::Result<i64> {
    let committed = producer.committed().await?;
    let (mut last, mut moved) = (-1, Instant::now());
    loop {
        let delivered = count(
            service_db,
            "SELECT COUNT(*) AS n FROM deliveries WHERE state = 'delivered'",
        )
        .await?;
        if delivered >= committed || moved.elapsed() >= stall {
            return Ok(committed);
        }
        if delivered > last {
            (last, moved) = (delivered, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where the time of the `measured` events went, from the producer's outbox and the
/// service's delivery log.
async fn stages(
    service_db: &DatabaseConnection,
    producer: &Producer,
    measured: &HashMap<&str, i64>,
) -> anyhow::Result<Stages> {
    let published = producer.published().await?;
    let on_bus = measured
        .iter()
        .filter_map(|(id, at)| Some(published.get(*id)? - at))
        .collect();
    let rows = service_db
        .query_all_raw(Statement::from_string(
            service_db.get_database_backend(),
            "SELECT id, CAST(EXTRACT(EPOCH FROM created_at) * 1000000 AS BIGINT) AS intake_us, \
             attempts FROM deliveries",
        ))
        .await?;
    let (mut intake, mut intake_at, mut first_attempt, mut http, mut retried) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), 0);
    for r in &rows {
        let (Ok(id), Ok(intake_us), Ok(attempts)) = (
            r.try_get::<String>("", "id"),
            r.try_get::<i64>("", "intake_us"),
            r.try_get::<String>("", "attempts"),
        ) else {
            continue;
        };
        let Some(at) = measured.get(id.as_str()) else {
            continue;
        };
        intake.push(intake_us - at);
        intake_at.push(intake_us);
        let attempts: Vec<Attempt> = serde_json::from_str(&attempts)?;
        if let Some(first) = attempts.first() {
            first_attempt.push(first.at.timestamp_micros() - at);
            http.push(i64::from(first.latency_ms) * 1_000);
        }
        retried += u64::from(attempts.len() > 1);
    }
    let intake_span = intake_at.iter().max().zip(intake_at.iter().min());
    let intake_s = intake_span.map_or(0, |(last, first)| last - first) as f64 / 1e6;
    Ok(Stages {
        on_bus: Spread::of_micros(on_bus),
        intake_per_sec: intake_at.len() as f64 / intake_s.max(0.001),
        intake: Spread::of_micros(intake),
        first_attempt: Spread::of_micros(first_attempt),
        attempt_http: Spread::of_micros(http),
        retried,
    })
}

/// The webhooks service, its receiver and a producer, the floor, then the measured run.
pub async fn run(plan: Plan) -> anyhow::Result<Report> {
    let stop = CancellationToken::new();
    let report = measure(plan, &stop).await;
    stop.cancel();
    report
}

async fn measure(plan: Plan, stop: &CancellationToken) -> anyhow::Result<Report> {
    let home = Home::fresh().await?;
    let app = WebhooksApp::build(
        crate::handlers::settings(&home),
        WebhooksConfig::for_tests(),
        home.bus().await?,
        home.queue(QUEUE).await?,
    )
    .await?;
    let service_db = app.core().db().clone();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.local_addr()))?
        .connect()
        .await?;
    tokio::spawn(app.run(stop.clone()));

    let receiver = WebhookReceiver::start(&[]).await?;
    let created = WebhookServiceClient::new(channel)
        .create_endpoint(pb::CreateEndpointRequest {
            partner_id: String::new(),
            url: receiver.url("webhooks"),
            event_types: vec![EVENT_TYPE.into()],
            description: "bench receiver".into(),
            idempotency_key: String::new(),
        })
        .await?
        .into_inner();
    receiver
        .set_secrets(std::slice::from_ref(&created.secret))
        .await?;
    let producer = Arc::new(Producer::start(&home, stop).await?);

    eprintln!(
        "bench: webhooks floor, {}/s signed POSTs straight to the receiver",
        plan.per_sec
    );
    let (floor, verified_before) = floor(&receiver, created.secret, plan).await?;

    eprintln!(
        "bench: webhooks, {}/s events committed → receiver",
        plan.per_sec
    );
    let from = producer.clone();
    let sent = paced(plan.per_sec, plan.warmup, plan.window, move |seq| {
        let from = from.clone();
        async move { from.commit(seq).await.map_err(|e| e.to_string()) }
    })
    .await;
    let calls = sent.results.len() as u64;
    let mut committed = Vec::with_capacity(sent.results.len());
    for result in sent.results {
        match result {
            Ok(c) => committed.push(c),
            Err(err) => eprintln!("bench: webhooks: a commit failed: {err}"),
        }
    }
    let committed_per_sec = committed.len() as f64 / sent.span.as_secs_f64().max(0.001);

    let all_committed = settle(&service_db, &producer, plan.stall).await?;
    let expected = verified_before + usize::try_from(all_committed)?;
    let received = match receiver.wait_for(expected, Duration::from_secs(5)).await {
        Ok(received) => received,
        Err(err) => {
            eprintln!("bench: webhooks: {err}");
            receiver.deliveries().await?
        }
    };
    let by_id = latencies(&received);
    let latency: Vec<i64> = committed
        .iter()
        .filter_map(|c| by_id.get(c.id.as_str()).copied())
        .collect();
    let measured: HashMap<&str, i64> = committed
        .iter()
        .map(|c| (c.id.as_str(), c.at.timestamp_micros()))
        .collect();
    let stages = stages(&service_db, &producer, &measured).await?;

    Ok(Report {
        planned_per_sec: plan.per_sec,
        warmup_s: plan.warmup.as_secs_f64(),
        window_s: plan.window.as_secs_f64(),
        committed_per_sec,
        committed: committed.len() as u64,
        commit_errors: calls - committed.len() as u64,
        insert_commit: Spread::of_micros(
            committed
                .iter()
                .map(|c| c.insert_commit.as_micros() as i64)
                .collect(),
        ),
        delivered: latency.len() as u64,
        duplicates: received.duplicates,
        rejected: received.rejected,
        malformed: received.malformed,
        latency: Spread::of_millis(latency.into_iter()),
        stages,
        floor,
    })
}
