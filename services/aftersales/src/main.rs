//! `aftersales`: one binary for every service of the suite.

mod admin;
mod backbone;
mod cli;
mod suite;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    // One TLS provider (aws-lc) for every library that does not name its own.
    aftersales_platform::tls::install_default_provider();
    match suite::run(cli::Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("aftersales: {err:#}");
            ExitCode::FAILURE
        }
    }
}
