//! Charts for the HTML report, written here as inline SVG (no chart library, no script): bar
//! charts (one bar per model, optionally in groups, with each measurement as a dot) and interval
//! charts (a dot and a whisker per model). Each is a `<figure>` with a visible heading, an SVG
//! whose `<title>` and `<desc>` say in words what it shows, and the value of every bar written
//! beside it. Colours come from CSS classes (`s0`..`s7`, one per model), so themes and print apply.
//!
//! Every label is escaped with `crate::render::escape`; the SVG loads nothing.

use std::fmt::Write;

use crate::render::escape;

// Wide enough that value labels such as "3874.0/s (median of 3)" fit right of the plot.
const WIDTH: f64 = 740.0;
const PLOT_LEFT: f64 = 170.0;
const PLOT_RIGHT: f64 = 500.0;
const VALUE_X: f64 = 508.0;
const ROW_HEIGHT: f64 = 24.0;
const BAR_HEIGHT: f64 = 14.0;
const GROUP_HEIGHT: f64 = 22.0;
const TOP: f64 = 8.0;
const AXIS_HEIGHT: f64 = 30.0;
/// Longer labels are cut (the full label stays in the bar's tooltip and the description).
const LABEL_CHARS: usize = 24;
/// Series colours in the stylesheet.
pub const SERIES: usize = 8;

/// One bar: a model's value (`None`: nothing measured), the measurements it summarizes (drawn
/// as dots), and the text written beside it.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    /// The model's position in the report, which picks its colour.
    pub series: usize,
    pub value: Option<f64>,
    pub points: Vec<f64>,
    pub text: String,
}

/// Bars under one heading (a category); `label: None` for a chart without groups.
#[derive(Debug, Clone)]
pub struct BarGroup {
    pub label: Option<String>,
    pub bars: Vec<Bar>,
}

#[derive(Debug, Clone)]
pub struct BarChart {
    /// Unique in the page: the figure's id is `chart-ID` and its `data-testid` too.
    pub id: String,
    pub title: String,
    pub caption: String,
    pub groups: Vec<BarGroup>,
    /// A fixed top of the scale (1.0 for shares); otherwise the data decide.
    pub max: Option<f64>,
    /// A dashed line at this value (0.5 for win rates), with its label.
    pub reference: Option<(f64, String)>,
    pub tick_format: fn(f64) -> String,
}

/// One model's estimate with its interval.
#[derive(Debug, Clone)]
pub struct Interval {
    pub label: String,
    pub series: usize,
    pub center: f64,
    pub lower: f64,
    pub upper: f64,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct IntervalChart {
    pub id: String,
    pub title: String,
    pub caption: String,
    pub rows: Vec<Interval>,
}

/// A figure with a horizontal bar chart, or with a sentence saying there is nothing to draw.
pub fn bar_chart(chart: &BarChart) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_bar_chart(&mut out, chart);
    out
}

/// A figure with a dot and a whisker per row, or with a sentence saying there is nothing to draw.
pub fn interval_chart(chart: &IntervalChart) -> String {
    let mut out = String::new();
    let _ = write_interval_chart(&mut out, chart);
    out
}

fn write_bar_chart(out: &mut String, chart: &BarChart) -> std::fmt::Result {
    let finite = |v: &f64| v.is_finite() && *v >= 0.0;
    let data_max = chart
        .groups
        .iter()
        .flat_map(|g| &g.bars)
        .flat_map(|b| b.value.iter().chain(&b.points))
        .copied()
        .filter(finite)
        .fold(None, |max: Option<f64>, v| {
            Some(max.map_or(v, |m| m.max(v)))
        });
    let has_data = chart
        .groups
        .iter()
        .flat_map(|g| &g.bars)
        .any(|b| b.value.is_some_and(|v| finite(&v)));
    open_figure(out, &chart.id, &chart.title)?;
    if !has_data {
        writeln!(
            out,
            "<p class=\"empty\">Nothing measured for this chart in this run.</p>"
        )?;
        return close_figure(out, &chart.caption);
    }
    let (_, top, step) = nice_domain(0.0, chart.max.unwrap_or(0.0).max(data_max.unwrap_or(0.0)));
    let scale = |v: f64| PLOT_LEFT + (v.clamp(0.0, top) / top) * (PLOT_RIGHT - PLOT_LEFT);
    let group_headers = chart.groups.iter().filter(|g| g.label.is_some()).count();
    let rows: usize = chart.groups.iter().map(|g| g.bars.len()).sum();
    let plot_bottom = TOP + group_headers as f64 * GROUP_HEIGHT + rows as f64 * ROW_HEIGHT;
    let height = plot_bottom + AXIS_HEIGHT;
    open_svg(
        out,
        &chart.id,
        &chart.title,
        height,
        &bar_description(chart),
    )?;
    write_axis(
        out,
        PLOT_LEFT,
        plot_bottom,
        0.0,
        top,
        step,
        &scale,
        chart.tick_format,
    )?;
    if let Some((value, label)) = &chart.reference {
        let x = scale(*value);
        writeln!(
            out,
            "<line class=\"reference\" x1=\"{x:.1}\" y1=\"{TOP:.1}\" x2=\"{x:.1}\" y2=\"{plot_bottom:.1}\"><title>{}</title></line>",
            escape(label)
        )?;
    }
    let mut y = TOP;
    for group in &chart.groups {
        if let Some(label) = &group.label {
            writeln!(
                out,
                "<text class=\"group\" x=\"4\" y=\"{:.1}\">{}</text>",
                y + GROUP_HEIGHT - 7.0,
                escape(&shorten(label, LABEL_CHARS + 16))
            )?;
            y += GROUP_HEIGHT;
        }
        for bar in &group.bars {
            let middle = y + ROW_HEIGHT / 2.0;
            let series = bar.series % SERIES;
            writeln!(
                out,
                "<g class=\"row\"><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                PLOT_LEFT - 8.0,
                middle + 4.0,
                escape(&shorten(&bar.label, LABEL_CHARS))
            )?;
            if let Some(value) = bar.value.filter(finite) {
                writeln!(
                    out,
                    "<rect class=\"bar s{series}\" x=\"{PLOT_LEFT:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{BAR_HEIGHT:.1}\" rx=\"2\"><title>{}: {}</title></rect>",
                    middle - BAR_HEIGHT / 2.0,
                    (scale(value) - PLOT_LEFT).max(0.5),
                    escape(&bar.label),
                    escape(&bar.text)
                )?;
            }
            for point in bar.points.iter().copied().filter(finite) {
                writeln!(
                    out,
                    "<circle class=\"point s{series}\" cx=\"{:.1}\" cy=\"{middle:.1}\" r=\"3\"/>",
                    scale(point)
                )?;
            }
            writeln!(
                out,
                "<text class=\"value\" x=\"{VALUE_X:.1}\" y=\"{:.1}\">{}</text></g>",
                middle + 4.0,
                escape(&bar.text)
            )?;
            y += ROW_HEIGHT;
        }
    }
    writeln!(out, "</svg>")?;
    close_figure(out, &chart.caption)
}

fn write_interval_chart(out: &mut String, chart: &IntervalChart) -> std::fmt::Result {
    let rows: Vec<&Interval> = chart
        .rows
        .iter()
        .filter(|r| r.center.is_finite() && r.lower.is_finite() && r.upper.is_finite())
        .collect();
    open_figure(out, &chart.id, &chart.title)?;
    if rows.is_empty() {
        writeln!(
            out,
            "<p class=\"empty\">No judge verdicts or votes to rate the models on.</p>"
        )?;
        return close_figure(out, &chart.caption);
    }
    let low = rows
        .iter()
        .map(|r| r.lower.min(r.center))
        .fold(f64::INFINITY, f64::min);
    let high = rows
        .iter()
        .map(|r| r.upper.max(r.center))
        .fold(f64::NEG_INFINITY, f64::max);
    let (start, end, step) = nice_domain(low, high);
    let scale = |v: f64| PLOT_LEFT + (v - start) / (end - start) * (PLOT_RIGHT - PLOT_LEFT);
    let plot_bottom = TOP + rows.len() as f64 * ROW_HEIGHT;
    let description = rows
        .iter()
        .map(|r| format!("{}: {}", r.label, r.text))
        .collect::<Vec<_>>()
        .join("; ");
    open_svg(
        out,
        &chart.id,
        &chart.title,
        plot_bottom + AXIS_HEIGHT,
        &description,
    )?;
    write_axis(out, PLOT_LEFT, plot_bottom, start, end, step, &scale, |v| {
        format!("{v:.0}")
    })?;
    for (index, row) in rows.iter().enumerate() {
        let middle = TOP + index as f64 * ROW_HEIGHT + ROW_HEIGHT / 2.0;
        let series = row.series % SERIES;
        let (x_low, x_high, x_center) = (scale(row.lower), scale(row.upper), scale(row.center));
        writeln!(
            out,
            "<g class=\"row\"><title>{}: {}</title><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            escape(&row.label),
            escape(&row.text),
            PLOT_LEFT - 8.0,
            middle + 4.0,
            escape(&shorten(&row.label, LABEL_CHARS))
        )?;
        writeln!(
            out,
            "<line class=\"whisker s{series}\" x1=\"{x_low:.1}\" y1=\"{middle:.1}\" x2=\"{x_high:.1}\" y2=\"{middle:.1}\"/>"
        )?;
        for x in [x_low, x_high] {
            writeln!(
                out,
                "<line class=\"whisker s{series}\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>",
                middle - 5.0,
                middle + 5.0
            )?;
        }
        writeln!(
            out,
            "<circle class=\"dot s{series}\" cx=\"{x_center:.1}\" cy=\"{middle:.1}\" r=\"5\"/>"
        )?;
        writeln!(
            out,
            "<text class=\"value\" x=\"{VALUE_X:.1}\" y=\"{:.1}\">{}</text></g>",
            middle + 4.0,
            escape(&row.text)
        )?;
    }
    writeln!(out, "</svg>")?;
    close_figure(out, &chart.caption)
}

fn open_figure(out: &mut String, id: &str, title: &str) -> std::fmt::Result {
    let id = escape(id);
    writeln!(
        out,
        "<figure class=\"chart\" id=\"chart-{id}\" data-testid=\"chart-{id}\">\n<h3>{}</h3>",
        escape(title)
    )
}

fn close_figure(out: &mut String, caption: &str) -> std::fmt::Result {
    writeln!(
        out,
        "<figcaption>{}</figcaption>\n</figure>",
        escape(caption)
    )
}

/// The `<svg>` start tag with its accessible name (`<title>`) and description (`<desc>`).
fn open_svg(
    out: &mut String,
    id: &str,
    title: &str,
    height: f64,
    description: &str,
) -> std::fmt::Result {
    let id = escape(id);
    writeln!(
        out,
        "<svg viewBox=\"0 0 {WIDTH:.0} {height:.0}\" role=\"img\" aria-labelledby=\"chart-{id}-title chart-{id}-desc\" preserveAspectRatio=\"xMinYMin meet\">\n<title id=\"chart-{id}-title\">{}</title>\n<desc id=\"chart-{id}-desc\">{}</desc>",
        escape(title),
        escape(description)
    )
}

fn bar_description(chart: &BarChart) -> String {
    chart
        .groups
        .iter()
        .map(|group| {
            let bars = group
                .bars
                .iter()
                .map(|b| format!("{}: {}", b.label, b.text))
                .collect::<Vec<_>>()
                .join(", ");
            match &group.label {
                Some(label) => format!("{label}: {bars}"),
                None => bars,
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The horizontal axis under the plot, with grid lines at each tick.
#[allow(clippy::too_many_arguments)]
fn write_axis(
    out: &mut String,
    left: f64,
    bottom: f64,
    start: f64,
    end: f64,
    step: f64,
    scale: &dyn Fn(f64) -> f64,
    format: fn(f64) -> String,
) -> std::fmt::Result {
    writeln!(
        out,
        "<line class=\"axis\" x1=\"{left:.1}\" y1=\"{bottom:.1}\" x2=\"{PLOT_RIGHT:.1}\" y2=\"{bottom:.1}\"/>"
    )?;
    let ticks = ((end - start) / step).round() as usize;
    for i in 0..=ticks.min(20) {
        // Rounded so that sums like 0.1 + 0.2 print as 0.3.
        let value = ((start + i as f64 * step) * 1e9).round() / 1e9;
        let x = scale(value);
        writeln!(
            out,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{TOP:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"/><text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            bottom + 4.0,
            bottom + 18.0,
            escape(&format(value))
        )?;
    }
    Ok(())
}

/// A range covering `low..high` that starts and ends on round ticks (1, 2 or 5 times a power of
/// ten apart), about five of them: `(start, end, step)`.
pub fn nice_domain(low: f64, high: f64) -> (f64, f64, f64) {
    let (low, high) = if high > low {
        (low, high)
    } else {
        // One value (or none): a range around it.
        let pad = (high.abs() * 0.1).max(1.0);
        (low - if low == 0.0 { 0.0 } else { pad }, high + pad)
    };
    let raw = (high - low) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let start = (low / step).floor() * step;
    let end = (high / step).ceil() * step;
    (start, if end > start { end } else { start + step }, step)
}

/// `label`, cut to `max` characters with an ellipsis.
fn shorten(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        return label.to_string();
    }
    let mut short: String = label.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_round() {
        assert_eq!(nice_domain(0.0, 0.87), (0.0, 1.0, 0.2));
        assert_eq!(nice_domain(0.0, 1.0), (0.0, 1.0, 0.2));
        assert_eq!(nice_domain(953.0, 1047.0), (940.0, 1060.0, 20.0));
        let (start, end, step) = nice_domain(0.0, 0.0);
        assert!(start == 0.0 && end > 0.0 && step > 0.0);
        let (start, end, _) = nice_domain(1000.0, 1000.0);
        assert!(start < 1000.0 && end > 1000.0);
    }

    #[test]
    fn labels_are_escaped_and_cut() {
        let chart = bar_chart(&BarChart {
            id: "x".into(),
            title: "<b>t</b>".into(),
            caption: "c & d".into(),
            groups: vec![BarGroup {
                label: Some("<script>".into()),
                bars: vec![Bar {
                    label: "a-very-long-model-name-that-goes-on-and-on</text><script>".into(),
                    series: 9,
                    value: Some(2.0),
                    points: vec![1.0, 3.0, f64::NAN],
                    text: "2 <s>".into(),
                }],
            }],
            max: None,
            reference: Some((1.0, "<ref>".into())),
            tick_format: |v| format!("{v}"),
        });
        assert!(!chart.contains("<script"), "{chart}");
        assert!(!chart.contains("<b>") && !chart.contains("<s>") && !chart.contains("<ref>"));
        assert!(chart.contains("a-very-long-model-name-…"), "{chart}");
        assert!(
            chart.contains("class=\"bar s1\""),
            "series wrap around: {chart}"
        );
        assert_eq!(chart.matches("<circle").count(), 2, "NaN is not drawn");
        assert_eq!(
            chart.matches("<svg").count(),
            chart.matches("</svg>").count()
        );
    }

    #[test]
    fn nothing_to_draw_says_so() {
        let chart = interval_chart(&IntervalChart {
            id: "r".into(),
            title: "Ratings".into(),
            caption: String::new(),
            rows: Vec::new(),
        });
        assert!(chart.contains("class=\"empty\""));
        assert!(!chart.contains("<svg"));
    }
}
