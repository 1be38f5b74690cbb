//! Sends one delivery over HTTP: signed per Standard Webhooks, no redirects followed, a
//! time-out per attempt, at most a set number in flight per endpoint (an attempt waits a
//! moment for a lane, then is put off), and every address
//! it connects to checked against the target rules (the resolver drops inside addresses,
//! so a host name that re-resolves to one is refused at delivery too).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use aftersales_platform::metrics;
use chrono::{DateTime, Utc};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::sync::Semaphore;

use crate::domain::{
    Attempt, signing,
    target::{self, AllowList},
};

/// How long an attempt waits for one of its endpoint's lanes before it is put off.
pub const LANE_WAIT: Duration = Duration::from_millis(250);

/// How much of a receiver's answer is read before the connection is dropped.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// How deliveries go out.
#[derive(Debug, Clone)]
pub struct SenderSettings {
    pub timeout: Duration,
    /// Attempts in flight at once per endpoint (per process).
    pub per_endpoint: usize,
    pub allow: AllowList,
}

/// The resolver every delivery connects through.
struct GuardedResolver {
    allow: Arc<AllowList>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let allowed_host = allow.allows_host(&host);
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| target::may_connect(allowed_host, a.ip(), &allow))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// What one attempt needs: where, what, signed with which secrets.
#[derive(Debug, Clone)]
pub struct Outbound<'a> {
    pub endpoint_id: &'a str,
    pub url: &'a str,
    pub id: &'a str,
    pub body: &'a str,
    pub secrets: Vec<&'a str>,
}

pub struct Sender {
    client: reqwest::Client,
    settings: SenderSettings,
    lanes: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Sender {
    pub fn new(settings: SenderSettings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("aftersales-webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                allow: Arc::new(settings.allow.clone()),
            }))
            .build()?;
        Ok(Self {
            client,
            settings,
            lanes: Mutex::default(),
        })
    }

    pub fn allow(&self) -> &AllowList {
        &self.settings.allow
    }

    /// One attempt in one of the endpoint's lanes: waits up to [`LANE_WAIT`] for a lane,
    /// and gives `None` without sending when none came free (the endpoint is slow or
    /// busy: the caller tries again later rather than hold a worker lane for it).
    pub async fn send_in_lane(
        &self,
        out: &Outbound<'_>,
        number: u32,
        now: DateTime<Utc>,
    ) -> Option<Attempt> {
        let semaphore = {
            let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
            lanes
                .entry(out.endpoint_id.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.settings.per_endpoint.max(1))))
                .clone()
        };
        let _lane = tokio::time::timeout(LANE_WAIT, semaphore.acquire_owned())
            .await
            .ok()?
            .ok()?;
        Some(self.send(out, number, now).await)
    }

    /// One attempt, numbered `number`, at `now`.
    pub async fn send(&self, out: &Outbound<'_>, number: u32, now: DateTime<Utc>) -> Attempt {
        let started = Instant::now();
        let failed = |error: String, status_code: u16| Attempt {
            number,
            at: now,
            status_code,
            latency_ms: elapsed_ms(started),
            error,
        };
        if let Err(err) = target::check_url(out.url, &self.settings.allow, "url") {
            return failed(format!("refused target: {err}"), 0);
        }
        let timestamp = now.timestamp();
        let signature = signing::header(&out.secrets, out.id, timestamp, out.body.as_bytes());
        let sent = self
            .client
            .post(out.url)
            .header("content-type", "application/json")
            .header("webhook-id", out.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(out.body.to_owned())
            .send()
            .await;
        let attempt = match sent {
            Ok(mut response) => {
                let status = response.status().as_u16();
                // The body is not kept. A short one is read so the connection can be
                // reused; a long one is cut off (the connection is then dropped), so a
                // receiver cannot make us hold or wait for much.
                let mut read = 0;
                while let Ok(Some(chunk)) = response.chunk().await {
                    read += chunk.len();
                    if read > MAX_ANSWER_BYTES {
                        break;
                    }
                }
                failed(String::new(), status)
            }
            Err(err) => failed(describe(&err), 0),
        };
        metrics::webhook_attempt(
            (attempt.status_code != 0).then_some(attempt.status_code),
            started.elapsed(),
        );
        attempt
    }
}

fn elapsed_ms(started: Instant) -> u32 {
    u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX)
}

/// A short reason for a failure without an answer.
fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "time-out"
    } else if err.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(err);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}
