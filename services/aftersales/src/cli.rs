//! The command line: what a newcomer and an operator type.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "aftersales", version, about = "The aftersales service suite")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the whole suite in one process on fixed local ports, with SQLite files and the
    /// in-process queue and bus: nothing else to install.
    Dev {
        /// Where the SQLite files live.
        #[arg(long, env = "AFTERSALES_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
    },
    /// Runs the named services against DATABASE_URL and REDIS_URL or REDIS_CLUSTER_NODES
    /// (production).
    Serve {
        #[arg(required = true, value_enum)]
        services: Vec<ServiceName>,
    },
    /// Applies the database migrations of the named services (all when none is named).
    Migrate {
        #[arg(value_enum)]
        services: Vec<ServiceName>,
    },
    /// Operations: deadline queues, event replay, partner keys, configuration checks.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Applies migrations, as `aftersales migrate`.
    Migrate {
        #[arg(value_enum)]
        services: Vec<ServiceName>,
    },
    /// A service's deadline queue on Redis (REDIS_URL or REDIS_CLUSTER_NODES).
    Sla {
        #[command(subcommand)]
        action: SlaAction,
    },
    /// Events in a service's outbox.
    Events {
        #[command(subcommand)]
        action: EventsAction,
    },
    /// Partner API keys, through the dispatch service's PartnerKeyService.
    Keys {
        /// Where dispatch answers (inside its pod: localhost).
        #[arg(
            long,
            env = "AFTERSALES_DISPATCH_URL",
            default_value = "http://127.0.0.1:50053"
        )]
        dispatch_url: String,
        /// A bearer token with the role `admin` (`admin token --roles admin` under `dev`);
        /// the operator recorded is its subject.
        #[arg(long, env = "AFTERSALES_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Mints a token from the development issuer of `aftersales dev` (its key file in the
    /// data directory), for grpcurl and tools: `admin token --roles agent,pii:read`.
    Token {
        /// Comma-separated roles, e.g. `agent,pii:read`.
        #[arg(long, value_delimiter = ',', required = true)]
        roles: Vec<String>,
        /// Who the token names (`sub`).
        #[arg(long, default_value = "dev-user")]
        subject: String,
        #[arg(long, default_value_t = 3_600)]
        ttl_secs: u64,
        /// The data directory `aftersales dev` runs with.
        #[arg(long, env = "AFTERSALES_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
    },
    /// Reads a service's configuration from the environment and connects to its database
    /// (and Redis when REDIS_URL or REDIS_CLUSTER_NODES is set); fails naming the first bad
    /// variable.
    CheckConfig {
        #[arg(value_enum)]
        service: ServiceName,
    },
}

#[derive(Debug, Subcommand)]
pub enum SlaAction {
    /// Deadlines scheduled and in flight.
    Stats {
        #[arg(long, value_enum)]
        service: ServiceName,
    },
    /// Makes the running workers rebuild the schedule from the database within a second.
    Rebuild {
        #[arg(long, value_enum)]
        service: ServiceName,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsAction {
    /// Puts a dead-lettered event back on its stream (tickets, care), or publishes one of
    /// the service's own outbox events again; groups that applied it skip it.
    Replay {
        #[arg(long, value_enum)]
        service: ServiceName,
        #[arg(long)]
        event_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Issues a key; the clear key is printed once.
    Issue {
        #[arg(long)]
        partner: String,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Issues a new key; the old one stays valid for the overlap, then expires.
    Rotate {
        key_id: String,
        #[arg(long, default_value_t = 86_400)]
        overlap_secs: u32,
    },
    Revoke {
        key_id: String,
    },
    /// Every key, or one partner's.
    List {
        #[arg(long)]
        partner: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceName {
    Tickets,
    Returns,
    Dispatch,
    Care,
    Webhooks,
    Gateway,
}

impl ServiceName {
    pub fn name(self) -> &'static str {
        match self {
            ServiceName::Tickets => "tickets",
            ServiceName::Returns => "returns",
            ServiceName::Dispatch => "dispatch",
            ServiceName::Care => "care",
            ServiceName::Webhooks => "webhooks",
            ServiceName::Gateway => "gateway",
        }
    }

    /// The gateway holds no data; every other service owns a database.
    pub fn has_database(self) -> bool {
        self != ServiceName::Gateway
    }

    pub fn all() -> Vec<ServiceName> {
        ServiceName::value_variants().to_vec()
    }
}
