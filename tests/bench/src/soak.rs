//! `make soak`: ten minutes of CreateTicket at half the measured maximum, with SLA targets
//! short enough that clocks fire all the time. No ticket is answered, so each one costs a
//! create and four firings (two warnings, two breaches); the maximum is measured for that
//! whole workload. Every minute: the rate held, errors, this
//! process's resident memory (the service runs in it), and the SLA firing lateness p99 of
//! the clocks that breached that minute. Errors must stay zero, memory flat, lateness stable.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use aftersales_protos::tickets::v1::{self as pb, ticket_service_client::TicketServiceClient};
use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tonic::transport::Channel;

use crate::{
    load::percentile,
    rpc::{self, Load},
};

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        sql.to_owned(),
    ))
    .await
    .ok()
    .flatten()
    .and_then(|row| row.try_get::<i64>("", "n").ok())
    .unwrap_or(0)
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Lateness (ms) of the clocks that breached since `since`.
async fn lateness_since(db: &DatabaseConnection, since: chrono::DateTime<Utc>) -> Vec<i64> {
    let sql = format!(
        "SELECT CAST(EXTRACT(EPOCH FROM (breached_at - due_at)) * 1000 AS BIGINT) AS late \
         FROM sla_clocks WHERE breached_at >= '{}'",
        since.to_rfc3339()
    );
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_default();
    let mut late: Vec<i64> = rows
        .iter()
        .filter_map(|r| r.try_get::<i64>("", "late").ok())
        .collect();
    late.sort_unstable();
    late
}

pub async fn run(channel: Channel, db: DatabaseConnection, minutes: u64) -> anyhow::Result<bool> {
    // The soak's own maximum: every ticket it creates later costs a create and four SLA
    // firings (two warnings, two breaches), so both are measured and combined.
    let probe = Load {
        concurrency: 64,
        warmup: Duration::from_secs(2),
        duration: Duration::from_secs(10),
    };
    let create_max = rpc::create_ticket(channel.clone(), probe).await.per_sec();
    let policy = |first: u64, resolution: u64| pb::UpsertSlaPolicyRequest {
        policy: Some(pb::SlaPolicy {
            id: "soak".into(),
            priority: 1,
            first_response: Some(pb::SlaTarget {
                seconds: first,
                calendar_id: String::new(),
            }),
            resolution: Some(pb::SlaTarget {
                seconds: resolution,
                calendar_id: String::new(),
            }),
            escalate_on_breach: true,
            ..Default::default()
        }),
    };
    let mut client = TicketServiceClient::new(channel.clone());
    client.upsert_sla_policy(policy(2, 3)).await?;
    let began = Utc::now();
    let burst = Load {
        concurrency: 64,
        warmup: Duration::ZERO,
        duration: Duration::from_secs(5),
    };
    let created = rpc::create_ticket(channel.clone(), burst).await.ok as i64;
    let first_due = Instant::now() - Duration::from_secs(5) + Duration::from_millis(1_500);
    let since = began.to_rfc3339();
    let breached_sql = format!(
        "SELECT COUNT(*) AS n FROM sla_clocks c JOIN tickets t ON t.id = c.ticket_id \
         WHERE t.created_at >= '{since}' AND t.policy_id = 'soak' AND c.state = 'breached'"
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    while count(&db, &breached_sql).await < 2 * created && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fire_max = (4 * created) as f64 / first_due.elapsed().as_secs_f64();
    let combined = 1.0 / (1.0 / create_max + 4.0 / fire_max);
    let rate = (combined / 2.0).max(1.0);
    println!(
        "soak: CreateTicket maximum {create_max:.0}/s, SLA firing maximum {fire_max:.0}/s; a ticket costs one \
         create and four firings, so the maximum is {combined:.0} tickets/s; holding {rate:.0}/s for {minutes} min"
    );
    client.upsert_sla_policy(policy(5, 10)).await?;

    let errors = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let end = Instant::now() + Duration::from_secs(minutes * 60);
    let mut minute_start = (Instant::now(), Utc::now(), 0u64, 0u64);
    let (mut memory, mut p99s) = (Vec::new(), Vec::new());
    let mut seq = 0u64;
    while Instant::now() < end {
        ticker.tick().await;
        seq += 1;
        let mut client = TicketServiceClient::new(channel.clone());
        let (task_errors, task_sent) = (errors.clone(), sent.clone());
        let request = rpc::create_request(format!("soak-{run}-{seq}"));
        tokio::spawn(async move {
            task_sent.fetch_add(1, Ordering::Relaxed);
            if client.create_ticket(request).await.is_err() {
                task_errors.fetch_add(1, Ordering::Relaxed);
            }
        });
        if minute_start.0.elapsed() >= Duration::from_secs(60) {
            let late = lateness_since(&db, minute_start.1).await;
            let (now_sent, now_errors) =
                (sent.load(Ordering::Relaxed), errors.load(Ordering::Relaxed));
            let mb = rss_mb();
            let p99 = percentile(&late, 99.0);
            println!(
                "soak: minute {:>2}: {:.0}/s, {} errors, {mb:.1} MB resident, {} clocks breached, lateness p99 {p99} ms",
                memory.len() + 1,
                (now_sent - minute_start.2) as f64 / 60.0,
                now_errors - minute_start.3,
                late.len(),
            );
            memory.push(mb);
            p99s.push(p99);
            minute_start = (Instant::now(), Utc::now(), now_sent, now_errors);
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let total_errors = errors.load(Ordering::Relaxed);
    // Flat means no growth over the second half: the first minutes fill pools and caches.
    let growth = match (memory.get(memory.len() / 2), memory.last()) {
        (Some(middle), Some(last)) => (last - middle) / middle,
        _ => 0.0,
    };
    // Judged like memory, over the second half: the first minutes warm pools and caches.
    let settled = &p99s[p99s.len() / 2..];
    let lowest = settled.iter().copied().min().unwrap_or(0).max(50);
    let steady = settled.iter().copied().max().unwrap_or(0) <= 2 * lowest;
    let ok = total_errors == 0 && growth < 0.10 && steady;
    println!(
        "soak: {} requests, {total_errors} errors (target 0); memory {:+.1}% over the second half (target flat, < 10%); \
         lateness p99 per minute {p99s:?} ms ({} over the second half); {}",
        sent.load(Ordering::Relaxed),
        growth * 100.0,
        if steady { "stable" } else { "NOT stable" },
        if ok { "passed" } else { "FAILED" },
    );
    Ok(ok)
}
