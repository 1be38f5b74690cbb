//! Test support for integration tests against real PostgreSQL and Redis: a fresh database
//! per test, a unique Redis key prefix per test, and clear messages when a backend is down.
//! `make test` runs `tests/setup/backends.sh` first, which installs and starts both.
//! Modules start other real peers: an OpenID provider (`oidc`) and a Standard Webhooks
//! receiver (`webhook_receiver`).

pub mod oidc;
pub mod tls;
pub mod webhook_receiver;

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database};

/// The PostgreSQL server used to create test databases (`TEST_POSTGRES_URL`).
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The Redis server tests use (`TEST_REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A database of its own for one test, on the test PostgreSQL server. Names start with
/// `aftersales_test_`, so the set-up script can drop what earlier runs left.
pub async fn fresh_postgres_url() -> anyhow::Result<String> {
    let admin_url = postgres_admin_url();
    let admin = Database::connect(&admin_url).await.with_context(|| {
        format!("PostgreSQL at {admin_url} is not reachable: run tests/setup/backends.sh (make test does)")
    })?;
    let name = format!("aftersales_test_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .context("creating a test database")?;
    admin.close().await.ok();
    let base = admin_url
        .rsplit_once('/')
        .map(|(base, _)| base)
        .unwrap_or(&admin_url);
    Ok(format!("{base}/{name}"))
}

/// An SQLite database file of its own for one test, under the system temp directory.
pub fn fresh_sqlite_url() -> String {
    let path = std::env::temp_dir().join(format!(
        "aftersales-test-{}.db",
        uuid::Uuid::new_v4().simple()
    ));
    format!("sqlite://{}?mode=rwc", path.display())
}

/// A Redis key prefix of its own for one test, so tests share one server safely.
pub fn unique_prefix() -> String {
    format!("test-{}:", uuid::Uuid::new_v4().simple())
}

/// A connection manager to the test Redis, failing with a hint when it is down.
pub async fn redis_connection() -> anyhow::Result<redis::aio::ConnectionManager> {
    let url = redis_url();
    let client = redis::Client::open(url.as_str())?;
    // Generous timeouts: tests share two cores with builds and each other, and the
    // default half-second response timeout turns a busy moment into a failed test.
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(std::time::Duration::from_secs(5)))
        .set_response_timeout(Some(std::time::Duration::from_secs(5)))
        .set_number_of_retries(3);
    redis::aio::ConnectionManager::new_with_config(client, config)
        .await
        .with_context(|| {
            format!("Redis at {url} is not reachable: run tests/setup/backends.sh (make test does)")
        })
}

/// The test Redis Cluster's nodes as `REDIS_CLUSTER_NODES` takes them
/// (`TEST_REDIS_CLUSTER_NODES`; `tests/setup/redis-cluster.sh` starts one on 7001-7006).
pub fn redis_cluster_nodes() -> String {
    std::env::var("TEST_REDIS_CLUSTER_NODES").unwrap_or_else(|_| {
        (7001..=7006)
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// A connection to the test Redis Cluster, failing with a hint when it is down.
pub async fn redis_cluster_connection() -> anyhow::Result<redis::cluster_async::ClusterConnection> {
    let nodes = redis_cluster_nodes();
    let client = redis::cluster::ClusterClientBuilder::new(nodes.split(','))
        .connection_timeout(std::time::Duration::from_secs(5))
        .response_timeout(std::time::Duration::from_secs(5))
        .build()?;
    client.get_async_connection().await.with_context(|| {
        format!("Redis Cluster at {nodes} is not reachable: run tests/setup/backends.sh (make test does)")
    })
}

/// One plain connection to each master of the test Redis Cluster (from `CLUSTER NODES`),
/// with its address: for tests that check where keys live.
pub async fn redis_cluster_masters()
-> anyhow::Result<Vec<(String, redis::aio::MultiplexedConnection)>> {
    let mut masters = Vec::new();
    for node in redis_cluster_topology().await? {
        if node.master_of.is_none() {
            masters.push((node.addr.clone(), node_connection(&node.addr).await?));
        }
    }
    Ok(masters)
}

/// A live node of the test cluster, as `CLUSTER NODES` lists it.
#[derive(Debug, Clone)]
pub struct ClusterNode {
    pub id: String,
    /// `host:port`
    pub addr: String,
    /// The master's id when this node is a replica.
    pub master_of: Option<String>,
    /// Slot ranges served (masters only), inclusive.
    pub slots: Vec<(u16, u16)>,
}

async fn node_connection(addr: &str) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    Ok(redis::Client::open(format!("redis://{addr}"))?
        .get_multiplexed_async_connection()
        .await?)
}

/// Every live node of the test cluster.
pub async fn redis_cluster_topology() -> anyhow::Result<Vec<ClusterNode>> {
    let nodes = redis_cluster_nodes();
    let mut last_err = anyhow::anyhow!("TEST_REDIS_CLUSTER_NODES is empty");
    for seed in nodes.split(',') {
        let listing: redis::RedisResult<String> = async {
            let mut conn = redis::Client::open(seed)?
                .get_multiplexed_async_connection()
                .await?;
            redis::cmd("CLUSTER")
                .arg("NODES")
                .query_async(&mut conn)
                .await
        }
        .await;
        match listing {
            Ok(listing) => return Ok(listing.lines().filter_map(parse_node).collect()),
            Err(err) => last_err = err.into(),
        }
    }
    Err(last_err.context(format!("Redis Cluster at {nodes} is not reachable")))
}

fn parse_node(line: &str) -> Option<ClusterNode> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let flags = fields.get(2)?;
    if flags.contains("fail") || flags.contains("noaddr") {
        return None;
    }
    let slots = fields
        .iter()
        .skip(8)
        .filter(|range| !range.starts_with('['))
        .filter_map(|range| {
            let (from, to) = range.split_once('-').unwrap_or((range, range));
            Some((from.parse().ok()?, to.parse().ok()?))
        })
        .collect();
    Some(ClusterNode {
        id: fields.first()?.to_string(),
        addr: fields.get(1)?.split('@').next()?.to_owned(),
        master_of: flags
            .contains("slave")
            .then(|| fields.get(3).map(|m| m.to_string()))
            .flatten(),
        slots,
    })
}

/// Promotes a replica of the master that serves `slot` with `CLUSTER FAILOVER` (the
/// graceful switch: the master pauses writers until the replica has caught up) and waits
/// until the replica serves the slot and the cluster is ok again. Returns the new
/// master's address.
pub async fn redis_cluster_failover(slot: u16) -> anyhow::Result<String> {
    let topology = redis_cluster_topology().await?;
    let master = topology
        .iter()
        .find(|n| {
            n.slots
                .iter()
                .any(|(from, to)| (*from..=*to).contains(&slot))
        })
        .context("no master serves the slot")?;
    let replica = topology
        .iter()
        .find(|n| n.master_of.as_deref() == Some(master.id.as_str()))
        .context("the master has no replica")?;
    let mut conn = node_connection(&replica.addr).await?;
    redis::cmd("CLUSTER")
        .arg("FAILOVER")
        .query_async::<()>(&mut conn)
        .await?;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut conn).await?;
        let info: String = redis::cmd("CLUSTER")
            .arg("INFO")
            .query_async(&mut conn)
            .await?;
        if matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master")
            && info.contains("cluster_state:ok")
        {
            return Ok(replica.addr.clone());
        }
    }
    anyhow::bail!("{} did not take over from {}", replica.addr, master.addr)
}

/// Held by a test that takes a node of the test cluster down: only one such test runs at
/// a time, across test binaries and processes (`cargo test` runs binaries one after
/// another, nextest and hand-started runs may not). Released on drop.
pub struct ClusterFaultLock(#[allow(dead_code)] std::fs::File);

/// Waits (blocking the thread, at most `wait`) for [`ClusterFaultLock`].
pub fn redis_cluster_fault_lock(wait: std::time::Duration) -> anyhow::Result<ClusterFaultLock> {
    let path = std::env::temp_dir().join("aftersales-redis-cluster-fault.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let until = std::time::Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(ClusterFaultLock(file)),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < until => {
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Err(err) => {
                return Err(anyhow::anyhow!("{err}"))
                    .with_context(|| format!("locking {}", path.display()));
            }
        }
    }
}

/// A master of the test cluster killed by [`redis_cluster_kill_master`].
#[derive(Debug, Clone)]
pub struct KilledMaster {
    /// The dead master, `host:port`.
    pub addr: String,
    /// The replica that took its slots over.
    pub promoted: String,
}

/// Kills (`SIGKILL`, no goodbye to its replica or clients) the master that serves `slot`,
/// then waits until its replica has been promoted by the cluster on its own (after
/// `cluster-node-timeout`, 2 s in `tests/setup/redis-cluster.sh`) and serves the slot.
/// Hold a [`ClusterFaultLock`], and call [`redis_cluster_restore`] afterwards.
pub async fn redis_cluster_kill_master(slot: u16) -> anyhow::Result<KilledMaster> {
    let topology = redis_cluster_topology().await?;
    let master = topology
        .iter()
        .find(|n| {
            n.slots
                .iter()
                .any(|(from, to)| (*from..=*to).contains(&slot))
        })
        .context("no master serves the slot")?;
    let replica = topology
        .iter()
        .find(|n| n.master_of.as_deref() == Some(master.id.as_str()))
        .with_context(|| format!("{} has no replica to promote", master.addr))?;
    let mut conn = node_connection(&master.addr).await?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await?;
    let pid = info
        .lines()
        .find_map(|line| line.trim().strip_prefix("process_id:"))
        .context("INFO server has no process_id")?
        .to_owned();
    let status = tokio::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .await?;
    anyhow::ensure!(
        status.success(),
        "kill -KILL {pid} ({}) failed",
        master.addr
    );
    let mut replica_conn = node_connection(&replica.addr).await?;
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(30) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut replica_conn).await?;
        let info: String = redis::cmd("CLUSTER")
            .arg("INFO")
            .query_async(&mut replica_conn)
            .await?;
        if matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master")
            && info.contains("cluster_state:ok")
        {
            return Ok(KilledMaster {
                addr: master.addr.clone(),
                promoted: replica.addr.clone(),
            });
        }
    }
    anyhow::bail!(
        "{} was not promoted within 30 s of killing {}",
        replica.addr,
        master.addr
    )
}

/// Brings the test cluster back to three masters with a replica each: starts nodes that
/// are down with `tests/setup/redis-cluster.sh` (a killed master rejoins as a replica of
/// the node that took its slots) and waits until every node agrees.
pub async fn redis_cluster_restore() -> anyhow::Result<()> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/setup/redis-cluster.sh"
    );
    let output = tokio::process::Command::new("bash")
        .arg(script)
        .output()
        .await
        .with_context(|| format!("running {script}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{script} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let started = std::time::Instant::now();
    loop {
        let topology = redis_cluster_topology().await?;
        let masters: Vec<&ClusterNode> =
            topology.iter().filter(|n| n.master_of.is_none()).collect();
        let paired = masters.iter().all(|m| {
            !m.slots.is_empty()
                && topology
                    .iter()
                    .any(|n| n.master_of.as_deref() == Some(m.id.as_str()))
        });
        if topology.len() == 6 && masters.len() == 3 && paired && replicas_in_sync(&topology).await
        {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the test cluster did not come back to three masters with a replica each: {topology:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// True when every replica in `topology` has its link to its master up (a rejoined node
/// has finished its first full sync).
async fn replicas_in_sync(topology: &[ClusterNode]) -> bool {
    for replica in topology.iter().filter(|n| n.master_of.is_some()) {
        let info: redis::RedisResult<String> = async {
            let mut conn = node_connection(&replica.addr)
                .await
                .map_err(|e| redis::RedisError::from(std::io::Error::other(e.to_string())))?;
            redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut conn)
                .await
        }
        .await;
        if !info.is_ok_and(|info| info.contains("master_link_status:up")) {
            return false;
        }
    }
    true
}

/// Which database a service test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub async fn fresh_url(self) -> anyhow::Result<String> {
        match self {
            Backend::Postgres => fresh_postgres_url().await,
            Backend::Sqlite => Ok(fresh_sqlite_url()),
        }
    }
}
