//! Writing a comparison: `comparison.csv`, charts (SVG and PNG, drawn with plotters) and a self-contained
//! `report.html` that embeds the SVG charts and the tables.

use crate::analysis::compare::{Comparison, ScenarioData, fmt_value};
use crate::analysis::stats::quantile;
use anyhow::{Context, Result};
use chrono::NaiveDate;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub(crate) const W: u32 = 900;
pub(crate) const H: u32 = 480;
/// The font used for PNG text (DejaVu Sans, embedded; SVG text uses the viewer's sans-serif).
pub(crate) static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

pub(crate) fn palette(i: usize) -> RGBColor {
    const C: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    C[i % C.len()]
}

pub(crate) type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Quantile bands of one firm's series across a scenario's replicates: date → (5, 25, 50, 75, 95%).
fn bands(
    s: &ScenarioData,
    firm: &str,
    value: fn(&crate::analysis::compare::TracePoint) -> f64,
) -> Vec<(NaiveDate, [f64; 5])> {
    let mut by_date: BTreeMap<NaiveDate, Vec<f64>> = BTreeMap::new();
    for r in &s.replicates {
        for p in r.trace.iter().flatten().filter(|p| p.firm == firm) {
            by_date.entry(p.date).or_default().push(value(p));
        }
    }
    by_date.into_iter().map(|(d, v)| (d, [0.05, 0.25, 0.5, 0.75, 0.95].map(|q| quantile(&v, q)))).collect()
}

fn date_range(scenarios: &[ScenarioData]) -> Option<(NaiveDate, NaiveDate)> {
    let dates =
        scenarios.iter().flat_map(|s| s.replicates.iter().flat_map(|r| r.trace.iter().flatten().map(|p| p.date)));
    let (mut lo, mut hi) = (None::<NaiveDate>, None::<NaiveDate>);
    for d in dates {
        lo = Some(lo.map_or(d, |x| x.min(d)));
        hi = Some(hi.map_or(d, |x| x.max(d)));
    }
    Some((lo?, hi?))
}

/// Fan chart: median line and 50%/90% bands per scenario, overlaid.
fn fan<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    scenarios: &[ScenarioData],
    firm: &str,
    label: &str,
    value: fn(&crate::analysis::compare::TracePoint) -> f64,
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let Some((d0, d1)) = date_range(scenarios) else { return Ok(()) };
    let all: Vec<Vec<(NaiveDate, [f64; 5])>> = scenarios.iter().map(|s| bands(s, firm, value)).collect();
    let (mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY);
    for b in all.iter().flatten() {
        y0 = y0.min(b.1[0]);
        y1 = y1.max(b.1[4]);
    }
    if !y0.is_finite() {
        return Ok(());
    }
    let pad = ((y1 - y0) * 0.05).max(1.0);
    let mut chart = ChartBuilder::on(root)
        .caption(format!("{firm}: {label} (median, 50% and 90% bands across replicates)"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(d0..d1, (y0 - pad)..(y1 + pad))?;
    chart
        .configure_mesh()
        .x_labels(8)
        .x_label_formatter(&|d| d.format("%Y-%m").to_string())
        .y_label_formatter(&|v| fmt_value("x_usd", *v))
        .x_desc("date")
        .y_desc(label)
        .draw()?;
    for (i, (s, b)) in scenarios.iter().zip(&all).enumerate() {
        let c = palette(i);
        for (lo, hi, alpha) in [(0usize, 4usize, 0.12), (1, 3, 0.25)] {
            let mut poly: Vec<(NaiveDate, f64)> = b.iter().map(|(d, q)| (*d, q[hi])).collect();
            poly.extend(b.iter().rev().map(|(d, q)| (*d, q[lo])));
            chart.draw_series(std::iter::once(Polygon::new(poly, c.mix(alpha).filled())))?;
        }
        chart
            .draw_series(LineSeries::new(b.iter().map(|(d, q)| (*d, q[2])), c.stroke_width(2)))?
            .label(s.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
        // The first replicate's decisions, on the median line: ▲ a release, ● a funding round, ✕ a cut (or a
        // cut undone), ◆ a training run started or cancelled, ■ an exit.
        let Some(r) = s.replicates.first() else { continue };
        let median_at = |d: NaiveDate| b.iter().take_while(|(x, _)| *x <= d).last().map(|(_, q)| q[2]);
        for m in r.decisions.iter().filter(|m| m.firm == firm) {
            let Some(y) = median_at(m.date) else { continue };
            let at = (m.date, y);
            let style = c.filled();
            match m.decision.as_str() {
                "release" => chart.draw_series(std::iter::once(TriangleMarker::new(at, 7, style)))?,
                "funding_round" => chart.draw_series(std::iter::once(Circle::new(at, 5, style)))?,
                "cuts" => chart.draw_series(std::iter::once(Cross::new(at, 6, c.stroke_width(2))))?,
                "exit" => chart
                    .draw_series(std::iter::once(EmptyElement::at(at) + Rectangle::new([(-5, -5), (5, 5)], style)))?,
                _ => chart.draw_series(std::iter::once(
                    EmptyElement::at(at) + Polygon::new(vec![(0, -5), (5, 0), (0, 5), (-5, 0)], style),
                ))?,
            };
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Stacked areas of firms' user shares over time (mean users across replicates) for one scenario.
fn shares<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &ScenarioData, firms: &[String]) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let mut users: BTreeMap<NaiveDate, Vec<f64>> = BTreeMap::new();
    let n = s.replicates.len().max(1) as f64;
    for r in &s.replicates {
        for p in r.trace.iter().flatten() {
            if let Some(j) = firms.iter().position(|f| *f == p.firm) {
                users.entry(p.date).or_insert_with(|| vec![0.0; firms.len()])[j] += p.users / n;
            }
        }
    }
    let (Some(d0), Some(d1)) = (users.keys().next().copied(), users.keys().last().copied()) else { return Ok(()) };
    let mut chart = ChartBuilder::on(root)
        .caption(format!("{}: market shares of users", s.name), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(d0..d1, 0.0..100.0)?;
    chart
        .configure_mesh()
        .x_labels(8)
        .x_label_formatter(&|d| d.format("%Y-%m").to_string())
        .x_desc("date")
        .y_desc("share of chatbot users (%)")
        .draw()?;
    let share = |d: &Vec<f64>, upto: usize| {
        let t: f64 = d.iter().sum();
        if t > 0.0 { 100.0 * d[..upto].iter().sum::<f64>() / t } else { 0.0 }
    };
    for j in (0..firms.len()).rev() {
        let c = palette(j);
        chart
            .draw_series(
                AreaSeries::new(users.iter().map(|(d, v)| (*d, share(v, j + 1))), 0.0, c.mix(0.8)).border_style(c),
            )?
            .label(firms[j].clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], c.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Boxplots of a final metric across scenarios.
fn boxes<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    groups: &[(String, Vec<f64>)],
    money: bool,
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let vals: Vec<f64> = groups.iter().flat_map(|g| g.1.iter().copied()).filter(|v| v.is_finite()).collect();
    if vals.is_empty() {
        return Ok(());
    }
    let (lo, hi) =
        (vals.iter().copied().fold(f64::INFINITY, f64::min), vals.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.01).max(1e-9);
    let names: Vec<String> = groups.iter().map(|g| g.0.clone()).collect();
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(names.as_slice().into_segmented(), ((lo - pad) as f32)..((hi + pad) as f32))?;
    chart
        .configure_mesh()
        .y_label_formatter(&|v| if money { fmt_value("x_usd", *v as f64) } else { format!("{v:.0}") })
        .x_desc("scenario")
        .y_desc(if money { "US dollars" } else { "value" })
        .draw()?;
    for (i, g) in groups.iter().enumerate() {
        let v: Vec<f64> = g.1.iter().copied().filter(|v| v.is_finite()).collect();
        if v.is_empty() {
            continue;
        }
        let q = Quartiles::new(&v);
        chart.draw_series(std::iter::once(
            Boxplot::new_vertical(SegmentValue::CenterOf(&names[i]), &q).style(palette(i)).width(30),
        ))?;
    }
    root.present()?;
    Ok(())
}

/// Draws `f` to `name.svg` and `name.png` in `dir`; returns the SVG text.
macro_rules! chart_files {
    ($dir:expr, $name:expr, $f:expr) => {{
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
            $f(&root).map_err(|e| anyhow::anyhow!("chart {}: {e}", $name))?;
        }
        let png = $dir.join(format!("{}.png", $name));
        {
            let root = BitMapBackend::new(&png, (W, H)).into_drawing_area();
            $f(&root).map_err(|e| anyhow::anyhow!("chart {}: {e}", $name))?;
        }
        let svg_path = $dir.join(format!("{}.svg", $name));
        std::fs::write(&svg_path, &svg).with_context(|| format!("cannot write {}", svg_path.display()))?;
        (svg, vec![svg_path, png])
    }};
}

pub(crate) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Writes comparison.csv, the charts and report.html into `out`; returns the files written.
pub fn write_comparison(out: &Path, cmp: &Comparison, scenarios: &[ScenarioData], focus: &str) -> Result<Vec<PathBuf>> {
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    let charts = out.join("charts");
    std::fs::create_dir_all(&charts).with_context(|| format!("cannot create {}", charts.display()))?;
    let mut files = Vec::new();
    let mut w = csv::Writer::from_path(out.join("comparison.csv"))?;
    for r in &cmp.rows {
        w.serialize(r)?;
    }
    w.flush()?;
    files.push(out.join("comparison.csv"));

    let mut figures: Vec<(String, String)> = Vec::new();
    let has_traces = scenarios.iter().any(|s| s.replicates.iter().any(|r| r.trace.is_some()));
    if has_traces {
        for firm in &cmp.firms {
            let (svg, f) = chart_files!(charts, format!("fan_cash_{firm}"), |root: &DrawingArea<_, Shift>| fan(
                root,
                scenarios,
                firm,
                "cash (USD)",
                |p| p.cash
            ));
            files.extend(f);
            figures.push((format!("Cash of {firm}"), svg));
            let (svg, f) = chart_files!(charts, format!("fan_users_{firm}"), |root: &DrawingArea<_, Shift>| fan(
                root,
                scenarios,
                firm,
                "users (people)",
                |p| p.users
            ));
            files.extend(f);
            figures.push((format!("Users of {firm}"), svg));
        }
        for s in scenarios {
            let safe: String =
                s.name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
            let (svg, f) = chart_files!(charts, format!("shares_{safe}"), |root: &DrawingArea<_, Shift>| shares(
                root, s, &cmp.firms
            ));
            files.extend(f);
            figures.push((format!("Market shares, {}", s.name), svg));
        }
    }
    // Boxplots of final metrics.
    let last_year = cmp
        .rows
        .iter()
        .filter_map(|r| {
            r.metric.strip_prefix("revenue_").and_then(|x| x.strip_suffix("_usd")).and_then(|y| y.parse::<i32>().ok())
        })
        .max();
    let mut box_metrics: Vec<(String, String, bool)> = vec![("end_cash_usd".into(), focus.into(), true)];
    if let Some(y) = last_year {
        box_metrics.push((format!("revenue_{y}_usd"), focus.into(), true));
    }
    box_metrics.push(("hhi_end".into(), String::new(), false));
    for (metric, firm, money) in box_metrics {
        let groups: Vec<(String, Vec<f64>)> = scenarios
            .iter()
            .map(|s| {
                let v = s
                    .replicates
                    .iter()
                    .filter_map(|r| {
                        if metric == "hhi_end" {
                            return Some(r.hhi_end);
                        }
                        let rows = if metric == "end_cash_usd" { &r.summary } else { &r.annual };
                        rows.iter()
                            .find(|m| {
                                m.get("firm").map(String::as_str) == Some(firm.as_str())
                                    && (metric == "end_cash_usd"
                                        || m.get("year").map(|y| format!("revenue_{y}_usd")) == Some(metric.clone()))
                            })
                            .and_then(|m| m.get(if metric == "end_cash_usd" { "end_cash_usd" } else { "revenue_usd" }))
                            .and_then(|v| v.parse().ok())
                    })
                    .collect();
                (s.name.clone(), v)
            })
            .collect();
        let title = if firm.is_empty() {
            format!("{metric} across replicates")
        } else {
            format!("{firm}: {metric} across replicates")
        };
        let name = format!("box_{metric}{}", if firm.is_empty() { String::new() } else { format!("_{firm}") });
        let (svg, f) = chart_files!(charts, name, |root: &DrawingArea<_, Shift>| boxes(root, &title, &groups, money));
        files.extend(f);
        figures.push((title, svg));
    }

    // The report.
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>llm-market comparison</title>\n<style>\
         body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}table{border-collapse:collapse;margin:1em 0;font-size:14px}\
         td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f0f0f0}td:first-child,td:nth-child(2){text-align:left}\
         figure{margin:2em 0}figcaption{font-weight:bold;margin-bottom:.5em}svg{max-width:100%;height:auto}</style></head><body>\n",
    );
    html.push_str(&format!(
        "<h1>Scenario comparison</h1>\n<p>Baseline: <b>{}</b>. Intervals are {}% confidence intervals across replicates (Student t for means, Wilson for probabilities); differences are paired replicate by replicate when the scenarios share seeds (common random numbers).</p>\n",
        html_escape(&cmp.baseline),
        (cmp.level * 100.0).round()
    ));
    html.push_str("<h2>Scenarios</h2>\n<table id=\"scenarios\"><tr><th>scenario</th><th>description</th><th>replicates</th><th>failed runs</th><th>source</th></tr>\n");
    for s in scenarios {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            html_escape(&s.name),
            html_escape(&s.description),
            s.replicates.len(),
            s.failed,
            html_escape(&s.source)
        ));
    }
    html.push_str("</table>\n<h2>Headline results</h2>\n<table id=\"headline\"><tr><th>metric</th><th>scenario</th><th>n</th><th>mean</th><th>interval</th><th>difference vs baseline</th><th>interval</th><th>pairing</th></tr>\n");
    let mut rows = cmp.headline(focus);
    rows.sort_by(|a, b| a.metric.cmp(&b.metric).then(a.firm.cmp(&b.firm)));
    for r in rows {
        let f = |x: f64| fmt_value(&r.metric, x);
        html.push_str(&format!(
            "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>[{}, {}]</td><td>{}</td><td>[{}, {}]</td><td>{}</td></tr>\n",
            html_escape(&r.metric),
            if r.firm.is_empty() { String::new() } else { format!(" ({})", html_escape(&r.firm)) },
            html_escape(&r.scenario),
            r.n,
            f(r.mean),
            f(r.ci_lo),
            f(r.ci_hi),
            f(r.diff_vs_baseline),
            f(r.diff_ci_lo),
            f(r.diff_ci_hi),
            r.pairing
        ));
    }
    html.push_str("</table>\n<p>Every metric of every firm is in <code>comparison.csv</code>.</p>\n<h2>Charts</h2>\n");
    if has_traces {
        html.push_str("<p id=\"decision-marks\">On the fan charts, the first replicate's decisions (its <code>decisions.csv</code>) are marked on the scenario's median line: &#9650; a model released, &#9679; a funding round, &#10005; a cost cut (or one undone), &#9670; a training run started or cancelled, &#9632; an exit.</p>\n");
    }
    for (i, (title, svg)) in figures.iter().enumerate() {
        let body = svg.split_once("?>").map(|x| x.1).unwrap_or(svg);
        html.push_str(&format!(
            "<figure id=\"chart-{i}\"><figcaption>{}</figcaption>\n{}\n</figure>\n",
            html_escape(title),
            body.trim()
        ));
    }
    html.push_str("</body></html>\n");
    let rpath = out.join("report.html");
    crate::io::sweep_out::write_atomic(&rpath, &html)?;
    files.push(rpath);
    Ok(files)
}
