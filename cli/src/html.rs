//! One self-contained HTML file drawing [`Timeline`]s: live sockets per backend and per TCP
//! state over time, the fd budget against the limit, when each finding first appeared, and
//! what grew, linked to the creating stacks.
//!
//! The charts are SVG written here, so the page shows everything with scripts off; a small
//! inline script adds a crosshair with the values under the pointer, highlights a series from
//! its legend, and opens a stack when its link is followed. No network, no external file:
//! CSS, SVG, data and script are inline, and the page opens from disk. Every string from a
//! report (program names, unix paths, function names) is escaped; the embedded JSON cannot
//! close its script element.
//!
//! Deterministic: a pure function of the timelines (no clock), so it can be golden-tested.

use std::fmt::Write as _;

use fdguard_report::Severity;
use fdguard_report::stacks::frame_line;
use fdguard_report::units::{duration, utc_from_unix_ms};
use serde_json::json;

use crate::timeline::{Growth, Row, Timeline, rate};

/// Backends drawn as their own series; the rest are summed as "other".
const TOP_BACKENDS: usize = 8;
/// Finding tracks drawn as lanes.
const MAX_LANES: usize = 16;
/// Stacks whose frames are listed.
const MAX_STACKS: usize = 50;

/// Series colours: the most-growing backend gets the first (red), so a leak stands out.
const PALETTE: [&str; 8] = [
    "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
const OTHER_COLOUR: &str = "#b0b0b0";

/// Chart geometry, in SVG user units.
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 30.0;

/// The colour of a TCP state's series: dead-but-held states in reds, healthy ones calm.
pub fn state_colour(state: &str) -> &'static str {
    match state {
        "CLOSE_WAIT" => "#d62728",
        "CLOSE" => "#7f0000",
        "LAST_ACK" | "CLOSING" | "TIME_WAIT" => "#ff9896",
        "ESTABLISHED" => "#2ca02c",
        "SYN_SENT" | "SYN_RECV" | "NEW_SYN_RECV" => "#ff7f0e",
        "FIN_WAIT1" | "FIN_WAIT2" => "#bcbd22",
        "LISTEN" => "#1f77b4",
        _ => OTHER_COLOUR,
    }
}

fn severity_colour(severity: Severity) -> &'static str {
    match severity {
        Severity::Leak => "#d62728",
        Severity::Warning => "#ff7f0e",
        Severity::Info => "#7f7f7f",
    }
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "&#x{:x};", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// JSON for a `<script type="application/json">` element: `</` cannot end the element.
fn script_json(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace("</", "<\\/")
        .replace("<!--", "<\\u0021--")
}

/// A round step for about `target` ticks up to `max`.
fn nice_step(max: f64, target: f64) -> f64 {
    let raw = (max / target).max(1e-9);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    step.max(1.0)
}

/// Time ticks: a round duration giving at most 8 ticks over `span_s`.
fn time_step(span_s: f64) -> f64 {
    const STEPS: [f64; 19] = [
        0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
        7200.0, 10800.0, 21600.0, 43200.0, 86400.0,
    ];
    STEPS
        .into_iter()
        .find(|s| span_s / s <= 8.0)
        .unwrap_or(86400.0 * (span_s / 86400.0 / 8.0).ceil())
}

/// `+2m00s` after the first sample.
fn offset_label(seconds: f64) -> String {
    if seconds == 0.0 {
        "0".to_string()
    } else {
        format!("+{}", duration(seconds))
    }
}

/// The horizontal layout of one timeline's charts.
struct Axis {
    /// Seconds after the first sample, per sample.
    offsets: Vec<f64>,
    span_s: f64,
}

impl Axis {
    fn of(timeline: &Timeline) -> Axis {
        let t0 = timeline.samples.first().map_or(0, |s| s.time_unix_ms);
        let offsets: Vec<f64> = timeline
            .samples
            .iter()
            .map(|s| s.time_unix_ms.saturating_sub(t0) as f64 / 1000.0)
            .collect();
        let span_s = offsets.last().copied().unwrap_or(0.0);
        Axis { offsets, span_s }
    }

    fn x(&self, offset_s: f64) -> f64 {
        let width = WIDTH - LEFT - RIGHT;
        if self.span_s <= 0.0 {
            LEFT + width / 2.0
        } else {
            LEFT + offset_s / self.span_s * width
        }
    }

    /// The x of each sample; a lone sample is drawn as a band across the middle half.
    fn xs(&self) -> Vec<f64> {
        if self.offsets.len() == 1 {
            let width = WIDTH - LEFT - RIGHT;
            return vec![LEFT + width * 0.25, LEFT + width * 0.75];
        }
        self.offsets.iter().map(|&o| self.x(o)).collect()
    }

    fn ticks(&self, svg: &mut String, bottom: f64) {
        if self.span_s <= 0.0 {
            let _ = write!(
                svg,
                r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="middle">one sample</text>"#,
                self.x(0.0),
                bottom + 18.0
            );
            return;
        }
        let step = time_step(self.span_s);
        let mut t = 0.0;
        while t <= self.span_s + 1e-9 {
            let x = self.x(t);
            // A label at the right edge would be cut: it ends there instead.
            let anchor = if x > WIDTH - RIGHT - 40.0 {
                "end"
            } else {
                "middle"
            };
            let _ = write!(
                svg,
                r#"<line class="grid" x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{bottom:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
                bottom + 18.0,
                escape(&offset_label(t))
            );
            t += step;
        }
    }
}

/// One drawn series.
struct Series {
    name: String,
    colour: String,
    values: Vec<f64>,
}

fn y_of(value: f64, max: f64) -> f64 {
    let height = HEIGHT - TOP - BOTTOM;
    TOP + height - value / max * height
}

fn y_ticks(svg: &mut String, max: f64, step: f64) {
    let mut v = 0.0;
    while v <= max + 1e-9 {
        let y = y_of(v, max);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            v as u64
        );
        v += step;
    }
}

/// The data the script needs to show values under the pointer.
fn chart_data(axis: &Axis, series: &[Series]) -> serde_json::Value {
    let xs = axis.xs();
    let labels: Vec<String> = if axis.offsets.len() == 1 {
        vec![offset_label(0.0); 2]
    } else {
        axis.offsets.iter().map(|&o| offset_label(o)).collect()
    };
    let stretch = |v: &Vec<f64>| -> Vec<f64> {
        if axis.offsets.len() == 1 {
            vec![v[0], v[0]]
        } else {
            v.clone()
        }
    };
    let all: Vec<serde_json::Value> = series
        .iter()
        .map(|s| json!({"name": s.name, "colour": s.colour, "values": stretch(&s.values)}))
        .collect();
    json!({"x": xs, "t": labels, "series": all})
}

/// A stacked-area chart; returns the SVG and its script data.
fn stacked_chart(
    id: usize,
    title: &str,
    axis: &Axis,
    series: &[Series],
    markers: &[(f64, String, &'static str)],
) -> (String, serde_json::Value) {
    let n = axis.offsets.len();
    let totals: Vec<f64> = (0..n)
        .map(|i| series.iter().map(|s| s.values[i]).sum())
        .collect();
    let top = totals.iter().copied().fold(0.0, f64::max).max(1.0);
    let step = nice_step(top, 5.0);
    let max = (top / step).ceil() * step;
    let bottom = HEIGHT - BOTTOM;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" data-chart="{id}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" preserveAspectRatio="xMidYMid meet">"#,
        escape(title)
    );
    y_ticks(&mut svg, max, step);
    axis.ticks(&mut svg, bottom);
    let xs = axis.xs();
    let mut lower = vec![0.0; n];
    for (index, s) in series.iter().enumerate() {
        let upper: Vec<f64> = (0..n).map(|i| lower[i] + s.values[i]).collect();
        let pick = |v: &[f64], i: usize| if n == 1 { v[0] } else { v[i] };
        let mut points = String::new();
        for (i, x) in xs.iter().enumerate() {
            let _ = write!(points, "{x:.1},{:.1} ", y_of(pick(&upper, i), max));
        }
        for (i, x) in xs.iter().enumerate().rev() {
            let _ = write!(points, "{x:.1},{:.1} ", y_of(pick(&lower, i), max));
        }
        let _ = write!(
            svg,
            r#"<polygon class="area" data-series="{index}" fill="{}" points="{}"><title>{}</title></polygon>"#,
            s.colour,
            points.trim_end(),
            escape(&s.name)
        );
        lower = upper;
    }
    for (offset, label, colour) in markers {
        let x = axis.x(*offset);
        let _ = write!(
            svg,
            r#"<line class="marker" x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{bottom:.1}" stroke="{colour}"/><text class="marker-label" x="{:.1}" y="{:.1}" fill="{colour}">{}</text>"#,
            x + 3.0,
            TOP + 10.0,
            escape(label)
        );
    }
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{LEFT}" x2="{:.1}" y1="{bottom:.1}" y2="{bottom:.1}"/><line class="cursor" x1="0" x2="0" y1="{TOP}" y2="{bottom:.1}" visibility="hidden"/></svg>"#,
        WIDTH - RIGHT
    );
    (svg, chart_data(axis, series))
}

fn legend(series: &[Series], chart: usize) -> String {
    let mut out = format!(r#"<ul class="legend" data-legend="{chart}">"#);
    for (index, s) in series.iter().enumerate() {
        let last = s.values.last().copied().unwrap_or(0.0);
        let _ = write!(
            out,
            r#"<li data-series="{index}"><span class="swatch" style="background:{}"></span>{} <span class="dim">{}</span></li>"#,
            s.colour,
            escape(&s.name),
            last as u64
        );
    }
    out.push_str("</ul>");
    out
}

/// Open fds over time, against the soft limit when the limit is on the same scale.
fn budget_chart(
    id: usize,
    timeline: &Timeline,
    axis: &Axis,
) -> (String, serde_json::Value, String) {
    let fds: Vec<f64> = timeline.samples.iter().map(|s| s.open_fds as f64).collect();
    let limit = timeline.samples.last().map_or(u64::MAX, |s| s.limit_soft);
    let peak = fds.iter().copied().fold(0.0, f64::max).max(1.0);
    let limit_shown = limit != u64::MAX && (limit as f64) <= peak * 4.0;
    let top = if limit_shown {
        (limit as f64).max(peak)
    } else {
        peak
    };
    let step = nice_step(top, 5.0);
    let max = (top / step).ceil() * step;
    let bottom = HEIGHT - BOTTOM;
    let mut svg = format!(
        r#"<svg class="chart" data-chart="{id}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="open fds" preserveAspectRatio="xMidYMid meet">"#
    );
    y_ticks(&mut svg, max, step);
    axis.ticks(&mut svg, bottom);
    let xs = axis.xs();
    let pick = |i: usize| if fds.len() == 1 { fds[0] } else { fds[i] };
    let mut points = String::new();
    for (i, x) in xs.iter().enumerate() {
        let _ = write!(points, "{x:.1},{:.1} ", y_of(pick(i), max));
    }
    let _ = write!(
        svg,
        r#"<polyline class="line" data-series="0" fill="none" stroke="{}" points="{}"/>"#,
        PALETTE[1],
        points.trim_end()
    );
    let note = if limit_shown {
        let y = y_of(limit as f64, max);
        let _ = write!(
            svg,
            r##"<line class="limit" x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/><text class="marker-label" x="{:.1}" y="{:.1}" fill="#d62728" text-anchor="end">limit {limit}</text>"##,
            WIDTH - RIGHT,
            WIDTH - RIGHT - 4.0,
            y - 4.0
        );
        format!("soft limit {limit} (dashed)")
    } else if limit == u64::MAX {
        "no fd limit".to_string()
    } else {
        let last = fds.last().copied().unwrap_or(0.0);
        format!(
            "soft limit {limit}, off this scale: {:.2}% in use at the end",
            last * 100.0 / limit as f64
        )
    };
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{LEFT}" x2="{:.1}" y1="{bottom:.1}" y2="{bottom:.1}"/><line class="cursor" x1="0" x2="0" y1="{TOP}" y2="{bottom:.1}" visibility="hidden"/></svg>"#,
        WIDTH - RIGHT
    );
    let series = [Series {
        name: "open fds".to_string(),
        colour: PALETTE[1].to_string(),
        values: fds,
    }];
    (svg, chart_data(axis, &series), note)
}

/// One lane per finding track: from its first appearance to the last sample that had it.
fn findings_chart(timeline: &Timeline, axis: &Axis) -> String {
    // Leaks first, then warnings, then context; within each, in order of appearance.
    let mut tracks: Vec<_> = timeline.findings.iter().collect();
    tracks.sort_by_key(|t| (t.severity, t.first_sample));
    tracks.truncate(MAX_LANES);
    if tracks.is_empty() {
        return r#"<p class="dim">No finding in any sample.</p>"#.to_string();
    }
    const LANE: f64 = 30.0;
    let height = TOP + LANE * tracks.len() as f64 + BOTTOM;
    let bottom = height - BOTTOM;
    let t0 = timeline.samples.first().map_or(0, |s| s.time_unix_ms);
    let mut svg = format!(
        r#"<svg class="lanes" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="findings over time" preserveAspectRatio="xMidYMid meet">"#
    );
    axis.ticks(&mut svg, bottom);
    for (lane, track) in tracks.iter().enumerate() {
        let y = TOP + LANE * lane as f64;
        let first = track.first_unix_ms.saturating_sub(t0) as f64 / 1000.0;
        let last = track.last_unix_ms.saturating_sub(t0) as f64 / 1000.0;
        let (x1, x2) = if axis.span_s <= 0.0 {
            (axis.x(0.0) - 6.0, axis.x(0.0) + 6.0)
        } else {
            (axis.x(first), axis.x(last).max(axis.x(first) + 3.0))
        };
        let colour = severity_colour(track.severity);
        let label = format!(
            "{} {} — first at {}, {} in the last sample that had it",
            track.kind.as_str(),
            track.subject,
            offset_label(first),
            track.last_count
        );
        let _ = write!(
            svg,
            r#"<text class="lane-label" x="{LEFT}" y="{:.1}">{}</text><rect x="{x1:.1}" y="{:.1}" width="{:.1}" height="8" fill="{colour}"><title>{}</title></rect><circle cx="{x1:.1}" cy="{:.1}" r="5" fill="{colour}"/>"#,
            y + 11.0,
            escape(&label),
            y + 15.0,
            x2 - x1,
            escape(&track.example),
            y + 19.0
        );
    }
    svg.push_str("</svg>");
    svg
}

fn growth_table(title: &str, rows: &[Row], pid: i32, empty: &str) -> String {
    let mut out = format!("<h3>{}</h3>", escape(title));
    if rows.is_empty() {
        let _ = write!(out, r#"<p class="dim">{}</p>"#, escape(empty));
        return out;
    }
    out.push_str(
        "<table><thead><tr><th>what</th><th>first</th><th>last</th><th>peak</th><th>change</th><th>rate</th></tr></thead><tbody>",
    );
    for row in rows {
        let c = &row.change;
        let name = match row.stack {
            Some(id) => format!(r##"<a href="#stack-{pid}-{id}">{}</a>"##, escape(&row.name)),
            None => escape(&row.name),
        };
        let detail = row
            .detail
            .as_ref()
            .map(|d| format!(r#" <span class="dim">({})</span>"#, escape(d)))
            .unwrap_or_default();
        let _ = write!(
            out,
            r#"<tr><td>{name}{detail}</td><td>{}</td><td>{}</td><td>{}</td><td class="grew">+{}</td><td>{}</td></tr>"#,
            c.first,
            c.last,
            c.peak,
            c.delta,
            escape(&rate(c.per_minute))
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// The top backends by growth (then size), the rest summed as "other".
fn backend_series(timeline: &Timeline, growth: &Growth) -> Vec<Series> {
    let mut names: Vec<String> = growth.backends.iter().map(|r| r.name.clone()).collect();
    let mut rest: Vec<(u64, String)> = timeline
        .samples
        .iter()
        .flat_map(|s| s.by_backend.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|n| !names.contains(n))
        .map(|n| {
            let peak = timeline
                .samples
                .iter()
                .map(|s| s.by_backend.get(&n).copied().unwrap_or(0))
                .max()
                .unwrap_or(0);
            (peak, n)
        })
        .collect();
    rest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    names.extend(rest.into_iter().map(|(_, n)| n));
    let shown: Vec<String> = names.iter().take(TOP_BACKENDS).cloned().collect();
    let mut series: Vec<Series> = shown
        .iter()
        .enumerate()
        .map(|(i, name)| Series {
            name: name.clone(),
            colour: PALETTE[i % PALETTE.len()].to_string(),
            values: timeline
                .samples
                .iter()
                .map(|s| s.by_backend.get(name).copied().unwrap_or(0) as f64)
                .collect(),
        })
        .collect();
    if names.len() > TOP_BACKENDS {
        series.push(Series {
            name: format!("{} other backends", names.len() - TOP_BACKENDS),
            colour: OTHER_COLOUR.to_string(),
            values: timeline
                .samples
                .iter()
                .map(|s| {
                    s.by_backend
                        .iter()
                        .filter(|(n, _)| !shown.contains(n))
                        .map(|(_, v)| *v)
                        .sum::<u64>() as f64
                })
                .collect(),
        });
    }
    series
}

fn state_series(timeline: &Timeline) -> Vec<Series> {
    let names: std::collections::BTreeSet<String> = timeline
        .samples
        .iter()
        .flat_map(|s| s.by_state.keys().cloned())
        .collect();
    // Dead-but-held states at the bottom, where growth shows first.
    let order = |n: &str| match n {
        "CLOSE_WAIT" => 0,
        "CLOSE" => 1,
        "LAST_ACK" | "CLOSING" | "TIME_WAIT" => 2,
        "ESTABLISHED" => 4,
        "LISTEN" => 6,
        "not TCP" => 7,
        _ => 3,
    };
    let mut names: Vec<String> = names.into_iter().collect();
    names.sort_by(|a, b| order(a).cmp(&order(b)).then(a.cmp(b)));
    names
        .into_iter()
        .map(|name| Series {
            colour: state_colour(&name).to_string(),
            values: timeline
                .samples
                .iter()
                .map(|s| s.by_state.get(&name).copied().unwrap_or(0) as f64)
                .collect(),
            name,
        })
        .collect()
}

fn section(out: &mut String, charts: &mut Vec<serde_json::Value>, timeline: &Timeline) {
    let growth = timeline.growth();
    let axis = Axis::of(timeline);
    let pid = timeline.pid;
    let how = if growth.collectors.iter().all(|c| c == "inspect") {
        "seen from outside (fdguard inspect): no creating stacks"
    } else {
        "reports from libfdguard.so"
    };
    let first = timeline.samples.first().map_or(0, |s| s.time_unix_ms);
    let _ = write!(
        out,
        r#"<section class="process" id="pid-{pid}"><h2>{} <span class="dim">pid {pid}</span></h2><p class="meta">{} sample{} over {}, from {} — {how}</p>"#,
        escape(&timeline.program),
        growth.samples,
        if growth.samples == 1 { "" } else { "s" },
        escape(&duration(growth.span_s)),
        escape(&utc_from_unix_ms(first))
    );
    let live = &growth.live_sockets;
    let verdict = match growth.backends.first() {
        Some(top) => format!(
            r#"<strong class="grew">growing: {} +{} ({})</strong>"#,
            escape(&top.name),
            top.change.delta,
            escape(&rate(top.change.per_minute))
        ),
        None => r#"<strong>no backend grew</strong>"#.to_string(),
    };
    let _ = write!(
        out,
        r#"<p class="headline">live sockets {} → {} ({}{}, {}) · fds {} → {} of {} · {verdict}</p>"#,
        live.first,
        live.last,
        if live.delta >= 0 { "+" } else { "" },
        live.delta,
        escape(&rate(live.per_minute)),
        growth.open_fds.first,
        growth.open_fds.last,
        if growth.limit_soft == u64::MAX {
            "unlimited".to_string()
        } else {
            growth.limit_soft.to_string()
        }
    );

    let markers: Vec<(f64, String, &'static str)> = timeline
        .findings
        .iter()
        .filter(|t| t.severity == Severity::Leak && t.first_sample > 0)
        .take(4)
        .map(|t| {
            (
                t.first_unix_ms.saturating_sub(first) as f64 / 1000.0,
                t.kind.as_str().to_string(),
                severity_colour(t.severity),
            )
        })
        .collect();
    let backends = backend_series(timeline, &growth);
    let id = charts.len();
    let (svg, data) = stacked_chart(id, "live sockets per backend", &axis, &backends, &markers);
    charts.push(data);
    let _ = write!(
        out,
        r#"<h3>Live sockets per backend</h3><div class="figure">{svg}</div>{}"#,
        legend(&backends, id)
    );

    let states = state_series(timeline);
    let id = charts.len();
    let (svg, data) = stacked_chart(id, "live sockets per TCP state", &axis, &states, &[]);
    charts.push(data);
    let _ = write!(
        out,
        r#"<h3>Live sockets per TCP state</h3><div class="figure">{svg}</div>{}"#,
        legend(&states, id)
    );

    let id = charts.len();
    let (svg, data, note) = budget_chart(id, timeline, &axis);
    charts.push(data);
    let _ = write!(
        out,
        r#"<h3>fd budget</h3><div class="figure">{svg}</div><p class="dim">open fds; {}</p>"#,
        escape(&note)
    );

    let _ = write!(
        out,
        r#"<h3>Findings: when each first appeared</h3><div class="figure">{}</div>"#,
        findings_chart(timeline, &axis)
    );

    out.push_str(&growth_table(
        "What grew, per backend",
        &growth.backends,
        pid,
        "No backend grew.",
    ));
    if growth.stackless {
        out.push_str(
            r#"<h3>What grew, per creating stack</h3><p class="dim">No stacks: the process was seen from outside. Run it under libfdguard.so (<code>fdguard run</code>) to see the stacks that create sockets.</p>"#,
        );
    } else {
        out.push_str(&growth_table(
            "What grew, per creating stack",
            &growth.stacks,
            pid,
            "No creating stack grew.",
        ));
    }
    out.push_str(&growth_table(
        "What grew, per TCP state",
        &growth.states,
        pid,
        "No state grew.",
    ));

    if !timeline.stacks.is_empty() {
        out.push_str("<h3>Creating stacks</h3>");
        for (id, stack) in timeline.stacks.iter().enumerate().take(MAX_STACKS) {
            let grew = growth.stacks.iter().any(|r| r.stack == Some(id));
            let mut frames = String::new();
            for (index, frame) in stack.frames.iter().enumerate() {
                let _ = writeln!(frames, "{}", frame_line(index, frame, true));
            }
            if frames.is_empty() {
                frames.push_str("(no frames)\n");
            }
            let _ = write!(
                out,
                r#"<details id="stack-{pid}-{id}"{}><summary>{}{}</summary><pre>{}</pre></details>"#,
                if grew { " open" } else { "" },
                escape(&stack.summary),
                if grew {
                    r#" <span class="grew">grew</span>"#
                } else {
                    ""
                },
                escape(&frames)
            );
        }
        if timeline.stacks.len() > MAX_STACKS {
            let _ = write!(
                out,
                r#"<p class="dim">… and {} more stacks (see the JSON samples).</p>"#,
                timeline.stacks.len() - MAX_STACKS
            );
        }
    }
    out.push_str("</section>");
}

const STYLE: &str = r###"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;background:#fff;margin:0 auto;max-width:1000px;padding:16px 20px 40px}
h1{font-size:22px;margin:4px 0}h2{font-size:18px;margin:28px 0 4px;border-top:1px solid #ddd;padding-top:14px}h3{font-size:15px;margin:20px 0 6px}
.dim{color:#777;font-weight:normal}.meta{margin:0;color:#555}.headline{font-size:15px;margin:8px 0}.grew{color:#c00}
.figure{position:relative}svg{width:100%;height:auto;display:block}
.grid{stroke:#eee;stroke-width:1}.axis{stroke:#888;stroke-width:1}.tick{font-size:11px;fill:#666}
.area{stroke:#fff;stroke-width:.5}.area.faded,.line.faded{opacity:.2}.line{stroke-width:2.5}
.marker{stroke-width:1.5;stroke-dasharray:5 3}.marker-label{font-size:11px}.limit{stroke:#d62728;stroke-width:1.5;stroke-dasharray:6 4}
.cursor{stroke:#333;stroke-width:1}.lane-label{font-size:12px;fill:#333}
.legend{list-style:none;padding:0;margin:6px 0 0;display:flex;flex-wrap:wrap;gap:4px 16px;font-size:13px}.legend li{cursor:default}
.swatch{display:inline-block;width:11px;height:11px;margin-right:5px;vertical-align:-1px;border-radius:2px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eee}th{color:#555;font-weight:600}
td:nth-child(n+2),th:nth-child(n+2){text-align:right;white-space:nowrap}
details{margin:4px 0}summary{cursor:pointer}pre{font-size:12px;background:#f7f7f7;padding:8px;overflow-x:auto;margin:4px 0}
#tip{position:fixed;pointer-events:none;background:rgba(255,255,255,.96);border:1px solid #bbb;border-radius:4px;padding:6px 8px;font-size:12px;box-shadow:0 2px 6px rgba(0,0,0,.15);display:none;z-index:9}
#tip b{display:block;margin-bottom:2px}#script-errors{color:#c00}
"###;

const SCRIPT: &str = r###"
(function () {
  "use strict";
  var errors = [];
  function report(message) {
    errors.push(String(message));
    var box = document.getElementById("script-errors");
    box.hidden = false;
    box.textContent = errors.join("\n");
    document.body.setAttribute("data-rendered", "error");
  }
  window.addEventListener("error", function (e) { report(e.message); });
  try {
    var data = JSON.parse(document.getElementById("fdguard-data").textContent);
    var tip = document.getElementById("tip");
    Array.prototype.forEach.call(document.querySelectorAll("svg.chart"), function (svg) {
      var chart = data.charts[Number(svg.getAttribute("data-chart"))];
      var cursor = svg.querySelector(".cursor");
      svg.addEventListener("mousemove", function (e) {
        var point = svg.createSVGPoint();
        point.x = e.clientX; point.y = e.clientY;
        var local = point.matrixTransform(svg.getScreenCTM().inverse());
        var best = 0;
        for (var i = 1; i < chart.x.length; i++) {
          if (Math.abs(chart.x[i] - local.x) < Math.abs(chart.x[best] - local.x)) { best = i; }
        }
        cursor.setAttribute("x1", chart.x[best]); cursor.setAttribute("x2", chart.x[best]);
        cursor.setAttribute("visibility", "visible");
        var lines = chart.series.map(function (s) {
          return '<span style="color:' + s.colour + '">\u25A0</span> ' + escapeText(s.name) + ": " + s.values[best];
        });
        tip.innerHTML = "<b>" + escapeText(chart.t[best]) + "</b>" + lines.join("<br>");
        tip.style.display = "block";
        tip.style.left = Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 8) + "px";
        tip.style.top = (e.clientY + 14) + "px";
      });
      svg.addEventListener("mouseleave", function () {
        cursor.setAttribute("visibility", "hidden");
        tip.style.display = "none";
      });
    });
    Array.prototype.forEach.call(document.querySelectorAll("ul.legend"), function (legend) {
      var svg = document.querySelector('svg.chart[data-chart="' + legend.getAttribute("data-legend") + '"]');
      Array.prototype.forEach.call(legend.querySelectorAll("li"), function (item) {
        var index = item.getAttribute("data-series");
        item.addEventListener("mouseenter", function () {
          Array.prototype.forEach.call(svg.querySelectorAll("[data-series]"), function (shape) {
            if (shape.getAttribute("data-series") !== index) { shape.classList.add("faded"); }
          });
        });
        item.addEventListener("mouseleave", function () {
          Array.prototype.forEach.call(svg.querySelectorAll(".faded"), function (shape) { shape.classList.remove("faded"); });
        });
      });
    });
    Array.prototype.forEach.call(document.querySelectorAll('a[href^="#stack-"]'), function (link) {
      link.addEventListener("click", function () {
        var target = document.getElementById(link.getAttribute("href").slice(1));
        if (target) { target.open = true; }
      });
    });
    if (!errors.length) { document.body.setAttribute("data-rendered", "ok"); }
  } catch (e) {
    report(e && e.stack ? e.stack : e);
  }
  function escapeText(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
})();
"###;

/// The whole page for `timelines` (one section per process).
pub fn render(timelines: &[Timeline]) -> String {
    let mut body = String::new();
    let mut charts = Vec::new();
    for timeline in timelines {
        section(&mut body, &mut charts, timeline);
    }
    let title = match timelines {
        [one] => format!("fdguard timeline: {} (pid {})", one.program, one.pid),
        _ => format!("fdguard timeline: {} processes", timelines.len()),
    };
    let data = json!({ "charts": charts });
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\"><title>{}</title><style>{STYLE}</style></head>\n<body data-rendered=\"static\"><h1>fdguard timeline</h1><p class=\"dim\">Written by fdguard {}. Hover a chart for the values at a sample; hover a legend entry to single out its series.</p><pre id=\"script-errors\" hidden></pre>{body}<div id=\"tip\"></div>\n<script type=\"application/json\" id=\"fdguard-data\">{}</script>\n<script>{SCRIPT}</script></body></html>\n",
        escape(&title),
        env!("CARGO_PKG_VERSION"),
        script_json(&data)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("tab\tline\nbell\u{7}"), "tab\tline\nbell&#x7;");
        let value = json!({"name": "</script><script>alert(1)</script><!--"});
        let text = script_json(&value);
        assert!(!text.contains("</"), "{text}");
        assert!(!text.contains("<!--"), "{text}");
        let back: serde_json::Value =
            serde_json::from_str(&text.replace("<\\/", "</").replace("<\\u0021--", "<!--"))
                .unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_step(13.0, 5.0), 5.0);
        assert_eq!(nice_step(3.0, 5.0), 1.0);
        assert_eq!(nice_step(1200.0, 5.0), 500.0);
        assert_eq!(time_step(10.0), 2.0);
        assert_eq!(time_step(600.0), 120.0);
        assert_eq!(time_step(7200.0), 900.0);
    }

    #[test]
    fn an_empty_page_is_still_a_page() {
        let page = render(&[]);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("id=\"fdguard-data\""));
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no network"
        );
    }
}
