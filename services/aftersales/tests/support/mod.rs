//! Running the real `aftersales` binary from a test: the child dies with the test, and
//! stopping it with SIGTERM is awaited with a bound; `suite` builds its command line.

#![allow(dead_code)]

pub mod suite;

use std::{process::Child, time::Duration};

/// Kills the child if the test ends before stopping it, so no server outlives its test
/// and holds a port (or the test's output pipe).
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Sends SIGTERM and waits up to `limit` for a clean exit.
pub async fn terminate(child: &mut KillOnDrop, limit: Duration) -> std::process::ExitStatus {
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(exit) = child.0.try_wait().expect("the child can be waited for") {
            return exit;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no exit {limit:?} after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A channel to the server at `url` the child is starting: tried every 100 ms for up to
/// 30 s, failing at once if the child exits.
pub async fn connect(url: impl AsRef<str>, child: &mut KillOnDrop) -> tonic::transport::Channel {
    let url = url.as_ref();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned()).expect("a URL");
        match endpoint.connect().await {
            Ok(channel) => return channel,
            Err(err) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no server at {url}: {err}"
                );
                assert!(
                    child.0.try_wait().expect("the child").is_none(),
                    "the server exited early"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `GET /metrics` over a plain HTTP/1.0 connection: the body.
pub async fn scrape(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the metrics port answers");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
        "{response}"
    );
    response
}

/// The SLA policy tests use to see clocks fire in seconds: SOCIAL tickets get a first
/// response within `first_response_s` and a resolution within `resolution_s`, around the
/// clock, escalated on breach.
pub fn fast_social_policy(
    first_response_s: u64,
    resolution_s: u64,
) -> aftersales_protos::tickets::v1::UpsertSlaPolicyRequest {
    use aftersales_protos::tickets::v1 as tpb;
    let target = |seconds| {
        Some(tpb::SlaTarget {
            seconds,
            calendar_id: String::new(),
        })
    };
    tpb::UpsertSlaPolicyRequest {
        policy: Some(tpb::SlaPolicy {
            id: "fast".into(),
            priority: 1,
            match_channels: vec![tpb::Channel::Social as i32],
            first_response: target(first_response_s),
            resolution: target(resolution_s),
            escalate_on_breach: true,
            ..Default::default()
        }),
    }
}
