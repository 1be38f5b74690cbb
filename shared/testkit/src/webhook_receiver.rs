//! A real webhook receiver for the outbound-webhooks tests and benchmark:
//! `tests/webhook-receiver/receiver.mjs` (installed by `tests/setup/tools-webhooks.sh`,
//! which `make tools` runs) on two free loopback ports. It verifies every delivery with
//! `standardwebhooks`, the official Standard Webhooks library, against the secrets it is
//! given (a delivery passes when any one of them verifies it, as during a rotation),
//! records each verified `webhook-id` once, and counts duplicates, rejections and
//! attempts. Its control port lets a test change the secrets, answer a fixed status, or
//! take the receiving port down (connections refused, open ones cut) and up again.
//!
//! Depends on Node (20+) and the receiver's `node_modules`, nothing in the workspace.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, bail};
use serde::Deserialize;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, ChildStdin, Command},
};

fn receiver_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/webhook-receiver")
}

/// What the receiver has seen since it started or was last reset.
#[derive(Debug, Clone, Deserialize)]
pub struct Received {
    /// Each verified `webhook-id` once, in the order they first arrived.
    pub verified: Vec<ReceivedDelivery>,
    /// Verified deliveries whose `webhook-id` had already been recorded.
    pub duplicates: u64,
    /// Deliveries no configured secret verifies (answered 401).
    pub rejected: u64,
    /// Verified deliveries whose body is not `{"type": string, "timestamp": RFC 3339, ...}`
    /// (answered 400; the receiver says why on stderr).
    pub malformed: u64,
    /// Every request on the receiving port, including those answered with a status set
    /// by [`WebhookReceiver::set_status`].
    pub attempts: u64,
}

/// One verified delivery.
#[derive(Debug, Clone, Deserialize)]
pub struct ReceivedDelivery {
    /// The `webhook-id` header.
    pub id: String,
    /// The body's `type`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The request path (with its query, if any).
    pub path: String,
    /// When it arrived, in Unix milliseconds.
    pub received_at_ms: i64,
    /// Arrival minus the body's `timestamp`, in milliseconds.
    pub latency_ms: i64,
}

/// The receiver process; killed when dropped.
pub struct WebhookReceiver {
    receive_port: u16,
    control: String,
    http: reqwest::Client,
    // The receiver exits when its stdin ends, so it does not outlive a killed test process.
    _stdin: ChildStdin,
    _child: Child,
}

#[derive(Deserialize)]
struct Ready {
    receive_port: u16,
    control_port: u16,
}

impl WebhookReceiver {
    /// Starts a receiver that accepts deliveries signed with any of `secrets`
    /// (`whsec_<base64>`; none means every delivery is rejected until
    /// [`set_secrets`](Self::set_secrets)).
    pub async fn start(secrets: &[String]) -> anyhow::Result<Self> {
        let dir = receiver_dir();
        if !dir.join("node_modules/standardwebhooks").exists() {
            bail!(
                "{} is missing: run `make tools` (or `bash tests/setup/tools-webhooks.sh`) to \
                 install the webhook receiver",
                dir.join("node_modules").display()
            );
        }
        let mut child = Command::new("node")
            .arg(dir.join("receiver.mjs"))
            .arg("--exit-with-stdin")
            .env("WEBHOOK_SECRETS", secrets.join(","))
            .env_remove("RECEIVE_PORT")
            .env_remove("CONTROL_PORT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("node starts (Node 20+ is needed)")?;
        let stdin = child.stdin.take().context("receiver stdin")?;
        let mut lines = BufReader::new(child.stdout.take().context("receiver stdout")?).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .context("the webhook receiver says where it listens within 20 s")??
            .context("the webhook receiver exited before it listened (see its stderr)")?;
        let ready: Ready = serde_json::from_str(&first)
            .with_context(|| format!("the webhook receiver's ready line {first:?}"))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            receive_port: ready.receive_port,
            control: format!("http://127.0.0.1:{}", ready.control_port),
            http,
            _stdin: stdin,
            _child: child,
        })
    }

    /// The receiving URL for `path` (any path is accepted): `http://127.0.0.1:<port>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.receive_port,
            path.trim_start_matches('/')
        )
    }

    /// Everything received since start or the last [`reset`](Self::reset).
    pub async fn deliveries(&self) -> anyhow::Result<Received> {
        let response = self
            .http
            .get(format!("{}/deliveries", self.control))
            .send()
            .await
            .context("asking the webhook receiver for its deliveries")?
            .error_for_status()?;
        Ok(response.json().await?)
    }

    /// Replaces the secrets deliveries are verified with.
    pub async fn set_secrets(&self, secrets: &[String]) -> anyhow::Result<()> {
        self.command("secrets", serde_json::json!({ "secrets": secrets }))
            .await
    }

    /// Closes the receiving port and cuts every open connection to it: senders get
    /// connection refused until [`up`](Self::up). Returns once the port is closed.
    pub async fn down(&self) -> anyhow::Result<()> {
        self.command("down", serde_json::json!({})).await
    }

    /// Listens again on the same receiving port.
    pub async fn up(&self) -> anyhow::Result<()> {
        self.command("up", serde_json::json!({})).await
    }

    /// Answers every delivery with `status` (e.g. 500), without verifying or recording
    /// it; 0 goes back to verifying.
    pub async fn set_status(&self, status: u16) -> anyhow::Result<()> {
        self.command("status", serde_json::json!({ "status": status }))
            .await
    }

    /// Forgets every delivery, count and seen id.
    pub async fn reset(&self) -> anyhow::Result<()> {
        self.command("reset", serde_json::json!({})).await
    }

    /// Waits until at least `n_verified` distinct deliveries are verified, polling; fails
    /// with what had arrived when `timeout` passes first.
    pub async fn wait_for(&self, n_verified: usize, timeout: Duration) -> anyhow::Result<Received> {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let received = self.deliveries().await?;
            if received.verified.len() >= n_verified {
                return Ok(received);
            }
            if tokio::time::Instant::now() >= until {
                bail!(
                    "the webhook receiver verified {} of {n_verified} deliveries within {timeout:?} \
                     ({} duplicates, {} rejected, {} malformed, {} attempts)",
                    received.verified.len(),
                    received.duplicates,
                    received.rejected,
                    received.malformed,
                    received.attempts
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn command(&self, name: &str, body: serde_json::Value) -> anyhow::Result<()> {
        let response = self
            .http
            .post(format!("{}/{name}", self.control))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST /{name} to the webhook receiver"))?;
        if !response.status().is_success() {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            bail!("POST /{name} to the webhook receiver answered {status}: {text}");
        }
        Ok(())
    }
}
