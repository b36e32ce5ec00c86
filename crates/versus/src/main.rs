//! The `versus` binary: parses the command line and wires the library crates together
//! (settings -> runner -> store -> report). Exit codes: 0 all cells succeeded, 1 some cells failed,
//! 2 usage or configuration error, 130 interrupted.

mod cli;
mod commands;
mod judge;
mod local_commands;
mod models;
mod progress;
mod render;
mod report;
mod runner;
mod scoring;
mod serve;
mod settings;
mod view;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
