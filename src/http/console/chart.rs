//! Small SVG charts drawn on the server: stacked bars (executions, failures and denies per
//! time bucket) and lines (queue depth per tenant). Only numbers and fixed class names go
//! into the SVG; labels are escaped. Colours come from the stylesheet (classes), so the
//! charts need no inline style.

use maud::{Markup, html};

const W: f64 = 640.0;
const H: f64 = 170.0;
const LEFT: f64 = 34.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 22.0;

/// One series of a stacked bar chart: a CSS class suffix (`succeeded`, `failed`, …) and a
/// value per bucket.
pub struct Stack<'a> {
    /// Class suffix: `c-<class>` colours it.
    pub class: &'a str,
    /// Name in tooltips and the legend.
    pub label: &'a str,
    /// One value per bucket.
    pub values: Vec<u64>,
}

/// A "nice" ceiling for the y axis.
fn ceiling(max: u64) -> u64 {
    if max <= 4 {
        return 4;
    }
    let mag = 10u64.pow((max as f64).log10().floor() as u32);
    for step in [1, 2, 5, 10] {
        let c = step * mag;
        if c >= max {
            return c;
        }
    }
    max
}

fn frame(max: u64, labels: &[String], every: usize) -> Markup {
    let plot_h = H - TOP - BOTTOM;
    let n = labels.len().max(1) as f64;
    let bw = (W - LEFT - RIGHT) / n;
    html! {
        @for i in 0..=4u64 {
            @let y = TOP + plot_h - plot_h * (i as f64) / 4.0;
            line.grid x1=(LEFT) x2=(W - RIGHT) y1=(y) y2=(y) {}
            text x=(LEFT - 4.0) y=(y + 3.0) text-anchor="end" { (max * i / 4) }
        }
        line.axis x1=(LEFT) x2=(W - RIGHT) y1=(TOP + plot_h) y2=(TOP + plot_h) {}
        @for (i, l) in labels.iter().enumerate() {
            @if i % every.max(1) == 0 {
                text x=(LEFT + bw * (i as f64 + 0.5)) y=(H - 6.0) text-anchor="middle" { (l) }
            }
        }
    }
}

/// Stacked bars, one per label, with a legend.
pub fn stacked_bars(title: &str, labels: &[String], stacks: &[Stack<'_>], every: usize) -> Markup {
    let n = labels.len();
    let totals: Vec<u64> = (0..n)
        .map(|i| {
            stacks
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let max = ceiling(totals.iter().copied().max().unwrap_or(0));
    let plot_h = H - TOP - BOTTOM;
    let bw = (W - LEFT - RIGHT) / n.max(1) as f64;
    let scale = |v: u64| plot_h * v as f64 / max as f64;
    html! {
        svg.chart viewBox={"0 0 " (W) " " (H)} role="img" aria-label=(title) xmlns="http://www.w3.org/2000/svg" {
            title { (title) }
            (frame(max, labels, every))
            @for i in 0..n {
                @let mut y = TOP + plot_h;
                @for s in stacks {
                    @let v = s.values.get(i).copied().unwrap_or(0);
                    @if v > 0 {
                        @let h = scale(v);
                        @let top = { y -= h; y };
                        rect class={"c-" (s.class)} x=(LEFT + bw * i as f64 + 1.0) y=(top) width=((bw - 2.0).max(1.0)) height=(h) {
                            title { (labels[i]) ": " (v) " " (s.label) }
                        }
                    }
                }
            }
        }
        div.legend {
            @for s in stacks {
                span class={"k-" (s.class)} { (s.label) " " (s.values.iter().sum::<u64>()) }
            }
        }
    }
}

/// Lines, one per series (at most six colours, then they repeat), with a legend.
pub fn lines(
    title: &str,
    labels: &[String],
    series: &[(String, Vec<u64>)],
    every: usize,
) -> Markup {
    let n = labels.len();
    let max = ceiling(
        series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .max()
            .unwrap_or(0),
    );
    let plot_h = H - TOP - BOTTOM;
    let bw = (W - LEFT - RIGHT) / n.max(1) as f64;
    html! {
        svg.chart viewBox={"0 0 " (W) " " (H)} role="img" aria-label=(title) xmlns="http://www.w3.org/2000/svg" {
            title { (title) }
            (frame(max, labels, every))
            @for (k, (name, values)) in series.iter().enumerate() {
                @let points = values.iter().enumerate().map(|(i, v)| {
                    format!("{:.1},{:.1}", LEFT + bw * (i as f64 + 0.5), TOP + plot_h - plot_h * *v as f64 / max as f64)
                }).collect::<Vec<_>>().join(" ");
                polyline class={"line l" (k % 6)} points=(points) {
                    title { (name) }
                }
            }
        }
        div.legend {
            @for (k, (name, values)) in series.iter().enumerate() {
                span class={"k-l" (k % 6)} { (name) " now " (values.last().copied().unwrap_or(0)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_a_round_ceiling_and_escape_labels() {
        assert_eq!(ceiling(0), 4);
        assert_eq!(ceiling(7), 10);
        assert_eq!(ceiling(11), 20);
        assert_eq!(ceiling(480), 500);
        let labels = vec!["<b>".to_owned(), "12:00".into()];
        let svg = stacked_bars(
            "t",
            &labels,
            &[
                Stack {
                    class: "succeeded",
                    label: "ok",
                    values: vec![3, 0],
                },
                Stack {
                    class: "failed",
                    label: "failed",
                    values: vec![1, 2],
                },
            ],
            1,
        )
        .into_string();
        assert!(svg.contains("&lt;b&gt;"));
        assert!(!svg.contains("<b>"));
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("ok 3") && svg.contains("failed 3"));
        let l = lines("q", &labels, &[("acme".into(), vec![0, 5])], 1).into_string();
        assert!(l.contains("<polyline") && l.contains("acme now 5"));
    }
}
