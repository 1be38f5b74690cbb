//! A TCP link between one process and its database that a test can hold and cut: held,
//! it stops passing bytes either way (the process's queries and commits hang, as with a
//! stalled network), and cut, it closes every connection (as the kernel does for a
//! process killed with SIGKILL, so the database rolls back what it had open).
//!
//! Replica tests put it in front of the replica they will kill, hold it, wait until the
//! replica has claimed deadlines and taken deliveries it can no longer finish, then kill
//! it and cut: the replica dies holding work, every time, not only when the kill happens
//! to land inside a claim.

#![allow(dead_code)]

use std::net::SocketAddr;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::watch,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Held,
    Cut,
}

/// A link listening on a port of its own on loopback, forwarding to `upstream`.
pub struct DbLink {
    port: u16,
    state: watch::Sender<State>,
}

impl DbLink {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the link");
        let port = listener.local_addr().expect("an address").port();
        let (state, _) = watch::channel(State::Open);
        let watcher = state.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pump(client_read, server_write, watcher.subscribe()));
                tokio::spawn(pump(server_read, client_write, watcher.subscribe()));
            }
        });
        Self { port, state }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Passes bytes again, the held ones first.
    pub fn open(&self) {
        self.state.send_replace(State::Open);
    }

    /// Stops passing bytes; connections stay open.
    pub fn hold(&self) {
        self.state.send_replace(State::Held);
    }

    /// Closes every connection, now and from now on.
    pub fn cut(&self) {
        self.state.send_replace(State::Cut);
    }
}

/// `url` (`postgres://user@host:port/db`) with its host and port replaced by the link's.
pub fn through(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let user = authority.rsplit_once('@').map(|(user, _)| user);
    match user {
        Some(user) => format!("{scheme}://{user}@127.0.0.1:{port}/{path}"),
        None => format!("{scheme}://127.0.0.1:{port}/{path}"),
    }
}

/// The `host:port` a `postgres://` URL names.
pub fn upstream_of(url: &str) -> SocketAddr {
    let rest = url.split_once("://").expect("a URL with a scheme").1;
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    let host_port = host_port.replace("localhost", "127.0.0.1");
    host_port.parse().expect("an IP address and port")
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut state: watch::Receiver<State>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buf) => read,
            () = until(&mut state, State::Cut) => return,
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Held: the bytes wait here until the link opens again or is cut.
        loop {
            let now = *state.borrow_and_update();
            match now {
                State::Open => break,
                State::Cut => return,
                State::Held => {
                    if state.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn until(state: &mut watch::Receiver<State>, wanted: State) {
    if state.wait_for(|s| *s == wanted).await.is_err() {
        std::future::pending::<()>().await;
    }
}
