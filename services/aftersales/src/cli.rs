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
    /// Runs the named services against DATABASE_URL and REDIS_URL (production).
    Serve {
        #[arg(required = true, value_enum)]
        services: Vec<ServiceName>,
    },
    /// Applies the database migrations of the named services (all when none is named).
    Migrate {
        #[arg(value_enum)]
        services: Vec<ServiceName>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceName {
    Tickets,
    Returns,
    Dispatch,
}

impl ServiceName {
    pub fn name(self) -> &'static str {
        match self {
            ServiceName::Tickets => "tickets",
            ServiceName::Returns => "returns",
            ServiceName::Dispatch => "dispatch",
        }
    }

    pub fn all() -> Vec<ServiceName> {
        ServiceName::value_variants().to_vec()
    }
}
