//! Charts drawn on the server as SVG. Labels are text nodes and attribute values, so
//! Leptos escapes them like any other text.

use leptos::prelude::*;

use crate::format;

/// Colours for series, distinguishable and readable on white.
pub const PALETTE: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
];

/// One dot of the search scatter plot.
pub struct Dot {
    pub start_ns: u64,
    pub duration_us: u64,
    pub error: bool,
    pub href: String,
    pub label: String,
}

const W: f64 = 960.0;
const H: f64 = 240.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// Width of a time-series chart's view box: about the width it is shown at (two charts
/// side by side on a wide screen, one on a narrow one), so its 12 px axis text stays
/// about 12 px on screen instead of shrinking with a wider drawing.
const LINES_W: f64 = 640.0;
/// Below this many points in its fullest series a chart says it has few data.
pub const FEW_POINTS: usize = 3;

fn axes(y_max_label: String, y_mid_label: String, x_from: String, x_to: String) -> impl IntoView {
    axes_w(W, y_max_label, y_mid_label, x_from, x_to)
}

fn axes_w(w: f64, y_max_label: String, y_mid_label: String, x_from: String, x_to: String) -> impl IntoView {
    let plot_h = H - TOP - BOTTOM;
    view! {
        <line class="axis" x1=LEFT y1=TOP x2=LEFT y2=H - BOTTOM/>
        <line class="axis" x1=LEFT y1=H - BOTTOM x2=w - RIGHT y2=H - BOTTOM/>
        <line class="grid" x1=LEFT y1=TOP x2=w - RIGHT y2=TOP/>
        <line class="grid" x1=LEFT y1=TOP + plot_h / 2.0 x2=w - RIGHT y2=TOP + plot_h / 2.0/>
        <text class="tick" x=LEFT - 6.0 y=TOP + 4.0 text-anchor="end">{y_max_label}</text>
        <text class="tick" x=LEFT - 6.0 y=TOP + plot_h / 2.0 + 4.0 text-anchor="end">{y_mid_label}</text>
        <text class="tick" x=LEFT - 6.0 y=H - BOTTOM + 4.0 text-anchor="end">"0"</text>
        <text class="tick" x=LEFT y=H - 8.0>{x_from}</text>
        <text class="tick" x=w - RIGHT y=H - 8.0 text-anchor="end">{x_to}</text>
    }
}

/// Duration over time, one dot per trace linking to it; failed traces in red.
pub fn scatter(dots: &[Dot]) -> impl IntoView + use<> {
    let t0 = dots.iter().map(|d| d.start_ns).min().unwrap_or(0);
    let t1 = dots.iter().map(|d| d.start_ns).max().unwrap_or(0).max(t0 + 1);
    let y_max = dots.iter().map(|d| d.duration_us).max().unwrap_or(1).max(1);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let circles = dots
        .iter()
        .map(|d| {
            let cx = LEFT + (d.start_ns - t0) as f64 / (t1 - t0) as f64 * plot_w;
            let cy = H - BOTTOM - d.duration_us as f64 / y_max as f64 * plot_h;
            let class = if d.error { "dot error" } else { "dot" };
            let title = format!("{} — {}{}", d.label, format::duration_us(d.duration_us), if d.error { ", failed" } else { "" });
            view! {
                <a href=d.href.clone()>
                    <circle class=class cx=format!("{cx:.1}") cy=format!("{cy:.1}") r="5"><title>{title}</title></circle>
                </a>
            }
        })
        .collect_view();
    let view_box = format!("0 0 {W} {H}");
    view! {
        <svg class="chart" viewBox=view_box role="img" aria-label="Trace duration over time; each dot links to its trace, failed traces are red">
            {axes(format::duration_us(y_max), format::duration_us(y_max / 2), format::time_ns(t0), format::clock_ns(t1))}
            {circles}
        </svg>
    }
}

/// One line of a time-series chart.
pub struct Series {
    pub label: String,
    /// `(time ns, value)`, ascending.
    pub points: Vec<(u64, f64)>,
}

/// Several series over `[t0, t1]`; `unit` formats the y axis (one unit for every tick).
/// The y axis goes up to at least `y_floor`. Every point is drawn as a dot, so a series
/// of one point still shows; with fewer than [`FEW_POINTS`] points in every series the
/// chart says "few data" and how many points it has.
pub fn lines(
    title: &str,
    series: &[Series],
    t0: u64,
    t1: u64,
    y_floor: f64,
    unit: fn(f64) -> String,
) -> impl IntoView + use<> {
    let w = LINES_W;
    let t1 = t1.max(t0 + 1);
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(y_floor)
        .max(1e-9);
    let plot_w = w - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let most_points = series.iter().map(|s| s.points.len()).max().unwrap_or(0);
    let few = most_points < FEW_POINTS;
    let radius = if most_points < 30 { "4" } else { "2.5" };
    let paths = series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let colour = PALETTE[i % PALETTE.len()];
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .map(|&(t, v)| {
                    (
                        LEFT + (t.saturating_sub(t0)) as f64 / (t1 - t0) as f64 * plot_w,
                        H - BOTTOM - v / y_max * plot_h,
                    )
                })
                .collect();
            let d = pts
                .iter()
                .enumerate()
                .map(|(k, (x, y))| format!("{}{x:.1},{y:.1}", if k == 0 { "M" } else { "L" }))
                .collect::<Vec<_>>()
                .join(" ");
            let marks = pts
                .iter()
                .zip(&s.points)
                .map(|((x, y), (t, v))| {
                    let tip = format!("{} at {}: {}", s.label, format::clock_ns(*t), unit(*v));
                    view! { <circle class="point" cx=format!("{x:.1}") cy=format!("{y:.1}") r=radius fill=colour><title>{tip}</title></circle> }
                })
                .collect_view();
            view! {
                <g>
                    <path d=d fill="none" stroke=colour stroke-width="2"><title>{s.label.clone()}</title></path>
                    {marks}
                </g>
            }
        })
        .collect_view();
    let few_note = few.then(|| {
        let text = format!(
            "few data: {most_points} point{} — choose a finer resolution or a longer time range",
            if most_points == 1 { "" } else { "s" }
        );
        view! { <text class="few" x=LEFT + plot_w / 2.0 y=TOP + 16.0 text-anchor="middle">{text}</text> }
    });
    let legend = series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let style = format!("background:{}", PALETTE[i % PALETTE.len()]);
            view! { <li><span class="swatch" style=style></span>{s.label.clone()}</li> }
        })
        .collect_view();
    let view_box = format!("0 0 {w} {H}");
    let label = title.to_owned();
    view! {
        <figure class="chart">
            <figcaption>{label.clone()}</figcaption>
            <svg class="chart" viewBox=view_box role="img" aria-label=label>
                {axes_w(w, unit(y_max), unit(y_max / 2.0), format::time_ns(t0), format::clock_ns(t1))}
                {paths}
                {few_note}
            </svg>
            <ul class="legend">{legend}</ul>
        </figure>
    }
}
