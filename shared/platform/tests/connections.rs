#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test
//! Connection hygiene of the gRPC server kit: a peer that opens an HTTP/2 connection and
//! then stops answering (it never acknowledges the server's PING) is disconnected within
//! the keepalive interval plus its timeout, instead of holding the connection forever.

use std::time::{Duration, Instant};

use aftersales_platform::{
    CancellationToken,
    server::{self, GrpcServices, ServerSettings},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_peer_that_stops_answering_is_disconnected() {
    let listener = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut settings = ServerSettings::for_tests();
    settings.keepalive_interval = Duration::from_millis(300);
    settings.keepalive_timeout = Duration::from_millis(300);
    let stop = CancellationToken::new();
    let server = tokio::spawn(server::serve(
        listener,
        settings,
        GrpcServices::new(),
        stop.clone(),
    ));

    let mut peer = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The HTTP/2 connection preface and an empty SETTINGS frame; then silence.
    peer.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    peer.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match peer.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // the server's SETTINGS, its ack, its PINGs: never answered
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the silent peer was still connected after 10 s"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed only after {:?}",
        started.elapsed()
    );
    stop.cancel();
    let _ = server.await;
}
