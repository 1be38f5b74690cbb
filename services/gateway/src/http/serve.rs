//! Serving the HTTP face on hyper directly, because `axum::serve` offers no timeouts: every
//! connection is bounded. An HTTP/1 request's headers must arrive within the header-read
//! timeout (hyper's own timer, which also bounds the quiet gap before each next request
//! on a kept-alive connection); any connection must begin its first request within that
//! timeout too, so a peer that sends nothing, or half an HTTP/2 preface, is dropped; a
//! connection with no request in flight for the idle timeout is closed gracefully (and
//! dropped if its peer does not let go); HTTP/2 peers are pinged and dropped when they do
//! not answer, and may open a bounded number of streams at once. The request timeout of
//! the router bounds a request whose body trickles in. With TLS, the handshake runs in the
//! connection's own task (so a slow one holds up nobody) and must finish within the
//! header-read timeout too; the certificate is the one current when the connection
//! arrives (`tls::ReloadingConfig` reads renewed files).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use aftersales_platform::{CancellationToken, tls::ReloadingConfig};
use axum::{Router, extract::ConnectInfo};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::Notify,
    task::JoinSet,
    time::Instant,
};
use tower::ServiceExt;

/// How long a connection asked to close may take before it is dropped (an HTTP/2 peer
/// must answer the GOAWAY's PING first).
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// The pause after a failed accept (e.g. out of file descriptors) before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The bounds of every connection to the HTTP face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Longest wait for a request's headers, and for a new connection's first request.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed. (A kept-alive
    /// HTTP/1 connection is closed sooner if the header-read timeout is shorter: hyper
    /// times the wait for the next request's headers from the end of the last answer.)
    pub idle_timeout: Duration,
    /// HTTP/2: how often a connection is pinged…
    pub keepalive_interval: Duration,
    /// …and how long the peer has to answer before the connection is dropped.
    pub keepalive_timeout: Duration,
    /// HTTP/2: streams one connection may have open at once.
    pub max_concurrent_streams: u32,
}

impl ConnectionLimits {
    /// The defaults: headers within 10 s, idle for at most 60 s, pings every 20 s answered
    /// within 10 s, 100 streams.
    pub const DEFAULT: Self = Self {
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        keepalive_interval: Duration::from_secs(20),
        keepalive_timeout: Duration::from_secs(10),
        max_concurrent_streams: 100,
    };

    fn builder(&self) -> Builder<TokioExecutor> {
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(self.keepalive_interval)
            .keep_alive_timeout(self.keepalive_timeout)
            .max_concurrent_streams(self.max_concurrent_streams);
        builder
    }
}

/// Serves `router` on `listener` (over TLS when `tls` is given) until `shutdown`; then
/// stops accepting, asks every connection to close, and drops those still open after
/// `drain`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ReloadingConfig>>,
    router: Router,
    limits: ConnectionLimits,
    drain: Duration,
    shutdown: CancellationToken,
) {
    let builder = limits.builder();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    connections.spawn(connection(
                        builder.clone(),
                        tcp,
                        tls.clone(),
                        peer,
                        router.clone(),
                        limits,
                        Closing { shutdown: shutdown.clone(), drain },
                    ));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "HTTP face: accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = shutdown.cancelled() => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(timeout = ?drain, remaining = connections.len(), "HTTP drain timed out; dropping remaining connections");
    }
}

/// When a connection is asked to close for good.
struct Closing {
    shutdown: CancellationToken,
    drain: Duration,
}

async fn connection(
    builder: Builder<TokioExecutor>,
    tcp: TcpStream,
    tls: Option<Arc<ReloadingConfig>>,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    closing: Closing,
) {
    // Answers go out at once rather than waiting on the peer's delayed ACK (Nagle).
    if let Err(err) = tcp.set_nodelay(true) {
        tracing::debug!(error = %err, "TCP_NODELAY not set");
    }
    let opened = Instant::now();
    let Some(tls) = tls else {
        return serve_connection(builder, tcp, opened, peer, router, limits, closing).await;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
    let handshake = tokio::time::timeout(limits.header_read_timeout, acceptor.accept(tcp));
    tokio::select! {
        done = handshake => match done {
            Ok(Ok(stream)) => {
                serve_connection(builder, stream, opened, peer, router, limits, closing).await;
            }
            Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake not finished in time: closed"),
        },
        () = closing.shutdown.cancelled() => {}
    }
}

/// Serves one connection; its first request is due a header-read timeout after `opened`
/// (its accept, so a TLS handshake counts against the same bound).
async fn serve_connection<I>(
    builder: Builder<TokioExecutor>,
    io: I,
    opened: Instant,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    closing: Closing,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new(opened));
    let service = {
        let activity = activity.clone();
        tower::service_fn(move |mut request: http::Request<Incoming>| {
            let visit = Activity::begin(&activity);
            request.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await;
                drop(visit);
                response
            }
        })
    };
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    tokio::pin!(conn);
    // Once the connection is asked to close: when it is dropped if still open.
    let mut drop_at: Option<Instant> = None;
    loop {
        let wake = drop_at.unwrap_or_else(|| activity.deadline(&limits));
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, error = %err, "HTTP connection ended");
                }
                return;
            }
            // A request began or ended: the deadline moved.
            () = activity.changed.notified() => {}
            () = tokio::time::sleep_until(wake) => match drop_at {
                Some(_) if activity.in_flight() => drop_at = Some(Instant::now() + CLOSE_GRACE),
                Some(_) => {
                    tracing::debug!(%peer, "HTTP connection dropped: it did not close when asked");
                    return;
                }
                None => {
                    if activity.deadline(&limits) <= Instant::now() {
                        tracing::debug!(%peer, "HTTP connection idle or silent: closing");
                        conn.as_mut().graceful_shutdown();
                        drop_at = Some(Instant::now() + CLOSE_GRACE);
                    }
                }
            },
            () = closing.shutdown.cancelled(), if drop_at.is_none() => {
                conn.as_mut().graceful_shutdown();
                drop_at = Some(Instant::now() + closing.drain);
            }
        }
    }
}

/// What a connection is doing: requests in flight and since when it has been quiet.
struct Activity {
    opened: Instant,
    state: Mutex<ActivityState>,
    changed: Notify,
}

struct ActivityState {
    in_flight: usize,
    served: bool,
    quiet_since: Instant,
}

/// One request in flight; the connection is quiet again once every visit is dropped.
struct Visit(Arc<Activity>);

impl Activity {
    fn new(opened: Instant) -> Self {
        Self {
            opened,
            state: Mutex::new(ActivityState {
                in_flight: 0,
                served: false,
                quiet_since: opened,
            }),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn begin(this: &Arc<Self>) -> Visit {
        let mut state = this.state();
        state.in_flight += 1;
        state.served = true;
        this.changed.notify_one();
        Visit(this.clone())
    }

    fn in_flight(&self) -> bool {
        self.state().in_flight > 0
    }

    /// When the connection is due to close unless something happens before: its first
    /// request is late, or it has been quiet too long. With a request in flight, a time
    /// to look again.
    fn deadline(&self, limits: &ConnectionLimits) -> Instant {
        let state = self.state();
        if !state.served {
            self.opened + limits.header_read_timeout
        } else if state.in_flight > 0 {
            Instant::now() + limits.idle_timeout
        } else {
            state.quiet_since + limits.idle_timeout
        }
    }
}

impl Drop for Visit {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        state.quiet_since = Instant::now();
        self.0.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_due_when_its_first_request_is_late_or_it_is_quiet_too_long() {
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(5),
            ..ConnectionLimits::DEFAULT
        };
        let activity = Arc::new(Activity::new(Instant::now()));
        let opened = Instant::now();
        assert_eq!(activity.deadline(&limits), opened + Duration::from_secs(2));

        tokio::time::advance(Duration::from_secs(1)).await;
        let visit = Activity::begin(&activity);
        tokio::time::advance(Duration::from_secs(30)).await;
        // A long request is not idleness.
        assert!(activity.deadline(&limits) > Instant::now());
        assert!(activity.in_flight());
        drop(visit);
        let quiet = Instant::now();
        assert_eq!(activity.deadline(&limits), quiet + Duration::from_secs(5));
        assert!(!activity.in_flight());
    }
}
