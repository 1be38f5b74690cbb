//! Starting the real binary with some of the suite's services, the way every binary test
//! needs them: each service on a database of its own (a fresh PostgreSQL database, or an
//! SQLite file as `make run` uses), Redis under a prefix of the test's own (or the
//! in-process queue and bus), the encryption keys the services require, a free port per
//! service (care pointed at the suite's tickets), no metrics listener and no health grace
//! on shutdown. A test then adds only
//! the settings its story is about.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use tonic::transport::Channel;

use super::{KillOnDrop, connect, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_aftersales");
/// 32 bytes in base64: the encryption and search key of every binary test.
pub const TEST_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// What stores the services' data.
#[derive(Debug, Clone)]
pub enum Backends {
    /// A fresh PostgreSQL database per service and the test Redis under a fresh prefix.
    PostgresAndRedis,
    /// `make run`'s: an SQLite file per service in this folder, the in-process queue and
    /// bus.
    Embedded(PathBuf),
}

/// The command line being built: `aftersales serve <services…>` and its environment.
pub struct Launch {
    command: Command,
    ports: Vec<(&'static str, u16)>,
    databases: Vec<(&'static str, String)>,
    redis_prefix: Option<String>,
}

/// The settings each service requires beyond its database: its keys.
fn keys_of(service: &str) -> &'static [(&'static str, &'static str)] {
    match service {
        "care" => &[("CARE_ENCRYPTION_KEYS", "k1:"), ("CARE_SEARCH_KEY", "")],
        "dispatch" => &[("DISPATCH_ENCRYPTION_KEYS", "k1:")],
        "webhooks" => &[("WEBHOOKS_ENCRYPTION_KEYS", "k1:")],
        _ => &[],
    }
}

impl Launch {
    /// `services` on fresh PostgreSQL databases and the test Redis.
    pub async fn postgres(services: &[&'static str]) -> Self {
        Self::on(services, &Backends::PostgresAndRedis).await
    }

    /// `services` on `backends`.
    pub async fn on(services: &[&'static str], backends: &Backends) -> Self {
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .args(services)
            .env("AUTH_MODE", "disabled")
            .env_remove("DATABASE_URL")
            .env("METRICS_ADDR", "off")
            .env("SHUTDOWN_HEALTH_GRACE_MS", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let mut ports = Vec::new();
        let mut databases = Vec::new();
        for &service in services {
            let port = free_port();
            command.env(addr_setting(service), format!("127.0.0.1:{port}"));
            ports.push((service, port));
            for (name, prefix) in keys_of(service) {
                command.env(name, format!("{prefix}{TEST_KEY}"));
            }
            let url = match backends {
                Backends::PostgresAndRedis => aftersales_testkit::fresh_postgres_url()
                    .await
                    .expect("a fresh PostgreSQL database"),
                Backends::Embedded(dir) => sqlite_url(dir, service),
            };
            databases.push((service, url));
        }
        // The suite's services find each other: care reopens tickets on this tickets.
        if let (Some((_, tickets)), true) = (
            ports.iter().find(|(s, _)| *s == "tickets"),
            services.contains(&"care"),
        ) {
            command.env("CARE_TICKETS_URL", format!("http://127.0.0.1:{tickets}"));
        }
        let redis_prefix = match backends {
            Backends::PostgresAndRedis => {
                let prefix = aftersales_testkit::unique_prefix();
                command
                    .env("REDIS_URL", aftersales_testkit::redis_url())
                    .env("REDIS_KEY_PREFIX", &prefix);
                Some(prefix)
            }
            Backends::Embedded(dir) => {
                std::fs::create_dir_all(dir).expect("the data folder can be made");
                command.env_remove("REDIS_URL");
                None
            }
        };
        Self {
            command,
            ports,
            databases,
            redis_prefix,
        }
    }

    /// One more setting (or another value for one set already).
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Sends the process's output (stdout and stderr) to the file at `path`.
    pub fn log_to(mut self, path: &Path) -> Self {
        let file = std::fs::File::create(path).expect("the log file can be made");
        let copy = file.try_clone().expect("the log file can be shared");
        self.command
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(copy));
        self
    }

    /// Keys Redis under `prefix` (another replica's, for example) instead of a fresh one.
    pub fn redis_prefix(mut self, prefix: &str) -> Self {
        if self.redis_prefix.is_some() {
            self.command.env("REDIS_KEY_PREFIX", prefix);
            self.redis_prefix = Some(prefix.to_owned());
        }
        self
    }

    /// Puts `service` on the database at `url` instead of its fresh one (another replica's,
    /// for example).
    pub fn database(mut self, service: &str, url: &str) -> Self {
        for (name, current) in &mut self.databases {
            if *name == service {
                *current = url.to_owned();
            }
        }
        self
    }

    /// Starts the binary.
    pub fn spawn(mut self) -> Suite {
        for (service, url) in &self.databases {
            self.command.env(database_setting(service), url);
        }
        Suite {
            child: KillOnDrop(self.command.spawn().expect("the binary starts")),
            launch: self,
        }
    }
}

/// The running binary and where its services listen.
pub struct Suite {
    pub child: KillOnDrop,
    launch: Launch,
}

impl Suite {
    /// The gRPC port of `service`.
    pub fn port(&self, service: &str) -> u16 {
        lookup(&self.launch.ports, service)
    }

    /// `http://127.0.0.1:<port>` of `service`.
    pub fn url(&self, service: &str) -> String {
        format!("http://127.0.0.1:{}", self.port(service))
    }

    /// The database `service` runs on.
    pub fn database_url(&self, service: &str) -> String {
        lookup(&self.launch.databases, service)
    }

    /// The prefix of the suite's Redis keys; `None` on the embedded backends.
    pub fn redis_prefix(&self) -> Option<&str> {
        self.launch.redis_prefix.as_deref()
    }

    /// Kills the process (SIGKILL: whatever it had in flight is cut off) and starts it
    /// again on the same ports, databases and Redis keys.
    pub fn kill_and_start_again(&mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
        self.child = KillOnDrop(self.launch.command.spawn().expect("the binary starts"));
    }

    /// A channel to `service`, once it answers.
    pub async fn channel(&mut self, service: &str) -> Channel {
        let url = self.url(service);
        connect(url, &mut self.child).await
    }
}

fn lookup<T: Clone>(entries: &[(&'static str, T)], service: &str) -> T {
    entries
        .iter()
        .find(|(name, _)| *name == service)
        .map(|(_, value)| value.clone())
        .unwrap_or_else(|| panic!("{service} is not served by this suite"))
}

fn addr_setting(service: &str) -> String {
    format!("{}_GRPC_ADDR", service.to_uppercase())
}

fn database_setting(service: &str) -> String {
    format!("{}_DATABASE_URL", service.to_uppercase())
}

/// The SQLite file of `service` in `dir`, created on first use.
pub fn sqlite_url(dir: &Path, service: &str) -> String {
    format!("sqlite://{}/{service}.db?mode=rwc", dir.display())
}

/// A folder of the test's own for SQLite files, removed when the test ends.
pub struct DataDir(PathBuf);

impl DataDir {
    pub fn new(name: &str) -> Self {
        Self(std::env::temp_dir().join(format!(
            "aftersales-{name}-{}-{}",
            std::process::id(),
            free_port()
        )))
    }

    /// The embedded backends, their files in this folder.
    pub fn backends(&self) -> Backends {
        Backends::Embedded(self.0.clone())
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
