//! Run progress on stderr: a bar per model (done/total, rate, ETA, failures) on a terminal, one
//! plain line per finished cell otherwise (CI logs, pipes), nothing with --quiet.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use versus_core::ModelConfig;
use versus_store::{CellId, CellOutcome};

pub enum Progress {
    Quiet,
    Lines {
        model_ids: Vec<String>,
        done: Vec<u64>,
        totals: Vec<u64>,
    },
    Bars {
        _multi: MultiProgress,
        bars: Vec<ProgressBar>,
        failures: Vec<u64>,
    },
}

impl Progress {
    pub fn new(quiet: bool, models: &[ModelConfig], totals: &[u64]) -> Progress {
        if quiet {
            return Progress::Quiet;
        }
        let model_ids: Vec<String> = models.iter().map(|m| m.id.clone()).collect();
        if !std::io::stderr().is_terminal() {
            return Progress::Lines {
                done: vec![0; model_ids.len()],
                totals: totals.to_vec(),
                model_ids,
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let width = model_ids.iter().map(String::len).max().unwrap_or(8);
        let style = ProgressStyle::with_template(&format!(
            "{{prefix:>{width}}} [{{bar:30}}] {{pos}}/{{len}} {{per_sec:>10}} eta {{eta:>4}} {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bars = model_ids
            .iter()
            .zip(totals)
            .map(|(id, total)| {
                let bar = multi.add(ProgressBar::new(*total));
                bar.set_style(style.clone());
                bar.set_prefix(id.clone());
                bar.enable_steady_tick(Duration::from_millis(250));
                bar
            })
            .collect();
        Progress::Bars {
            _multi: multi,
            bars,
            failures: vec![0; model_ids.len()],
        }
    }

    /// A line of news about the run (a batch submitted, a batch still running), printed above
    /// the bars; nothing when quiet.
    pub fn note(&mut self, text: &str) {
        match self {
            Progress::Quiet => {}
            Progress::Lines { .. } => eprintln!("{text}"),
            Progress::Bars { _multi, .. } => _multi.suspend(|| eprintln!("{text}")),
        }
    }

    /// A cell that was already done in a resumed run.
    pub fn skipped(&mut self, model_index: usize) {
        match self {
            Progress::Quiet => {}
            Progress::Lines { done, .. } => done[model_index] += 1,
            Progress::Bars { bars, .. } => bars[model_index].inc(1),
        }
    }

    pub fn cell_done(&mut self, model_index: usize, cell: &CellId, outcome: &CellOutcome) {
        match self {
            Progress::Quiet => {}
            Progress::Lines {
                model_ids,
                done,
                totals,
            } => {
                done[model_index] += 1;
                // Samples after the first are numbered from 1, as every report shows them.
                let sample = match cell.sample {
                    0 => String::new(),
                    index => format!(" (sample {})", index + 1),
                };
                eprintln!(
                    "[{}] {}/{} {}{sample}: {}",
                    model_ids[model_index],
                    done[model_index],
                    totals[model_index],
                    cell.task_id,
                    describe(outcome)
                );
            }
            Progress::Bars { bars, failures, .. } => {
                let bar = &bars[model_index];
                if matches!(outcome, CellOutcome::Failed { .. }) {
                    failures[model_index] += 1;
                    bar.set_message(format!("{} failed", failures[model_index]));
                }
                bar.inc(1);
            }
        }
    }

    pub fn finish(&mut self) {
        if let Progress::Bars { bars, .. } = self {
            for bar in bars {
                bar.finish();
            }
        }
    }
}

fn describe(outcome: &CellOutcome) -> String {
    match outcome {
        CellOutcome::Completed {
            completion, cached, ..
        } => {
            let tokens = completion
                .usage
                .map(|u| format!(", {} tokens", u.completion_tokens))
                .unwrap_or_default();
            let source = if *cached { "cached" } else { "ok" };
            format!(
                "{source} ({:.2} s{tokens})",
                completion.timings.latency_ms / 1000.0
            )
        }
        CellOutcome::Failed { message, .. } => format!("failed: {message}"),
        CellOutcome::Unsupported { reason } => format!("unsupported: {reason}"),
    }
}
