//! A small SVG line chart: one line per run, a legend, and the values on hover. No JavaScript library: the
//! browser draws SVG natively, and the same markup renders on the server.

use athanor_core::compare::Series;
use leptos::prelude::*;

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 240.0;
const PAD_LEFT: f64 = 52.0;
const PAD_RIGHT: f64 = 12.0;
const PAD_TOP: f64 = 12.0;
const PAD_BOTTOM: f64 = 28.0;
/// Above this many runs, points get no hover markers (thousands of circles would slow the page for little use).
const MAX_RUNS_WITH_MARKERS: usize = 20;

/// One colour per run, distinguishable in light and dark themes; repeats after ten.
pub const PALETTE: [&str; 10] =
    ["#3b82f6", "#ef4444", "#10b981", "#f59e0b", "#8b5cf6", "#ec4899", "#14b8a6", "#f97316", "#6366f1", "#84cc16"];

fn format_tick(value: f64) -> String {
    if value.abs() >= 1000.0 || value == value.trunc() {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// A chart of `series`, whose lines belong to the runs called `names` (same order).
#[component]
pub fn LineChart(series: Series, names: Vec<String>) -> impl IntoView {
    let points = series.lines.iter().flatten();
    let (mut min_x, mut max_x, mut min_y, mut max_y) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in points {
        min_x = min_x.min(*x);
        max_x = max_x.max(*x);
        min_y = min_y.min(*y);
        max_y = max_y.max(*y);
    }
    if min_x > max_x {
        return view! { <p class="muted">{series.name} ": no points"</p> }.into_any();
    }
    if max_x == min_x {
        max_x = min_x + 1.0;
    }
    if max_y == min_y {
        max_y = min_y + 1.0;
    }
    let sx = move |x: f64| PAD_LEFT + (x - min_x) / (max_x - min_x) * (WIDTH - PAD_LEFT - PAD_RIGHT);
    let sy = move |y: f64| HEIGHT - PAD_BOTTOM - (y - min_y) / (max_y - min_y) * (HEIGHT - PAD_TOP - PAD_BOTTOM);
    let markers = series.lines.len() <= MAX_RUNS_WITH_MARKERS;

    let lines = series
        .lines
        .iter()
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(run, line)| {
            let color = PALETTE[run % PALETTE.len()];
            let name = names.get(run).cloned().unwrap_or_default();
            let path: String = line.iter().map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y))).collect::<Vec<_>>().join(" ");
            let dots = markers.then(|| {
                line.iter()
                    .map(|(x, y)| {
                        view! {
                            <circle cx=format!("{:.1}", sx(*x)) cy=format!("{:.1}", sy(*y)) r="3" fill=color class="point">
                                <title>{format!("{name}\nx = {}\ny = {}", format_tick(*x), y)}</title>
                            </circle>
                        }
                    })
                    .collect_view()
            });
            view! {
                <g class="line" data-run=run>
                    <polyline points=path fill="none" stroke=color stroke-width="2">
                        <title>{name.clone()}</title>
                    </polyline>
                    {dots}
                </g>
            }
        })
        .collect_view();
    let ticks = (0..=4)
        .map(|i| {
            let value = min_y + (max_y - min_y) * f64::from(i) / 4.0;
            let y = sy(value);
            view! {
                <g class="tick">
                    <line x1=PAD_LEFT x2=WIDTH - PAD_RIGHT y1=y y2=y class="grid-line" />
                    <text x=PAD_LEFT - 6.0 y=y + 4.0 text-anchor="end">{format_tick(value)}</text>
                </g>
            }
        })
        .collect_view();
    let legend = names
        .iter()
        .enumerate()
        .filter(|(run, _)| series.lines.get(*run).is_some_and(|line| !line.is_empty()))
        .map(|(run, name)| {
            let color = PALETTE[run % PALETTE.len()];
            view! {
                <li>
                    <span class="swatch" style=format!("background: {color}")></span>
                    {name.clone()}
                </li>
            }
        })
        .collect_view();
    view! {
        <figure class="chart card" data-series=series.name.clone()>
            <figcaption class="mono">{series.name.clone()}</figcaption>
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=format!("chart of {}", series.name)>
                {ticks}
                <text x=PAD_LEFT y=HEIGHT - 8.0 class="axis">{format_tick(min_x)}</text>
                <text x=WIDTH - PAD_RIGHT y=HEIGHT - 8.0 text-anchor="end" class="axis">{format_tick(max_x)}</text>
                {lines}
            </svg>
            <ul class="legend">{legend}</ul>
        </figure>
    }
    .into_any()
}
