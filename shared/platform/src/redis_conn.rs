//! Connections to Redis that survive a Redis restart: a `ConnectionManager` reconnects on
//! its own, and bounded timeouts make a dead Redis an error instead of a hang.
//!
//! [`RedisTarget`] says whether Redis is one server (`REDIS_URL`) or a Redis Cluster
//! (`REDIS_CLUSTER_NODES`), and [`open`] gives a [`RedisConn`] for either, so the deadline
//! queue, the event bus and the rate limiter are written once for both. On a cluster each
//! command goes to the master of its key's slot; a pipeline or script must keep its keys
//! in one slot (hash tags, `{…}`).
//!
//! `rediss://` URLs connect over TLS (rustls), the server's certificate checked against
//! [`RedisTls`]: a private CA (`REDIS_CA_FILE`) or the system's trust store.

use std::time::Duration;

use redis::{
    ClientTlsConfig, TlsCertificates, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClientBuilder,
    cluster_async::ClusterConnection,
};

use crate::{
    config::{ConfigError, Env},
    tls,
};

/// How `rediss://` servers are checked: against the CA in `REDIS_CA_FILE` when set (then
/// only that CA is trusted), else the system's trust store; with a client certificate
/// (`REDIS_CLIENT_CERT_FILE`, `REDIS_CLIENT_KEY_FILE`) for a Redis that asks for one
/// (`tls-auth-clients yes`). Plain `redis://` URLs ignore it. The files are read at start.
#[derive(Debug, Clone, Default)]
pub struct RedisTls {
    certificates: Option<TlsCertificates>,
}

impl RedisTls {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let files = tls::ClientTlsFiles::from_env(
            env,
            "REDIS_CA_FILE",
            "REDIS_CLIENT_CERT_FILE",
            "REDIS_CLIENT_KEY_FILE",
        )?;
        let root_cert = files.ca_pem;
        let client_tls = files
            .identity_pem
            .map(|(client_cert, client_key)| ClientTlsConfig {
                client_cert,
                client_key,
            });
        Ok(Self {
            certificates: (root_cert.is_some() || client_tls.is_some()).then_some(
                TlsCertificates {
                    client_tls,
                    root_cert,
                },
            ),
        })
    }

    /// Trusting `ca_pem` only.
    pub fn with_ca(ca_pem: impl Into<Vec<u8>>) -> Self {
        Self {
            certificates: Some(TlsCertificates {
                client_tls: None,
                root_cert: Some(ca_pem.into()),
            }),
        }
    }

    /// The certificates to use for `url`: none for plaintext `redis://`.
    fn for_url(&self, url: &str) -> Option<TlsCertificates> {
        self.certificates
            .clone()
            .filter(|_| url.starts_with("rediss://"))
    }
}

/// A client for `url`, over TLS checked by `tls` when it is `rediss://`.
fn client(url: &str, tls: &RedisTls) -> redis::RedisResult<redis::Client> {
    // The Redis client builds its rustls configuration on the process default provider.
    tls::install_default_provider();
    match tls.for_url(url) {
        Some(certificates) => redis::Client::build_with_tls(url, certificates),
        None => redis::Client::open(url),
    }
}

/// Opens a self-reconnecting connection. `response_timeout` must exceed any blocking read
/// (XREADGROUP BLOCK) made on it.
pub async fn connect(
    url: &str,
    tls: &RedisTls,
    response_timeout: Duration,
) -> redis::RedisResult<ConnectionManager> {
    let client = client(url, tls)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_with_config(client, config).await
}

/// The usual timeout for short commands.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

/// Where Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server: `REDIS_URL`.
    Single(String),
    /// Some nodes of a Redis Cluster (`REDIS_CLUSTER_NODES`); the client learns the rest
    /// and follows slot moves and failovers.
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// `REDIS_CLUSTER_NODES` (comma-separated `redis://host:port` URLs) when set, else
    /// `REDIS_URL`; `None` when neither is set (in-process queue and bus).
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(list) = env.raw("REDIS_CLUSTER_NODES") else {
            return Ok(env.raw("REDIS_URL").map(RedisTarget::Single));
        };
        let invalid =
            |reason: &str| ConfigError::new("REDIS_CLUSTER_NODES", &redacted(&list), reason);
        let nodes: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|node| !node.is_empty())
            .map(str::to_owned)
            .collect();
        if nodes.is_empty() {
            return Err(invalid(
                "must list at least one node, e.g. redis://10.0.0.1:6379",
            ));
        }
        for node in &nodes {
            if !(node.starts_with("redis://") || node.starts_with("rediss://")) {
                return Err(invalid("every node must be a redis:// or rediss:// URL"));
            }
            redis::IntoConnectionInfo::into_connection_info(node.as_str())
                .map_err(|err| invalid(&format!("{}: {err}", redacted(node))))?;
        }
        if env.raw("REDIS_URL").is_some() {
            tracing::info!("REDIS_CLUSTER_NODES is set: REDIS_URL is not used");
        }
        Ok(Some(RedisTarget::Cluster(nodes)))
    }

    /// The variable and its value, passwords hidden: for messages.
    pub fn describe(&self) -> String {
        match self {
            RedisTarget::Single(url) => format!("REDIS_URL={}", redacted(url)),
            RedisTarget::Cluster(nodes) => format!(
                "REDIS_CLUSTER_NODES={}",
                nodes
                    .iter()
                    .map(|n| redacted(n))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }
}

/// `REDIS_KEY_PREFIX` (default `aftersales:`), prepended to every Redis key. Braces are
/// refused: on a Redis Cluster a key's slot comes from its first `{…}`, and the layout
/// relies on the prefix having none (a shard's sorted sets and marker share the shard's
/// tag, a stream's marker is `{<stream key>}:intact`); a brace in the prefix would put a
/// stream and its marker, or a shard's keys, in different slots.
pub fn key_prefix(env: &Env) -> Result<String, ConfigError> {
    const NAME: &str = "REDIS_KEY_PREFIX";
    let prefix = env.raw(NAME).unwrap_or_else(|| "aftersales:".into());
    if prefix.contains(['{', '}']) {
        return Err(ConfigError::new(
            NAME,
            &prefix,
            "must not contain { or }: Redis Cluster hash tags in the prefix would split \
             a stream from its loss marker and a deadline shard across slots",
        ));
    }
    Ok(prefix)
}

/// A URL with its user-info (password) replaced by `***`.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// A connection to one Redis or to a Redis Cluster. Cheap to clone; clones share the
/// underlying connections.
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RedisConn::Single(_) => "RedisConn::Single",
            RedisConn::Cluster(_) => "RedisConn::Cluster",
        })
    }
}

impl From<ConnectionManager> for RedisConn {
    fn from(conn: ConnectionManager) -> Self {
        RedisConn::Single(conn)
    }
}

impl From<ClusterConnection> for RedisConn {
    fn from(conn: ClusterConnection) -> Self {
        RedisConn::Cluster(conn)
    }
}

impl RedisConn {
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisConn::Cluster(_))
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(conn) => conn.req_packed_command(cmd),
            RedisConn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(conn) => conn.get_db(),
            RedisConn::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Connects to `target`. `response_timeout` bounds each command as in [`connect`]; on a
/// cluster a command may take up to three times as long when it follows a slot move or
/// waits out a failover. A `REDIS_URL` that names a cluster node is refused: every
/// command on another node's slot would fail with MOVED.
pub async fn open(
    target: &RedisTarget,
    tls: &RedisTls,
    response_timeout: Duration,
) -> redis::RedisResult<RedisConn> {
    match target {
        RedisTarget::Single(url) => {
            let mut conn = connect(url, tls, response_timeout).await?;
            let info: String = redis::cmd("INFO")
                .arg("cluster")
                .query_async(&mut conn)
                .await?;
            if info.lines().any(|line| line.trim() == "cluster_enabled:1") {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    "REDIS_URL names a Redis Cluster node",
                    "list the cluster's nodes in REDIS_CLUSTER_NODES instead".to_owned(),
                )));
            }
            Ok(RedisConn::Single(conn))
        }
        RedisTarget::Cluster(nodes) => {
            tls::install_default_provider();
            let mut builder = ClusterClientBuilder::new(nodes.iter().map(String::as_str));
            if let Some(certificates) = nodes.first().and_then(|node| tls.for_url(node)) {
                builder = builder.certs(certificates);
            }
            let client = builder
                .connection_timeout(Duration::from_secs(2))
                .response_timeout(response_timeout)
                .overall_response_timeout(Some(response_timeout * 3))
                .retries(6)
                .min_retry_wait(50)
                .max_retry_wait(1_000)
                .build()?;
            Ok(RedisConn::Cluster(client.get_async_connection().await?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_prefix_with_braces_is_refused_by_name() {
        let prefix = |value: &str| key_prefix(&Env::from_pairs([("REDIS_KEY_PREFIX", value)]));
        assert_eq!(
            key_prefix(&Env::from_pairs::<&str, &str>([])).unwrap(),
            "aftersales:"
        );
        assert_eq!(prefix("prod:").unwrap(), "prod:");
        for bad in ["{prod}:", "prod}:", "pr{od:"] {
            let err = prefix(bad).unwrap_err();
            assert_eq!(err.name, "REDIS_KEY_PREFIX");
            assert!(err.to_string().contains("REDIS_KEY_PREFIX"), "{err}");
            assert!(err.reason.contains("{ or }"), "{err}");
        }
    }

    #[test]
    fn cluster_nodes_win_over_the_url_and_are_checked() {
        let env = Env::from_pairs([
            ("REDIS_URL", "redis://one:6379"),
            (
                "REDIS_CLUSTER_NODES",
                " redis://a:7001, redis://:secret@b:7002 ,",
            ),
        ]);
        let target = RedisTarget::from_env(&env).unwrap().unwrap();
        assert_eq!(
            target,
            RedisTarget::Cluster(vec![
                "redis://a:7001".into(),
                "redis://:secret@b:7002".into()
            ])
        );
        assert_eq!(
            target.describe(),
            "REDIS_CLUSTER_NODES=redis://a:7001,redis://***@b:7002"
        );
        let env = Env::from_pairs([("REDIS_URL", "redis://one:6379")]);
        assert_eq!(
            RedisTarget::from_env(&env).unwrap(),
            Some(RedisTarget::Single("redis://one:6379".into()))
        );
        assert_eq!(
            RedisTarget::from_env(&Env::from_pairs::<&str, &str>([])).unwrap(),
            None
        );
        for bad in [",", "a:7001", "redis://a:7001,http://b"] {
            let env = Env::from_pairs([("REDIS_CLUSTER_NODES", bad)]);
            let err = RedisTarget::from_env(&env).unwrap_err();
            assert_eq!(err.name, "REDIS_CLUSTER_NODES");
        }
    }
}
