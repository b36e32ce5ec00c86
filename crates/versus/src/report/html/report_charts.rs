//! The report's charts and what each is drawn from: ratings with their intervals, the judge's
//! win rates per category, time to first token, tokens per second, and answer length. This file
//! picks and summarizes the evidence; `charts.rs` draws it as inline SVG.

use versus_core::stats::{mean, median};

use super::charts::{self as svg, Bar, BarChart, BarGroup, Interval, IntervalChart};
use crate::report::format::{interval, percent, rating, tokens_per_second, NOT_REPORTED};
use crate::report::{Report, ResultEntry};

/// The report's charts: ratings with intervals, judge win rates per category, time to first
/// token, tokens per second, and answer length.
pub fn charts(report: &Report) -> String {
    let mut out = String::from("<div class=\"charts\">\n");
    out.push_str(&svg::interval_chart(&ratings_chart(report)));
    out.push_str(&svg::bar_chart(&win_rate_chart(report)));
    out.push_str(&svg::bar_chart(&speed_chart(
        report,
        "ttft",
        "Time to first token",
        |r| r.ttft_ms.map(|ms| ms / 1000.0),
        |v| format!("{v:.2} s"),
        |v| format!("{v} s"),
    )));
    out.push_str(&svg::bar_chart(&speed_chart(
        report,
        "tokens-per-second",
        "Tokens per second",
        |r| r.tokens_per_second,
        |v| format!("{}/s", tokens_per_second(v)),
        |v| format!("{v}/s"),
    )));
    out.push_str(&svg::bar_chart(&length_chart(report)));
    out.push_str("</div>\n");
    out
}

fn model_series(report: &Report, model: &str) -> usize {
    report
        .models
        .iter()
        .position(|m| m.id == model)
        .unwrap_or(report.models.len())
}

fn ratings_chart(report: &Report) -> IntervalChart {
    IntervalChart {
        id: "ratings".into(),
        title: "Ratings with 95% intervals".into(),
        caption: "Bradley-Terry rating (dot) and bootstrap 95% interval (whisker) per model, from this run's judge verdicts and votes.".into(),
        rows: report
            .ratings
            .iter()
            .map(|r| Interval {
                label: r.model.clone(),
                series: model_series(report, &r.model),
                center: r.rating,
                lower: r.lower,
                upper: r.upper,
                text: format!("{} ({})", rating(r.rating), interval(r.lower, r.upper)),
            })
            .collect(),
    }
}

/// One model's share of the judge's pairwise points in one category.
#[derive(Debug, Clone, PartialEq)]
pub struct WinRate {
    pub model: String,
    /// Points over comparisons, 0-1.
    pub rate: f64,
    pub comparisons: usize,
}

/// Win rates per category from the judge's pairwise verdicts, as core's win rates count them (a
/// win 1, a tie or inconsistent pair ½, errors left out); categories in task order, models in
/// report order.
pub fn win_rates_by_category(report: &Report) -> Vec<(String, Vec<WinRate>)> {
    let by_category = versus_core::ratings::win_rates_by_category(&report.judge_battles);
    super::categories(report)
        .into_iter()
        .filter_map(|category| {
            let rates = by_category.get(&Some(category.to_string()))?;
            let rows = report
                .models
                .iter()
                .filter_map(|m| {
                    let rate = rates.iter().find(|r| r.model == m.id)?;
                    Some(WinRate {
                        model: m.id.clone(),
                        rate: rate.win_rate,
                        comparisons: rate.battles,
                    })
                })
                .collect();
            Some((category.to_string(), rows))
        })
        .collect()
}

fn win_rate_chart(report: &Report) -> BarChart {
    let groups = win_rates_by_category(report)
        .into_iter()
        .map(|(category, rows)| BarGroup {
            label: Some(category),
            bars: rows
                .into_iter()
                .map(|win| Bar {
                    series: model_series(report, &win.model),
                    text: format!("{} of {}", percent(win.rate), win.comparisons),
                    label: win.model,
                    value: Some(win.rate),
                    points: Vec::new(),
                })
                .collect(),
        })
        .collect();
    BarChart {
        id: "win-rates".into(),
        title: "Judge win rate by category".into(),
        caption: "Share of pairwise comparisons won (ties and inconsistent pairs count half, errors not at all), per task category; the dashed line is 50%.".into(),
        groups,
        max: Some(1.0),
        reference: Some((0.5, "50%".into())),
        tick_format: percent,
    }
}

/// A bar per model at the median of `value` over its fresh answers, each answer a dot; `format`
/// writes values, `tick_format` the axis (whose round ticks need fewer digits).
fn speed_chart(
    report: &Report,
    id: &str,
    title: &str,
    value: fn(&ResultEntry) -> Option<f64>,
    format: fn(f64) -> String,
    tick_format: fn(f64) -> String,
) -> BarChart {
    let bars = report
        .models
        .iter()
        .enumerate()
        .map(|(series, model)| {
            // Cached answers were not timed in this run, as in the criteria table's Speed row.
            let values: Vec<f64> = report
                .results
                .iter()
                .filter(|r| r.model == model.id && r.status == "ok" && !r.cached)
                .filter_map(value)
                .collect();
            let middle = median(&values);
            Bar {
                label: model.id.clone(),
                series,
                value: middle,
                text: middle.map_or("not measured".into(), |m| {
                    format!("{} (median of {})", format(m), values.len())
                }),
                points: values,
            }
        })
        .collect();
    BarChart {
        id: id.into(),
        title: format!("{title} (median)"),
        caption: format!("{title} per model: the bar is the median over the answers made in this run (cached ones excluded), each dot one answer."),
        groups: vec![BarGroup {
            label: None,
            bars,
        }],
        max: None,
        reference: None,
        tick_format,
    }
}

fn length_chart(report: &Report) -> BarChart {
    let words = report
        .models
        .iter()
        .enumerate()
        .map(|(series, model)| {
            let values: Vec<f64> = report
                .scores
                .iter()
                .filter(|s| s.model == model.id && s.scorer == "style.words")
                .filter_map(|s| s.value)
                .collect();
            let average = mean(&values);
            Bar {
                label: model.id.clone(),
                series,
                value: average,
                text: average.map_or("not scored".into(), |m| format!("{m:.0} words")),
                points: values,
            }
        })
        .collect();
    let tokens = report
        .models
        .iter()
        .enumerate()
        .map(|(series, model)| {
            let values: Vec<f64> = report
                .results
                .iter()
                .filter(|r| r.model == model.id && r.status == "ok")
                .filter_map(|r| r.completion_tokens.map(|t| t as f64))
                .collect();
            let average = mean(&values);
            Bar {
                label: model.id.clone(),
                series,
                value: average,
                text: average.map_or(NOT_REPORTED.into(), |m| format!("{m:.0} tokens")),
                points: values,
            }
        })
        .collect();
    BarChart {
        id: "length".into(),
        title: "Answer length (mean)".into(),
        caption: "Mean words per answer (style scores) and mean output tokens per answer (as the servers reported them); each dot one answer.".into(),
        groups: vec![
            BarGroup {
                label: Some("Words".into()),
                bars: words,
            },
            BarGroup {
                label: Some("Output tokens".into()),
                bars: tokens,
            },
        ],
        max: None,
        reference: None,
        tick_format: |v| format!("{v:.0}"),
    }
}
