//! Connection hygiene on the HTTP face, seen from raw sockets: half-sent and silent
//! connections are closed within the header-read timeout, a kept-alive connection once it
//! has been quiet for the idle timeout, HTTP/2 peers get a bounded number of streams and an
//! idle close too, and a body trickling in is cut off by the request timeout.

use std::time::{Duration, Instant};

use aftersales_gateway::{app::GatewaySettings, http::serve::ConnectionLimits};
use aftersales_platform::CancellationToken;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    task::JoinHandle,
};

use crate::helpers::{Gateway, spawn_gateway};

/// A gateway whose upstreams are never called, with these connection limits.
async fn gateway(
    limits: ConnectionLimits,
    configure: impl FnOnce(&mut GatewaySettings),
) -> (Gateway, CancellationToken, JoinHandle<()>) {
    let mut settings =
        GatewaySettings::for_tests("http://127.0.0.1:9".into(), "http://127.0.0.1:9".into());
    settings.http = limits;
    configure(&mut settings);
    let shutdown = CancellationToken::new();
    let (gw, task) = spawn_gateway(settings, shutdown.clone()).await;
    (gw, shutdown, task)
}

/// Reads (and keeps) whatever comes until the server closes; how long that took, or
/// `None` if it was still open after `limit`.
async fn until_closed(stream: &mut TcpStream, limit: Duration) -> (Option<Duration>, Vec<u8>) {
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buf)).await {
            Err(_) => return (None, seen),
            Ok(Ok(0)) | Ok(Err(_)) => return (Some(started.elapsed()), seen),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one HTTP/1.1 response with a `Content-Length` body; its status line.
async fn response(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.expect("reads");
        assert!(
            n > 0,
            "closed mid-response: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .expect("a content-length");
            if body.len() >= length {
                return head.lines().next().unwrap().to_owned();
            }
        }
    }
}

#[tokio::test]
async fn half_sent_and_silent_connections_are_closed_within_the_header_timeout() {
    let header_timeout = Duration::from_millis(500);
    let (gw, shutdown, task) = gateway(
        ConnectionLimits {
            header_read_timeout: header_timeout,
            idle_timeout: Duration::from_secs(60),
            ..ConnectionLimits::DEFAULT
        },
        |_| {},
    )
    .await;

    // Fifty at once: half-sent HTTP/1 requests, connections that say nothing, and
    // half-sent HTTP/2 prefaces.
    let mut probes = Vec::new();
    for n in 0..50 {
        let sent: &'static [u8] = match n % 5 {
            0..=2 => b"GET / HTTP/1.1\r\nHost: x\r\n",
            3 => b"",
            _ => b"PRI * HTTP/2.0\r\n",
        };
        let addr = gw.http_addr;
        probes.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(sent).await.unwrap();
            let (closed, _) = until_closed(&mut stream, Duration::from_secs(10)).await;
            (sent, closed)
        }));
    }
    for probe in probes {
        let (sent, closed) = probe.await.unwrap();
        let closed = closed
            .unwrap_or_else(|| panic!("{:?} still open after 10 s", String::from_utf8_lossy(sent)));
        // Not at once: the timeout closed it. The HTTP/1 ones by hyper's header timer;
        // the others are asked to close at the timeout and dropped within the grace.
        assert!(
            closed >= header_timeout - Duration::from_millis(100),
            "{closed:?}"
        );
        let bound = if sent.starts_with(b"GET") {
            header_timeout + Duration::from_millis(700)
        } else {
            header_timeout + Duration::from_millis(2_700)
        };
        assert!(
            closed <= bound,
            "{:?} closed after {closed:?}",
            String::from_utf8_lossy(sent)
        );
    }

    // The face still serves whoever sends a whole request.
    assert_eq!(gw.http.get("/healthz", None).await.status, 200);
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_millis(600);
    let (gw, shutdown, task) = gateway(
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: idle,
            ..ConnectionLimits::DEFAULT
        },
        |_| {},
    )
    .await;
    let mut stream = TcpStream::connect(gw.http_addr).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    stream.write_all(request).await.unwrap();
    assert_eq!(response(&mut stream).await, "HTTP/1.1 200 OK");
    // Kept alive: a second request on the same connection before the idle timeout.
    tokio::time::sleep(idle / 2).await;
    stream.write_all(request).await.unwrap();
    assert_eq!(response(&mut stream).await, "HTTP/1.1 200 OK");

    // Then quiet: closed once it has been quiet for the idle timeout, counted from the
    // last answer.
    let (closed, _) = until_closed(&mut stream, Duration::from_secs(10)).await;
    let closed = closed.expect("closed within 10 s");
    assert!(closed >= idle - Duration::from_millis(100), "{closed:?}");
    assert!(closed <= idle + Duration::from_millis(700), "{closed:?}");
    shutdown.cancel();
    task.await.unwrap();
}

/// One HTTP/2 frame: type, flags, stream and payload.
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

async fn read_frame(stream: &mut TcpStream) -> Option<Frame> {
    let mut head = [0u8; 9];
    stream.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await.ok()?;
    Some(Frame {
        kind: head[3],
        flags: head[4],
        stream: u32::from_be_bytes([head[5] & 0x7f, head[6], head[7], head[8]]),
        payload,
    })
}

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const SETTINGS: u8 = 4;
const GOAWAY: u8 = 7;
const END_STREAM: u8 = 0x1;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;

#[tokio::test]
async fn http2_peers_get_bounded_streams_and_idle_connections_are_closed() {
    let idle = Duration::from_millis(600);
    let (gw, shutdown, task) = gateway(
        ConnectionLimits {
            idle_timeout: idle,
            max_concurrent_streams: 7,
            ..ConnectionLimits::DEFAULT
        },
        |_| {},
    )
    .await;
    let mut stream = TcpStream::connect(gw.http_addr).await.unwrap();
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(SETTINGS, 0, 0, &[]));
    stream.write_all(&hello).await.unwrap();

    // The server's first frame is its SETTINGS, with the stream bound.
    let settings = read_frame(&mut stream).await.expect("SETTINGS");
    assert_eq!((settings.kind, settings.flags), (SETTINGS, 0));
    let streams = settings.payload.chunks(6).find_map(|entry| {
        (u16::from_be_bytes([entry[0], entry[1]]) == SETTINGS_MAX_CONCURRENT_STREAMS)
            .then(|| u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]))
    });
    assert_eq!(streams, Some(7));
    stream.write_all(&frame(SETTINGS, 1, 0, &[])).await.unwrap();

    // GET /healthz (HPACK: :method GET, :scheme http, :path and :authority literal).
    let mut block = vec![0x82, 0x86, 0x04, 8];
    block.extend_from_slice(b"/healthz");
    block.extend_from_slice(&[0x01, 1, b'x']);
    stream
        .write_all(&frame(HEADERS, 0x4 | END_STREAM, 1, &block))
        .await
        .unwrap();
    loop {
        let f = read_frame(&mut stream).await.expect("the answer");
        if f.stream == 1 && matches!(f.kind, DATA | HEADERS) && f.flags & END_STREAM != 0 {
            break;
        }
    }

    // Quiet from now on (and deaf to the server's PINGs): asked to go away once idle,
    // then dropped.
    let started = Instant::now();
    let mut goaway = false;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(f) = read_frame(&mut stream).await {
            goaway |= f.kind == GOAWAY;
        }
        started.elapsed()
    })
    .await
    .expect("closed within 10 s");
    assert!(goaway, "no GOAWAY before the close");
    assert!(closed >= idle - Duration::from_millis(100), "{closed:?}");
    assert!(closed <= idle + Duration::from_millis(2_700), "{closed:?}");
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_trickled_body_is_answered_408_within_the_request_timeout() {
    let limit = Duration::from_millis(500);
    let (gw, shutdown, task) = gateway(ConnectionLimits::DEFAULT, |g| {
        g.server.request_timeout = limit;
    })
    .await;
    let mut stream = TcpStream::connect(gw.http_addr).await.unwrap();
    stream
        .write_all(
            b"POST /v1/carriers/simulated/tracking HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"event",
        )
        .await
        .unwrap();
    let (closed, seen) = until_closed(&mut stream, Duration::from_secs(10)).await;
    let closed = closed.expect("closed within 10 s");
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    assert!(closed >= limit - Duration::from_millis(100), "{closed:?}");
    assert!(closed <= limit + Duration::from_millis(700), "{closed:?}");
    shutdown.cancel();
    task.await.unwrap();
}
