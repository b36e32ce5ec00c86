//! The `versus` binary: parses the command line and wires the library crates together
//! (settings -> runner -> store -> report). Exit codes are `exit::ExitStatus`.

mod batches;
mod cli;
mod commands;
mod exit;
mod files;
mod http_server;
mod judge;
mod local_commands;
mod models;
mod progress;
mod recorder;
mod render;
mod report;
mod runner;
mod scoring;
mod serve;
mod settings;
mod view;
mod worker;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::dispatch(cli) {
        Ok(status) => status.into(),
        Err(error) => {
            eprintln!("error: {error:#}");
            exit::ExitStatus::of_error(&error).into()
        }
    }
}
