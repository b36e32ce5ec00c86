//! The subcommands: each takes its parsed arguments, does its work through the library crates, and
//! says how the process should exit.

use crate::exit::ExitStatus;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use versus_store::{Database, Store};

use crate::cli::{
    Cli, Command, GradingArgs, ListFormat, ModelCommand, RatingsArgs, ReportArgs, ReportFormat,
    RunArgs, RunsArgs, ScoreArgs, VotesCommand, VotesImportArgs,
};
use crate::local_commands;
use crate::models::KeyPrompter;
use crate::report;
use crate::runner::{self, RunOutcome};
use crate::scoring::{self, ScoreOptions, ScoreSummary};
use crate::settings::{RunSettings, UsageError};

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitStatus> {
    match &cli.command {
        Command::Run(args) => run(&cli.db, cli.quiet, args),
        Command::Report(args) => report(&cli.db, args),
        Command::Score(args) => score(&cli.db, cli.quiet, args),
        Command::Ratings(args) => ratings(&cli.db, args),
        Command::Votes {
            command: VotesCommand::Import(args),
        } => votes_import(&cli.db, cli.quiet, args),
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
        Command::Serve(args) => crate::serve::serve(args, cli.quiet),
        Command::View(args) => crate::view::view(&cli.db, cli.quiet, args),
        Command::Worker(args) => crate::worker::worker(&cli.db, cli.quiet, args),
    }
}

pub fn open_store(db: &Database) -> anyhow::Result<Store> {
    Ok(Store::connect(db)?)
}

pub fn run(db: &Database, quiet: bool, args: &RunArgs) -> anyhow::Result<ExitStatus> {
    let settings = RunSettings::resolve(args)?;
    // Where every key goes is checked (and said) before the database is opened or any model is
    // built: a refusal is the user's to lift on the command line.
    // A shared run's keys are the workers': nothing is asked for here.
    let mut keys = KeyPrompter::new(!quiet && !settings.shared).with_policy(settings.keys.clone());
    for config in &settings.loaded.suite.models {
        keys.check_route(config)
            .map_err(|error| UsageError(error.message))?;
    }
    let store = open_store(db)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let suite_dir = settings.loaded.base_dir.clone();
    let outcome = runtime.block_on(runner::run(settings, store, keys, quiet))?;
    if outcome.shared && outcome.pending > 0 {
        return shared_run(db, quiet, args.wait, &outcome, &runtime);
    }
    if !quiet {
        print_outcome(&outcome, db);
    }
    if !args.no_score && !outcome.interrupted {
        let mut store = open_store(db)?;
        let mut options = score_options(
            &args.grading,
            args.base_urls.first().map(String::as_str),
            Some(suite_dir),
            quiet,
        );
        options.live_models = outcome.models.clone();
        options.key_policy = crate::models::KeyPolicy::from_args(&args.keys);
        // A failed scoring pass keeps the answers: they are stored, and `versus score` can retry.
        match runtime.block_on(scoring::score_run(&mut store, outcome.run_id, &options)) {
            Ok(summary) => {
                if !quiet {
                    print_score_summary(&summary);
                }
            }
            Err(error) => eprintln!(
                "warning: scoring failed: {error:#}; the answers are stored, retry with `versus score {}`",
                outcome.run_id
            ),
        }
    }
    Ok(if outcome.interrupted {
        ExitStatus::Interrupted
    } else if outcome.failed.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failed
    })
}

/// `versus run --workers 0`: says how to start workers, and with `--wait` shows their progress
/// until no cell is pending.
fn shared_run(
    db: &Database,
    quiet: bool,
    wait: bool,
    outcome: &RunOutcome,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitStatus> {
    let run = outcome.run_id;
    if !quiet {
        eprintln!(
            "run {run}{} shared: {} cells, {} pending for workers; start them with \
             `versus{} worker` on any machine that reaches the database",
            if outcome.resumed { " (resumed)" } else { "" },
            outcome.total,
            outcome.pending,
            db_flag(db)
        );
    }
    if !wait {
        return Ok(ExitStatus::Success);
    }
    let store = open_store(db)?;
    let mut last = None;
    let summary = runtime.block_on(async {
        let mut interrupt = std::pin::pin!(runner::interrupted());
        loop {
            let summary = store.run(run)?.summary;
            let shown = (
                summary.cells_ok,
                summary.cells_failed,
                summary.cells_pending,
            );
            if !quiet && last != Some(shown) {
                last = Some(shown);
                let workers = store.worker_progress(run)?;
                eprintln!(
                    "run {run}: {} of {} cells done ({} failed), {} pending, {} workers",
                    summary.cells_total - summary.cells_pending,
                    summary.cells_total,
                    summary.cells_failed,
                    summary.cells_pending,
                    workers.len()
                );
            }
            if summary.status != versus_store::RunStatus::Running || summary.cells_pending == 0 {
                return anyhow::Ok(Some(summary));
            }
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                () = &mut interrupt => return Ok(None),
            }
        }
    })?;
    Ok(match summary {
        None => ExitStatus::Interrupted,
        Some(summary) if summary.cells_failed > 0 => ExitStatus::Failed,
        Some(_) => {
            if !quiet {
                eprintln!("report: versus{} report --run {run}", db_flag(db));
            }
            ExitStatus::Success
        }
    })
}

fn print_outcome(outcome: &RunOutcome, db: &Database) {
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
        eprintln!("  failed: {}: {}", failure.cell, failure.message);
    }
    if outcome.failed.len() > SHOWN {
        eprintln!("  ... and {} more", outcome.failed.len() - SHOWN);
    }
    let db_flag = db_flag(db);
    if outcome.interrupted {
        eprintln!("run the same command again to finish the missing cells");
    }
    eprintln!("report: versus{db_flag} report --run {}", outcome.run_id);
}

fn score_options(
    grading: &GradingArgs,
    base_url: Option<&str>,
    suite_dir: Option<std::path::PathBuf>,
    quiet: bool,
) -> ScoreOptions {
    ScoreOptions {
        judge: grading.judge.clone(),
        judge_base_url: base_url.map(str::to_string),
        no_judge: grading.no_judge,
        allow_unsandboxed: grading.allow_unsandboxed,
        suite_dir,
        quiet,
        live_models: Vec::new(),
        key_policy: crate::models::KeyPolicy::default(),
        allow_outside_files: grading.allow_outside_files,
    }
}

fn print_score_summary(summary: &ScoreSummary) {
    let judged = if summary.judgements > 0 {
        format!(
            ", {} judgements ({} errors)",
            summary.judgements, summary.judge_errors
        )
    } else {
        String::new()
    };
    let not_run = if summary.code_not_run > 0 {
        format!(", {} code checks not run", summary.code_not_run)
    } else {
        String::new()
    };
    eprintln!(
        "scored {} answers: {} scores, {} failed checks{judged}{not_run}",
        summary.answers, summary.scores, summary.checks_failed
    );
    for warning in &summary.warnings {
        eprintln!("warning: {warning}");
    }
}

/// ` --db ...` as a command the user may copy needs it: empty for the default file. A URL is
/// shown redacted; the user knows its password.
pub fn db_flag(db: &Database) -> String {
    if db.sqlite_path() == Some(Path::new("versus.db")) {
        String::new()
    } else {
        format!(" --db {db}")
    }
}

/// The database `db` names, which must exist: commands that only read never create a SQLite
/// file (a PostgreSQL database exists or the connection says so).
pub fn existing_store(db: &Database) -> anyhow::Result<Store> {
    if let Some(path) = db.sqlite_path() {
        if !path.exists() {
            return Err(crate::settings::UsageError(format!(
                "no database at {}; start a run with `versus run`, or point --db at an existing one",
                path.display()
            ))
            .into());
        }
    }
    open_store(db)
}

/// The run to work on: the one named, or else the newest.
pub fn chosen_run(
    store: &Store,
    run: Option<versus_store::RunId>,
) -> anyhow::Result<versus_store::RunId> {
    match run {
        Some(run) => Ok(run),
        None => store.latest_run()?.ok_or_else(|| {
            crate::settings::UsageError(
                "the database has no runs yet; start one with `versus run`".into(),
            )
            .into()
        }),
    }
}

fn score(db: &Database, quiet: bool, args: &ScoreArgs) -> anyhow::Result<ExitStatus> {
    let mut store = existing_store(db)?;
    let run = chosen_run(&store, args.run)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // A `[judge] prompts` folder is resolved against the working directory when scoring later.
    let mut options = score_options(&args.grading, args.base_url.as_deref(), None, quiet);
    options.key_policy = crate::models::KeyPolicy::from_args(&args.keys);
    let summary = runtime.block_on(scoring::score_run(&mut store, run, &options))?;
    if !quiet {
        print_score_summary(&summary);
        eprintln!("report: versus report --run {run}");
    }
    Ok(ExitStatus::Success)
}

fn votes_import(db: &Database, quiet: bool, args: &VotesImportArgs) -> anyhow::Result<ExitStatus> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let battles = versus_core::ratings::parse_battles_jsonl(&text)
        .map_err(|e| crate::settings::UsageError(format!("{}: {e}", args.file.display())))?;
    let votes: Vec<versus_store::VoteRecord> = battles
        .iter()
        .map(|b| versus_store::VoteRecord {
            run_id: None,
            task_id: b.task.clone(),
            category: b.category.clone(),
            model_a: b.model_a.clone(),
            model_b: b.model_b.clone(),
            winner: b.winner,
            source: versus_core::VoteSource::Import,
            voter: None,
            judge: b.judge.clone(),
        })
        .collect();
    let mut store = open_store(db)?;
    let added = store.add_votes(&votes)?;
    if !quiet {
        eprintln!("imported {added} battles from {}", args.file.display());
    }
    Ok(ExitStatus::Success)
}

fn ratings(db: &Database, args: &RatingsArgs) -> anyhow::Result<ExitStatus> {
    use versus_core::ratings::{pairwise_results, ratings_with_intervals, win_rates_by_category};
    let store = existing_store(db)?;
    let battles = store.battles(args.run, args.category.as_deref())?;
    if battles.is_empty() {
        return Err(crate::settings::UsageError(
            "no battles to rate: score a run with a judge (`--judge MODEL` or `[judge]` in the suite), or `versus votes import FILE.jsonl`".into(),
        )
        .into());
    }
    let ratings = ratings_with_intervals(&battles, args.rounds, args.seed);
    let pairs = pairwise_results(&battles);
    let by_category = win_rates_by_category(&battles);

    /// The battles of `store.battles(run, category)` whose two answers are stored with a token
    /// count, with their style: `Store::battles` does not say which run a battle came from, so
    /// this walks the runs as it does (judgements, then the votes cast on the run) and looks
    /// each answer up among that run's cells. Votes without a run have no answers.
    fn styled_battles(
        store: &Store,
        run: Option<i64>,
        category: Option<&str>,
    ) -> anyhow::Result<Vec<versus_core::ratings::StyledBattle>> {
        use versus_core::ratings::{markdown_style_counts, StyleCounts};
        let runs: Vec<i64> = match run {
            Some(run) => vec![run],
            None => store.runs()?.iter().map(|r| r.id).collect(),
        };
        let votes = store.votes()?;
        let mut styled = Vec::new();
        for run in runs {
            let plan = store.run_plan(run)?;
            let judgements = store.judgements(run)?;
            let run_votes = votes.iter().filter(|v| v.run_id == Some(run));
            let mut battles =
                versus_core::record::battles(&judgements, &plan.categories(), run_votes);
            if let Some(category) = category {
                battles.retain(|b| b.category.as_deref() == Some(category));
            }
            let mut answers = std::collections::BTreeMap::<(String, String), StyleCounts>::new();
            for cell in store.cells(run)? {
                // Battles are judged on first samples only.
                let (0, Some(stored)) = (cell.sample, &cell.completion) else {
                    continue;
                };
                // The length is the server's token count; without one the answer is not used.
                let Some(usage) = stored.completion.usage else {
                    continue;
                };
                answers.insert(
                    (cell.task_id.clone(), cell.model_id.clone()),
                    markdown_style_counts(&stored.completion.text, usage.completion_tokens),
                );
            }
            styled.extend(versus_core::ratings::styled_battles(&battles, &answers).0);
        }
        Ok(styled)
    }

    let style = if args.style_control {
        let styled = styled_battles(&store, args.run, args.category.as_deref())?;
        if styled.is_empty() {
            return Err(crate::settings::UsageError(format!(
                "no battles to rate with --style-control: none of the {} battles has both answers stored with a token count (imported votes without a run have no answers)",
                battles.len()
            ))
            .into());
        }
        let plain: Vec<versus_core::ratings::Battle> =
            styled.iter().map(|s| s.battle.clone()).collect();
        let fit = versus_core::ratings::style_controlled_ratings(&styled, args.rounds, args.seed);
        Some((fit, versus_core::ratings::bradley_terry(&plain)))
    } else {
        None
    };
    let left_out = style
        .as_ref()
        .map_or(0, |(fit, _)| battles.len().saturating_sub(fit.battles));
    let left_out_note = format!(
        "{left_out} of {} battles left out of the style-controlled fit: their answers, or the token counts of their answers, are not in the store",
        battles.len()
    );

    let text = match args.format {
        ListFormat::Json => {
            let categories: Vec<serde_json::Value> = by_category
                .iter()
                .map(|(category, rates)| {
                    serde_json::json!({ "category": category, "win_rates": rates })
                })
                .collect();
            let mut json = serde_json::json!({
                "battles": battles.len(),
                "rounds": args.rounds,
                "seed": args.seed,
                "ratings": ratings,
                "pairs": pairs,
                "categories": categories,
            });
            if let Some((fit, _)) = &style {
                json["style_control"] = serde_json::json!({
                    "battles": fit.battles,
                    "left_out": left_out,
                    "regularization": versus_core::ratings::ARENA_STYLE_REGULARIZATION,
                    "ratings": fit.ratings,
                    "style_coefficients": fit.style_coefficients,
                });
                if left_out > 0 {
                    eprintln!("note: {left_out_note}");
                }
            }
            serde_json::to_string_pretty(&json)? + "\n"
        }
        ListFormat::Table => {
            let mut text = match &style {
                Some((fit, plain)) => {
                    let mut text = format!(
                        "{:<4} {:<28} {:>7} {:>15} {:>8} {:>9} {:>8}\n",
                        "RANK",
                        "MODEL",
                        "RATING",
                        "95% INTERVAL",
                        "BATTLES",
                        "WIN RATE",
                        "PLAIN BT"
                    );
                    for r in &fit.ratings {
                        let interval = format!("{:.1}–{:.1}", r.lower, r.upper);
                        let unstyled = plain
                            .iter()
                            .find(|(model, _)| model == &r.model)
                            .map_or(String::new(), |(_, rating)| format!("{rating:.1}"));
                        text.push_str(&format!(
                            "{:<4} {:<28} {:>7.1} {:>15} {:>8} {:>8.1}% {:>8}\n",
                            r.rank,
                            r.model,
                            r.rating,
                            interval,
                            r.battles,
                            r.win_rate * 100.0,
                            unstyled
                        ));
                    }
                    text.push_str(&format!(
                        "{} battles; Bradley-Terry with style control as Chatbot Arena (answer length, headers, list items, bold; L2 {}), scale 400, base 10, initial 1000, {} bootstrap rounds, seed {}\n",
                        fit.battles,
                        versus_core::ratings::ARENA_STYLE_REGULARIZATION,
                        args.rounds,
                        args.seed
                    ));
                    let coefficients: Vec<String> = fit
                        .style_coefficients
                        .iter()
                        .map(|c| {
                            format!(
                                "{} {:.3} ({:.3}–{:.3})",
                                c.feature, c.value, c.lower, c.upper
                            )
                        })
                        .collect();
                    text.push_str(&format!(
                        "style coefficients (log-odds per standard deviation, 95% interval): {}\n",
                        coefficients.join(", ")
                    ));
                    if left_out > 0 {
                        text.push_str(&format!("note: {left_out_note}\n"));
                    }
                    text
                }
                None => {
                    let mut text = format!(
                        "{:<4} {:<28} {:>7} {:>15} {:>8} {:>9}\n",
                        "RANK", "MODEL", "RATING", "95% INTERVAL", "BATTLES", "WIN RATE"
                    );
                    for r in &ratings {
                        let interval = format!("{:.1}–{:.1}", r.lower, r.upper);
                        text.push_str(&format!(
                            "{:<4} {:<28} {:>7.1} {:>15} {:>8} {:>8.1}%\n",
                            r.rank,
                            r.model,
                            r.rating,
                            interval,
                            r.battles,
                            r.win_rate * 100.0
                        ));
                    }
                    text.push_str(&format!(
                        "{} battles; Bradley-Terry (scale 400, base 10, initial 1000), {} bootstrap rounds, seed {}\n",
                        battles.len(),
                        args.rounds,
                        args.seed
                    ));
                    if !versus_core::ratings::has_finite_mle(&battles) {
                        text.push_str(&format!("note: {}\n", report::FINITE_MLE_NOTE));
                    }
                    text
                }
            };
            text.push_str("\nwins-ties-losses per pair:\n");
            for pair in &pairs {
                text.push_str(&format!(
                    "  {} vs {}: {}-{}-{}\n",
                    pair.a, pair.b, pair.wins_a, pair.ties, pair.wins_b
                ));
            }
            if by_category.len() > 1 || by_category.keys().any(Option::is_some) {
                text.push_str("\nwin rate by category (ties count half):\n");
                for (category, rates) in &by_category {
                    let rates: Vec<String> = rates
                        .iter()
                        .map(|r| format!("{} {:.0}%", r.model, r.win_rate * 100.0))
                        .collect();
                    text.push_str(&format!(
                        "  {}: {}\n",
                        category.as_deref().unwrap_or("(none)"),
                        rates.join(", ")
                    ));
                }
            }
            text
        }
    };
    write_output(None, &text)?;
    Ok(ExitStatus::Success)
}

fn report(db: &Database, args: &ReportArgs) -> anyhow::Result<ExitStatus> {
    let store = existing_store(db)?;
    let report = report::build(&store, chosen_run(&store, args.run)?)?;
    let text = match args.format {
        ReportFormat::Markdown => report::markdown::render(&report),
        ReportFormat::Json => {
            let mut json = serde_json::to_string_pretty(&report)?;
            json.push('\n');
            json
        }
        ReportFormat::Html => report::html::render(&report),
    };
    write_output(args.output.as_deref(), &text)?;
    Ok(ExitStatus::Success)
}

fn runs(db: &Database, args: &RunsArgs) -> anyhow::Result<ExitStatus> {
    let store = existing_store(db)?;
    let runs = store.runs()?;
    // Each run's workers (`versus worker`), for shared runs; empty for the others.
    let workers: Vec<Vec<versus_store::WorkerProgress>> = runs
        .iter()
        .map(|run| store.worker_progress(run.id))
        .collect::<Result<_, _>>()?;
    let text = match args.format {
        ListFormat::Json => {
            let rows: Vec<serde_json::Value> = runs
                .iter()
                .zip(&workers)
                .map(|(r, workers)| {
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
                        "batches_waiting": r.batches_waiting,
                        "tool_version": r.tool_version,
                        "workers": workers.iter().map(|w| serde_json::json!({
                            "id": w.worker,
                            "host": w.host,
                            "pid": w.pid,
                            "done": w.cells_done,
                            "failed": w.cells_failed,
                            "leased": w.cells_leased,
                            "cells_per_second": w.cells_per_second,
                            "heartbeat_age_secs": w.heartbeat_age_secs,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let mut json = serde_json::to_string_pretty(&rows)?;
            json.push('\n');
            json
        }
        ListFormat::Table => runs_table(&runs, &workers),
    };
    write_output(None, &text)?;
    Ok(ExitStatus::Success)
}

/// One line per worker of a shared run, under the run's row.
pub fn worker_line(worker: &versus_store::WorkerProgress) -> String {
    format!(
        "worker {}: {} done, {} failed, {} held, {:.1} cells/s, heartbeat {:.1} s ago",
        worker.worker,
        worker.cells_done,
        worker.cells_failed,
        worker.cells_leased,
        worker.cells_per_second,
        worker.heartbeat_age_secs
    )
}

fn runs_table(
    runs: &[versus_store::RunSummary],
    workers: &[Vec<versus_store::WorkerProgress>],
) -> String {
    if runs.is_empty() {
        return "no runs yet; start one with `versus run`\n".into();
    }
    let header = [
        "ID", "STARTED", "SUITE", "MODELS", "CELLS", "OK", "FAILED", "UNSUPP", "PENDING",
        "BATCHES", "STATUS",
    ];
    let rows: Vec<[String; 11]> = runs
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
                match r.batches_waiting {
                    0 => "-".to_string(),
                    waiting => format!("{waiting} waiting"),
                },
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
    let line = |out: &mut String, cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(&mut out, &header.map(str::to_string));
    for (index, row) in rows.iter().enumerate() {
        line(&mut out, row);
        for worker in workers.get(index).into_iter().flatten() {
            out.push_str("  ");
            out.push_str(&worker_line(worker));
            out.push('\n');
        }
    }
    out
}

pub fn write_output(path: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match path {
        Some(path) => crate::files::write_atomically(path, text.as_bytes()),
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
