//! `aftersales`: one binary for every service of the suite.

mod admin;
mod backbone;
mod cli;
mod suite;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    match suite::run(cli::Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("aftersales: {err:#}");
            ExitCode::FAILURE
        }
    }
}
