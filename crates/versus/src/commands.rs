//! The subcommands: each takes its parsed arguments, does its work through the library crates, and
//! says how the process should exit.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use versus_store::Store;

use crate::cli::{
    Cli, Command, ListFormat, ModelCommand, ReportArgs, ReportFormat, RunArgs, RunsArgs,
};
use crate::local_commands;
use crate::report;
use crate::runner::{self, RunOutcome};
use crate::settings::RunSettings;

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Run(args) => run(&cli.db, cli.quiet, args),
        Command::Report(args) => report(&cli.db, args),
        Command::Runs(args) => runs(&cli.db, args),
        Command::Chat(args) => local_commands::chat(args, cli.quiet),
        Command::Model {
            command: ModelCommand::Inspect(args),
        } => local_commands::inspect(args),
        Command::Model {
            command: ModelCommand::Tiny(args),
        } => local_commands::tiny(args, cli.quiet),
        Command::Demo(args) => local_commands::demo(&cli.db, args, cli.quiet),
        Command::Login(args) => local_commands::login(args),
    }
}

fn open_store(db: &Path) -> anyhow::Result<Store> {
    Ok(Store::open(db)?)
}

pub fn run(db: &Path, quiet: bool, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let settings = RunSettings::resolve(args)?;
    let store = open_store(db)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(runner::run(settings, store, quiet))?;
    if !quiet {
        print_outcome(&outcome, db);
    }
    Ok(if outcome.interrupted {
        ExitCode::from(130)
    } else if outcome.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_outcome(outcome: &RunOutcome, db: &Path) {
    let verb = if outcome.interrupted {
        "interrupted"
    } else {
        "finished"
    };
    let resumed = if outcome.resumed { " (resumed)" } else { "" };
    eprintln!(
        "run {}{resumed} {verb}: {} cells, {} ok ({} from cache), {} failed, {} unsupported",
        outcome.run_id,
        outcome.total,
        outcome.ok,
        outcome.cached,
        outcome.failed.len(),
        outcome.unsupported
    );
    const SHOWN: usize = 10;
    for failure in outcome.failed.iter().take(SHOWN) {
        eprintln!(
            "  failed: {} on {}: {}",
            failure.model_id, failure.task_id, failure.message
        );
    }
    if outcome.failed.len() > SHOWN {
        eprintln!("  ... and {} more", outcome.failed.len() - SHOWN);
    }
    let db_flag = if db == Path::new("versus.db") {
        String::new()
    } else {
        format!(" --db {}", db.display())
    };
    if outcome.interrupted {
        eprintln!("run the same command again to finish the missing cells");
    }
    eprintln!("report: versus{db_flag} report --run {}", outcome.run_id);
}

fn report(db: &Path, args: &ReportArgs) -> anyhow::Result<ExitCode> {
    if !db.exists() {
        anyhow::bail!(
            "no database at {}; start a run with `versus run`, or point --db at an existing one",
            db.display()
        );
    }
    let store = open_store(db)?;
    let report = report::build(&store, args.run)?;
    let text = match args.format {
        ReportFormat::Markdown => report::markdown::render(&report),
        ReportFormat::Json => {
            let mut json = serde_json::to_string_pretty(&report)?;
            json.push('\n');
            json
        }
    };
    write_output(args.output.as_deref(), &text)?;
    Ok(ExitCode::SUCCESS)
}

fn runs(db: &Path, args: &RunsArgs) -> anyhow::Result<ExitCode> {
    if !db.exists() {
        anyhow::bail!(
            "no database at {}; start a run with `versus run`",
            db.display()
        );
    }
    let store = open_store(db)?;
    let runs = store.runs()?;
    let text = match args.format {
        ListFormat::Json => {
            let rows: Vec<serde_json::Value> = runs
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.id,
                        "suite": r.suite_name,
                        "started_at": r.started_at,
                        "finished_at": r.finished_at,
                        "status": r.status.as_str(),
                        "models": r.models,
                        "cells": r.cells_total,
                        "ok": r.cells_ok,
                        "failed": r.cells_failed,
                        "unsupported": r.cells_unsupported,
                        "pending": r.cells_pending,
                        "tool_version": r.tool_version,
                    })
                })
                .collect();
            let mut json = serde_json::to_string_pretty(&rows)?;
            json.push('\n');
            json
        }
        ListFormat::Table => runs_table(&runs),
    };
    write_output(None, &text)?;
    Ok(ExitCode::SUCCESS)
}

fn runs_table(runs: &[versus_store::RunSummary]) -> String {
    if runs.is_empty() {
        return "no runs yet; start one with `versus run`\n".into();
    }
    let header = [
        "ID", "STARTED", "SUITE", "MODELS", "CELLS", "OK", "FAILED", "UNSUPP", "PENDING", "STATUS",
    ];
    let rows: Vec<[String; 10]> = runs
        .iter()
        .map(|r| {
            [
                r.id.to_string(),
                r.started_at
                    .get(..19)
                    .unwrap_or(&r.started_at)
                    .replace('T', " "),
                r.suite_name.clone(),
                r.models.join(", "),
                r.cells_total.to_string(),
                r.cells_ok.to_string(),
                r.cells_failed.to_string(),
                r.cells_unsupported.to_string(),
                r.cells_pending.to_string(),
                r.status.as_str().to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(&header.map(str::to_string));
    for row in &rows {
        line(row);
    }
    out
}

pub fn write_output(path: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match path {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                // A closed pipe (`versus report | head`) is not an error worth reporting.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.context("cannot write to stdout"),
            }
        }
    }
}
