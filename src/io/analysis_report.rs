//! The charts (SVG and PNG, plotters) and the self-contained `report.html` of `llm-market analyze`: indices
//! with their intervals per outcome, Morris's μ*–σ plane, each parameter against each outcome, and PRIM's
//! peeling trade-off and chosen box.

use super::analyze::{Outcome, SensitivityRow, SweepData, fmt_index};
use super::report::{DrawResult, FONT, W, html_escape, palette, sized_chart};
use crate::analysis::prim::PrimResult;
use anyhow::{Context as _, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// What the report shows.
pub struct Context<'a> {
    pub data: &'a SweepData,
    pub outcomes: &'a [Outcome],
    pub rows: &'a [SensitivityRow],
    pub prim: &'a [(super::analyze::Condition, PrimResult)],
    pub notes: &'a [String],
    pub command_line: &'a [String],
    pub level: f64,
    /// PNG resolution (`--dpi`).
    pub dpi: Option<u32>,
}

/// An outcome's value (or an index in its units, as Morris's μ*) for axes: US dollars as `$1.2B`.
fn fmt_outcome(outcome: &str, x: f64) -> String {
    if outcome.ends_with("_usd") { super::report::fmt_money(x) } else { fmt_index(x) }
}

/// A file-name-safe form of an outcome or condition.
fn safe(s: &str) -> String {
    let t: String = s.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    t.split('_').filter(|x| !x.is_empty()).collect::<Vec<_>>().join("_")
}

/// One series of a bar chart: its label and (parameter → value, lo, hi).
struct Series {
    label: String,
    values: Vec<(f64, f64, f64)>,
}

/// Horizontal bars with interval whiskers, one row per parameter (in `order`), one bar per series.
fn bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    (x_desc, money): (&str, bool),
    names: &[String],
    order: &[usize],
    series: &[Series],
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let vals = series.iter().flat_map(|s| s.values.iter().flat_map(|v| [v.0, v.1, v.2])).filter(|v| v.is_finite());
    let (lo, hi) = vals.fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let pad = ((hi - lo) * 0.05).max(1e-6);
    let n = order.len();
    let label_width = names.iter().map(|s| s.len()).max().unwrap_or(10).clamp(10, 52) as u32 * 7 + 10;
    let (plot, side) = root.split_horizontally(W - 90);
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(label_width)
        .build_cartesian_2d((lo - pad)..(hi + pad), -0.5..(n as f64 - 0.5))?;
    let label_of = |y: &f64| {
        let k = y.round();
        if (y - k).abs() > 1e-6 || k < 0.0 || k as usize >= n {
            return String::new();
        }
        names[order[n - 1 - k as usize]].clone()
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n.max(1))
        .y_label_formatter(&label_of)
        .x_label_formatter(&|v| if money { super::report::fmt_money(*v) } else { fmt_index(*v) })
        .x_desc(x_desc)
        .draw()?;
    let k = series.len().max(1) as f64;
    let width = 0.8 / k;
    for (si, s) in series.iter().enumerate() {
        let c = palette(si);
        for (row, &j) in order.iter().enumerate() {
            let y = (n - 1 - row) as f64 + 0.4 - width * (si as f64 + 1.0);
            let (v, l, h) = s.values[j];
            if !v.is_finite() {
                continue;
            }
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, y + 0.1 * width), (v, y + 0.9 * width)],
                c.mix(0.8).filled(),
            )))?;
            if l.is_finite() && h.is_finite() {
                let ym = y + width / 2.0;
                chart.draw_series(std::iter::once(PathElement::new(vec![(l, ym), (h, ym)], BLACK.stroke_width(1))))?;
                for e in [l, h] {
                    chart.draw_series(std::iter::once(PathElement::new(
                        vec![(e, ym - width * 0.3), (e, ym + width * 0.3)],
                        BLACK.stroke_width(1),
                    )))?;
                }
            }
        }
    }
    let entries: Vec<(String, RGBColor, usize, bool)> =
        series.iter().enumerate().map(|(i, s)| (s.label.clone(), palette(i), 0, true)).collect();
    super::report::legend_beside(&side, &entries)?;
    root.present()?;
    Ok(())
}

/// Morris's μ*–σ plane: each parameter a labelled point.
fn mu_sigma<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (title, outcome): (&str, &str),
    names: &[String],
    pts: &[(f64, f64)],
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let xs = pts.iter().map(|p| p.0).filter(|v| v.is_finite());
    let ys = pts.iter().map(|p| p.1).filter(|v| v.is_finite());
    let xmax = xs.fold(0.0f64, f64::max).max(1e-9) * 1.15;
    let ymax = ys.fold(0.0f64, f64::max).max(1e-9) * 1.15;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..xmax, 0.0..ymax)?;
    chart
        .configure_mesh()
        .x_label_formatter(&|v| fmt_outcome(outcome, *v))
        .y_label_formatter(&|v| fmt_outcome(outcome, *v))
        .x_desc("μ* (mean |elementary effect| = (Δy)/Δ: change over a whole normalised range)")
        .y_desc("σ (sd of the elementary effects)")
        .draw()?;
    // σ = μ* guide: above it, effects that change sign or interact.
    let m = xmax.min(ymax);
    chart.draw_series(std::iter::once(PathElement::new(vec![(0.0, 0.0), (m, m)], BLACK.mix(0.3).stroke_width(1))))?;
    let mut order: Vec<usize> = (0..pts.len()).collect();
    order.sort_by(|a, b| pts[*b].0.total_cmp(&pts[*a].0));
    for (rank, &j) in order.iter().enumerate() {
        let (x, y) = pts[j];
        if !(x.is_finite() && y.is_finite()) {
            continue;
        }
        chart.draw_series(std::iter::once(Circle::new((x, y), 4, palette(0).filled())))?;
        if rank < 8 {
            let short =
                names[j].rsplit('.').take(2).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join(".");
            // Labels right of the point, or left of it near the right edge.
            let shift = if x > 0.75 * xmax { -(short.len() as i32) * 7 - 6 } else { 6 };
            chart.draw_series(std::iter::once(
                EmptyElement::at((x, y)) + Text::new(short, (shift, -6), ("sans-serif", 12).into_font()),
            ))?;
        }
    }
    root.present()?;
    Ok(())
}

/// Each parameter (panel) against an outcome's point mean; binary outcomes coloured by a majority of yes.
fn scatter<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    outcome: &Outcome,
    names: &[String],
    params: &[usize],
    points: &[Vec<f64>],
    y: &[f64],
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (title_area, body) = root.split_vertically(30);
    title_area.titled(
        &format!("{} against each parameter (one point per design point: mean over replicates)", outcome.name),
        ("sans-serif", 16),
    )?;
    let cols = 3usize;
    let rows = params.len().div_ceil(cols).max(1);
    let panels = body.split_evenly((rows, cols));
    let ys = y.iter().copied().filter(|v| v.is_finite());
    let (y0, y1) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !y0.is_finite() {
        return Ok(());
    }
    let ypad = ((y1 - y0) * 0.05).max(1e-9);
    for (panel, &j) in panels.iter().zip(params) {
        let xs: Vec<f64> = points.iter().map(|p| p[j]).collect();
        let (x0, x1) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
        if !x0.is_finite() {
            continue;
        }
        let xpad = ((x1 - x0) * 0.05).max(1e-9);
        let short = names[j].rsplit('.').take(2).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join(".");
        let mut chart = ChartBuilder::on(panel)
            .margin(6)
            .x_label_area_size(34)
            .y_label_area_size(66)
            .build_cartesian_2d((x0 - xpad)..(x1 + xpad), (y0 - ypad)..(y1 + ypad))?;
        // Axis titles: the parameter below, the outcome's unit at the side.
        let unit = if outcome.binary {
            "share of replicates"
        } else if outcome.name.ends_with("_usd") {
            "US$"
        } else {
            "value"
        };
        chart
            .configure_mesh()
            .x_labels(4)
            .y_labels(4)
            .x_desc(short)
            .y_desc(unit)
            .axis_desc_style(("sans-serif", 11))
            .x_label_formatter(&|v| fmt_index(*v))
            .y_label_formatter(&|v| {
                if outcome.binary { format!("{:.0}%", v * 100.0) } else { fmt_outcome(&outcome.name, *v) }
            })
            .label_style(("sans-serif", 10))
            .draw()?;
        chart.draw_series(xs.iter().zip(y).filter(|(_, v)| v.is_finite()).map(|(x, v)| {
            let c = if outcome.binary && *v >= 0.5 { palette(3) } else { palette(0) };
            Circle::new((*x, *v), 2, c.mix(0.7).filled())
        }))?;
    }
    root.present()?;
    Ok(())
}

/// PRIM's peeling trajectory: density against coverage, the chosen box ringed.
fn tradeoff<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str, r: &PrimResult) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..1.05, 0.0..1.05)?;
    chart
        .configure_mesh()
        .x_label_formatter(&|v| format!("{:.0}%", v * 100.0))
        .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
        .x_desc("coverage (share of the runs of interest inside the box)")
        .y_desc("density (share of the box's runs of interest)")
        .draw()?;
    let pts: Vec<(f64, f64)> = r.trajectory.iter().map(|b| (b.coverage, b.density)).collect();
    chart.draw_series(LineSeries::new(pts.iter().copied(), palette(0).stroke_width(1)))?;
    chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, palette(0).filled())))?;
    let c = (r.chosen.coverage, r.chosen.density);
    chart.draw_series(std::iter::once(Circle::new(c, 8, palette(3).stroke_width(2))))?;
    chart.draw_series(std::iter::once(Text::new(
        format!("chosen (pasted): coverage {:.0}%, density {:.0}%", c.0 * 100.0, c.1 * 100.0),
        (0.05, 0.08),
        ("sans-serif", 13).into_font(),
    )))?;
    root.present()?;
    Ok(())
}

/// The chosen box's limits: each restricted parameter's range as a share of the range sampled.
fn box_limits<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    names: &[String],
    r: &PrimResult,
    ranges: &[(f64, f64)],
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let n = r.restrictions.len().max(1);
    let label_width =
        r.restrictions.iter().map(|l| names[l.parameter].len()).max().unwrap_or(10).clamp(10, 52) as u32 * 7 + 10;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(label_width)
        .build_cartesian_2d(0.0..1.0, -0.5..(n as f64 - 0.5))?;
    let labels: Vec<String> = r.restrictions.iter().map(|l| names[l.parameter].clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|y| {
            let k = y.round();
            if (y - k).abs() > 1e-6 || k < 0.0 || k as usize >= labels.len() {
                String::new()
            } else {
                labels[k as usize].clone()
            }
        })
        .x_label_formatter(&|v| format!("{:.0}%", v * 100.0))
        .x_desc("position in the range sampled (0% = min, 100% = max)")
        .draw()?;
    for (k, l) in r.restrictions.iter().enumerate() {
        let (lo, hi) = ranges[l.parameter];
        let span = (hi - lo).max(1e-300);
        let (a, b) = ((l.lo - lo) / span, (l.hi - lo) / span);
        // A box on a single value (a Morris grid level) still shows as a narrow bar.
        let (a, b) = if b - a < 0.01 { ((a - 0.005).max(0.0), (b + 0.005).min(1.0)) } else { (a, b) };
        let y = k as f64;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, y - 0.05), (1.0, y + 0.05)],
            BLACK.mix(0.15).filled(),
        )))?;
        chart
            .draw_series(std::iter::once(Rectangle::new([(a, y - 0.3), (b, y + 0.3)], palette(3).mix(0.7).filled())))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("[{}, {}]  quasi-p {:.1e}", fmt_index(l.lo), fmt_index(l.hi), l.quasi_p),
            (0.02, y + 0.32),
            ("sans-serif", 12).into_font(),
        )))?;
    }
    root.present()?;
    Ok(())
}

/// The rows of one outcome, method and index, in parameter order.
fn series_of(rows: &[SensitivityRow], outcome: &str, method: &str, index: &str, names: &[String]) -> Option<Series> {
    let v: Vec<(f64, f64, f64)> = names
        .iter()
        .map(|p| {
            rows.iter()
                .find(|r| r.outcome == outcome && r.method == method && r.index == index && &r.parameter == p)
                .map_or((f64::NAN, f64::NAN, f64::NAN), |r| (r.value, r.ci_lo, r.ci_hi))
        })
        .collect();
    v.iter()
        .any(|x| x.0.is_finite())
        .then(|| Series { label: index.replace("mu_star", "μ*").replace("mu", "μ"), values: v })
}

/// Writes the charts and report.html into `out`; returns the files written.
pub fn write(out: &Path, ctx: &Context) -> Result<Vec<PathBuf>> {
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    let charts = out.join("charts");
    std::fs::create_dir_all(&charts).with_context(|| format!("cannot create {}", charts.display()))?;
    let names = &ctx.data.parameters;
    let p = names.len();
    let tall = (W, (120 + 26 * p as u32).max(360));
    let mut files = Vec::new();
    let mut figures: Vec<(String, String)> = Vec::new();
    for o in ctx.outcomes {
        let tag = safe(&o.name);
        let mut charts_of: Vec<(&str, &str, Vec<Series>, String)> = Vec::new();
        let s1 = series_of(ctx.rows, &o.name, "sobol", "S1", names);
        let st = series_of(ctx.rows, &o.name, "sobol", "ST", names);
        if let (Some(s1), Some(st)) = (s1, st) {
            charts_of.push((
                "sobol",
                "Sobol indices (share of the variance of the point means)",
                vec![s1, st],
                "index".into(),
            ));
        }
        if let Some(m) = series_of(ctx.rows, &o.name, "morris", "mu_star", names) {
            charts_of.push((
                "morris",
                "Morris μ* (mean absolute elementary effect)",
                vec![m],
                format!(
                    "μ* ({} per normalised range, (Δy)/Δ)",
                    if o.name.ends_with("_usd") { "US$" } else { "outcome units" }
                ),
            ));
        }
        if let Some(m) = series_of(ctx.rows, &o.name, "prcc", "prcc", names) {
            charts_of.push(("prcc", "partial rank correlation", vec![m], "PRCC".into()));
        }
        for (method, what, series, x_desc) in charts_of {
            // Parameters ranked by the last series (ST, μ*, |PRCC|), largest at the top.
            let key = series.last().expect("a series");
            let mut order: Vec<usize> = (0..p).collect();
            order.sort_by(|a, b| key.values[*b].0.abs().total_cmp(&key.values[*a].0.abs()));
            let title = format!("{}: {what}", o.name);
            let name = format!("{method}_{tag}");
            let money = method == "morris" && o.name.ends_with("_usd");
            let (svg, f) = sized_chart!(charts, name, tall, ctx.dpi, |root: &DrawingArea<_, Shift>| bars(
                root,
                &title,
                (&x_desc, money),
                names,
                &order,
                &series
            ));
            files.extend(f);
            let kind = if method == "prcc" { "Fisher-z" } else { "bootstrap" };
            figures.push((format!("{title}, with {}% {kind} intervals", (ctx.level * 100.0).round()), svg));
        }
        if let (Some(mu), Some(sigma)) = (
            series_of(ctx.rows, &o.name, "morris", "mu_star", names),
            series_of(ctx.rows, &o.name, "morris", "sigma", names),
        ) {
            let pts: Vec<(f64, f64)> = mu.values.iter().zip(&sigma.values).map(|(a, b)| (a.0, b.0)).collect();
            let title = format!("{}: Morris μ* against σ", o.name);
            let (svg, f) =
                sized_chart!(charts, format!("morris_sigma_{tag}"), (W, 520), ctx.dpi, |root: &DrawingArea<
                    _,
                    Shift,
                >| {
                    mu_sigma(root, (&title, &o.name), names, &pts)
                });
            files.extend(f);
            figures.push((title, svg));
        }
        // Scatter: at most 12 parameters, the most influential first.
        let groups = ctx.data.groups(o);
        let y: Vec<f64> =
            groups.iter().map(|g| if g.is_empty() { f64::NAN } else { crate::analysis::stats::mean(g) }).collect();
        let rank_key = ["ST", "mu_star", "prcc"]
            .iter()
            .find_map(|i| {
                let v: Vec<f64> = names
                    .iter()
                    .map(|n| {
                        ctx.rows
                            .iter()
                            .find(|r| r.outcome == o.name && r.index == *i && &r.parameter == n)
                            .map_or(0.0, |r| r.value.abs())
                    })
                    .collect();
                v.iter().any(|x| *x > 0.0).then_some(v)
            })
            .unwrap_or_else(|| vec![0.0; p]);
        let mut shown: Vec<usize> = (0..p).collect();
        shown.sort_by(|a, b| rank_key[*b].total_cmp(&rank_key[*a]));
        shown.truncate(12);
        let h = 30 + 200 * shown.len().div_ceil(3).max(1) as u32;
        let (svg, f) =
            sized_chart!(charts, format!("scatter_{tag}"), (W, h), ctx.dpi, |root: &DrawingArea<_, Shift>| scatter(
                root,
                o,
                names,
                &shown,
                &ctx.data.points,
                &y
            ));
        files.extend(f);
        figures.push((format!("{} against the parameters", o.name), svg));
    }
    let ranges: Vec<(f64, f64)> = (0..p)
        .map(|j| {
            ctx.data
                .points
                .iter()
                .map(|x| x[j])
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)))
        })
        .collect();
    for (k, (c, r)) in ctx.prim.iter().enumerate() {
        let title = format!("PRIM on {}: peeling trajectory", c.text);
        let (svg, f) =
            sized_chart!(charts, format!("prim_tradeoff_{k}"), (W, 480), ctx.dpi, |root: &DrawingArea<_, Shift>| {
                tradeoff(root, &title, r)
            });
        files.extend(f);
        figures.push((title, svg));
        if !r.restrictions.is_empty() {
            let title = format!("PRIM on {}: the chosen box's limits", c.text);
            let size = (W, (120 + 60 * r.restrictions.len() as u32).max(240));
            let (svg, f) =
                sized_chart!(charts, format!("prim_box_{k}"), size, ctx.dpi, |root: &DrawingArea<_, Shift>| {
                    box_limits(root, &title, names, r, &ranges)
                });
            files.extend(f);
            figures.push((title, svg));
        }
    }
    let rpath = out.join("report.html");
    super::sweep_out::write_atomic(&rpath, html(ctx, &figures))?;
    files.push(rpath);
    Ok(files)
}

fn html(ctx: &Context, figures: &[(String, String)]) -> String {
    let d = ctx.data;
    let m = &d.manifest;
    let mut h = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>llm-market sensitivity analysis</title>\n<style>\
         body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}table{border-collapse:collapse;margin:1em 0;font-size:14px}\
         td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f0f0f0}td:first-child{text-align:left}\
         figure{margin:2em 0}figcaption{font-weight:bold;margin-bottom:.5em}svg{max-width:100%;height:auto}</style></head><body>\n",
    );
    let kind = format!("{:?}", d.spec.design.kind).to_lowercase();
    let ok = d.runs.iter().filter(|r| r.ok).count();
    h.push_str(&format!(
        "<h1>Which parameters matter: sweep {}</h1>\n<p id=\"provenance\">{} design over {} parameters: {} points × {} replicates = {} runs ({} finished), {} agents each, sweep seed {}; \
         sweep folder <code>{}</code>; tool {} {}; command <code>{}</code>.</p>\n",
        html_escape(&d.spec.name),
        kind,
        d.parameters.len(),
        d.points.len(),
        d.spec.replicates,
        d.runs.len(),
        ok,
        m["agents"].as_u64().map(|a| a.to_string()).unwrap_or_else(|| "?".into()),
        d.spec.seed,
        html_escape(&d.dir.display().to_string()),
        html_escape(m["version"].as_str().unwrap_or("?")),
        html_escape(m["git_commit"].as_str().unwrap_or("")),
        html_escape(&ctx.command_line.join(" ")),
    ));
    h.push_str("<p>Sobol and Morris indices and PRCC/SRC are computed on each design point's mean over its replicates; \
                the variance split separates the points' spread (parameters) from the replicates' (seeds); PRIM treats each run as a case. \
                Intervals are bootstrap percentile intervals (Sobol, Morris), Fisher-z intervals (PRCC) and t intervals (SRC).</p>\n");
    h.push_str(
        "<h2>Design</h2>\n<table id=\"design\"><tr><th>parameter</th><th>min</th><th>max</th><th>scale</th></tr>\n",
    );
    for pf in &d.spec.parameters {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            html_escape(&pf.path),
            pf.min.map(fmt_index).unwrap_or_else(|| "-".into()),
            pf.max.map(fmt_index).unwrap_or_else(|| "-".into()),
            format!("{:?}", pf.scale).to_lowercase()
        ));
    }
    // One table per outcome: a row per parameter (the most influential first), a column per index.
    h.push_str(
        "</table>\n<h2>Indices</h2>\n<p>Each cell: the estimate and its 95% interval; every row of \
                <code>sensitivity.csv</code> (with second-order indices) is in the file.</p>\n",
    );
    let order = ["S1", "ST", "mu", "mu_star", "sigma", "prcc", "src"];
    let mut wrote_indices = false;
    for o in ctx.outcomes {
        let of = |p: &str, i: &str| {
            ctx.rows.iter().find(|r| r.outcome == o.name && r.parameter == p && r.index == i && r.method != "noise")
        };
        let indices: Vec<&str> =
            order.iter().copied().filter(|i| ctx.rows.iter().any(|r| r.outcome == o.name && r.index == *i)).collect();
        if indices.is_empty() {
            continue;
        }
        let key = *indices.iter().find(|i| ["ST", "mu_star"].contains(*i)).unwrap_or(&indices[0]);
        let mut params: Vec<&String> = names_of(d).iter().collect();
        params.sort_by(|a, b| {
            let v = |p: &str| of(p, key).map_or(0.0, |r| r.value.abs());
            v(b).total_cmp(&v(a))
        });
        let n_runs = ctx.rows.iter().find(|r| r.outcome == o.name).map_or(0, |r| r.n_runs);
        h.push_str(&format!(
            "<h3>{} ({n_runs} runs)</h3>\n<table{}><tr><th>parameter</th>",
            html_escape(&o.name),
            if wrote_indices { "" } else { " id=\"indices\"" }
        ));
        wrote_indices = true;
        for i in &indices {
            h.push_str(&format!("<th>{}</th>", i.replace("mu_star", "μ*").replace("mu", "μ").replace("sigma", "σ")));
        }
        h.push_str("</tr>\n");
        for p in params {
            h.push_str(&format!("<tr><td>{}</td>", html_escape(p)));
            for i in &indices {
                let cell = of(p, i).map_or("-".into(), |r| {
                    let f = |x: f64| if r.method == "morris" { fmt_outcome(&o.name, x) } else { fmt_index(x) };
                    if r.ci_lo.is_finite() {
                        format!("{} [{}, {}]", f(r.value), f(r.ci_lo), f(r.ci_hi))
                    } else {
                        f(r.value)
                    }
                });
                h.push_str(&format!("<td>{cell}</td>"));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }
    if !wrote_indices {
        h.push_str("<table id=\"indices\"><tr><td>no index was computed: see the notes</td></tr></table>\n");
    }
    h.push_str("<h2>Fit and noise</h2>\n<table id=\"noise\"><tr><th>outcome</th><th>linear R²</th><th>rank R²</th><th>sd of the runs</th><th>seeds' share of the variance</th><th>of it shared by all points</th><th>replicates per point for a 95% interval of ±</th></tr>\n");
    for o in ctx.outcomes {
        let v = |i: &str| ctx.rows.iter().find(|r| r.outcome == o.name && r.index == i).map_or(f64::NAN, |r| r.value);
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}: {}</td></tr>\n",
            html_escape(&o.name),
            fmt_index(v("r2")),
            fmt_index(v("rank_r2")),
            fmt_outcome(&o.name, v("var_total").sqrt()),
            pct(v("seed_share")),
            pct(v("var_seeds_shared") / (v("var_seeds") + v("var_parameters"))),
            fmt_outcome(&o.name, v("target_half_width")),
            if v("replicates_needed").is_finite() { format!("{:.0}", v("replicates_needed")) } else { "-".into() }
        ));
    }
    h.push_str("</table>\n");
    if !ctx.prim.is_empty() {
        h.push_str("<h2>Scenario discovery (PRIM)</h2>\n<table id=\"prim\"><tr><th>condition</th><th>coverage</th><th>density</th><th>mass</th><th>parameter</th><th>box</th><th>quasi-p</th></tr>\n");
        for (c, r) in ctx.prim {
            for l in &r.restrictions {
                h.push_str(&format!(
                    "<tr><td>{}</td><td>{:.0}%</td><td>{:.0}%</td><td>{:.0}%</td><td>{}</td><td>[{}, {}]</td><td>{:.1e}</td></tr>\n",
                    html_escape(&c.text),
                    r.chosen.coverage * 100.0,
                    r.chosen.density * 100.0,
                    r.chosen.mass * 100.0,
                    html_escape(&names_of(d)[l.parameter]),
                    fmt_index(l.lo),
                    fmt_index(l.hi),
                    l.quasi_p
                ));
            }
        }
        h.push_str("</table>\n");
    }
    if !ctx.notes.is_empty() {
        h.push_str("<h2>Notes</h2>\n<ul>\n");
        for n in ctx.notes {
            h.push_str(&format!("<li>{}</li>\n", html_escape(n)));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<h2>Charts</h2>\n");
    h.push_str(&super::report::figures_html(figures));
    h.push_str("</body></html>\n");
    h
}

fn pct(x: f64) -> String {
    if x.is_finite() { format!("{:.0}%", x * 100.0) } else { "-".into() }
}

fn names_of(d: &SweepData) -> &[String] {
    &d.parameters
}
