//! The connections a gRPC server is handed: accepted off its listener, TLS handshakes (when
//! the listener has a certificate) run side by side so one slow client holds up no other,
//! and every connection bounded from the moment it is accepted: a TLS handshake that has
//! not finished, or an HTTP/2 preface (and the first frame header) that has not arrived,
//! within the handshake timeout closes it. After that, HTTP/2 keepalive (`serve`'s
//! settings) looks after silent peers.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::mpsc,
    task::JoinSet,
    time::{Instant, Sleep},
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::tls::ReloadingConfig;

/// The client's HTTP/2 connection preface (24 bytes) and the header of the SETTINGS frame
/// that must follow it: what a connection must have sent within the handshake timeout.
const PREFACE_BYTES: usize = 24 + 9;
/// The pause after a failed accept (e.g. out of file descriptors) before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Connections ready for the server but not yet taken by it.
const READY_QUEUE: usize = 128;

/// The stream of ready connections `serve_with_incoming` reads; dropping it stops the
/// accept loop and closes the listener.
pub(super) fn incoming(
    listener: TcpListener,
    tls: Option<Arc<ReloadingConfig>>,
    handshake_timeout: Duration,
) -> ReceiverStream<io::Result<Conn>> {
    let (ready, stream) = mpsc::channel(READY_QUEUE);
    tokio::spawn(accept_loop(listener, tls, handshake_timeout, ready));
    ReceiverStream::new(stream)
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<Arc<ReloadingConfig>>,
    handshake_timeout: Duration,
    ready: mpsc::Sender<io::Result<Conn>>,
) {
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            () = ready.closed() => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let deadline = Instant::now() + handshake_timeout;
                    // Answers go out at once rather than waiting on the peer's delayed ACK.
                    if let Err(err) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %err, "TCP_NODELAY not set");
                    }
                    let info = TcpConnectInfo {
                        local_addr: tcp.local_addr().ok(),
                        remote_addr: tcp.peer_addr().ok(),
                    };
                    match &tls {
                        None => {
                            let conn = Conn::new(Io::Plain(tcp), info, deadline);
                            if ready.send(Ok(conn)).await.is_err() {
                                return;
                            }
                        }
                        Some(tls) => {
                            handshakes.spawn(handshake(tls.clone(), tcp, info, deadline, ready.clone()));
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "gRPC listener: accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
        }
    }
}

async fn handshake(
    tls: Arc<ReloadingConfig>,
    tcp: TcpStream,
    info: TcpConnectInfo,
    deadline: Instant,
    ready: mpsc::Sender<io::Result<Conn>>,
) {
    let acceptor = TlsAcceptor::from(tls.current());
    match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => {
            let conn = Conn::new(Io::Tls(Box::new(stream)), info, deadline);
            let _ = ready.send(Ok(conn)).await;
        }
        Ok(Err(err)) => {
            tracing::debug!(peer = ?info.remote_addr, error = %err, "TLS handshake failed");
        }
        Err(_) => {
            tracing::debug!(peer = ?info.remote_addr, "TLS handshake not finished in time: closed");
        }
    }
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// One accepted connection, plaintext or TLS, closed with a `TimedOut` read error if its
/// HTTP/2 preface is late.
pub(super) struct Conn {
    io: Io,
    info: TcpConnectInfo,
    /// Bytes of the preface still to come; the deadline is dropped once they are in.
    awaiting: usize,
    preface_deadline: Option<Pin<Box<Sleep>>>,
}

impl Conn {
    fn new(io: Io, info: TcpConnectInfo, deadline: Instant) -> Self {
        Self {
            io,
            info,
            awaiting: PREFACE_BYTES,
            preface_deadline: Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    }
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = match &mut this.io {
            Io::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        };
        match polled {
            Poll::Ready(Ok(())) => {
                if this.preface_deadline.is_some() {
                    let read = buf.filled().len() - before;
                    this.awaiting = this.awaiting.saturating_sub(read);
                    if this.awaiting == 0 || read == 0 {
                        this.preface_deadline = None;
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let late = this
                    .preface_deadline
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if late {
                    tracing::debug!(peer = ?this.info.remote_addr, "HTTP/2 preface not received in time: closed");
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "HTTP/2 preface not received within the handshake timeout",
                    )));
                }
                Poll::Pending
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(stream) => Pin::new(stream).poll_write(cx, data),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, data),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, data),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, data),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(stream) => stream.is_write_vectored(),
            Io::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}
