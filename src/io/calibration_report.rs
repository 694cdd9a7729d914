//! The files of a finished calibration: `posterior.csv`, `generations.csv`, `predictive.csv`,
//! `identification.csv`, the charts (SVG and PNG, plotters) and the self-contained `report.html`.

use super::calibrate::{CalibrateOptions, Setup};
use super::report::{DrawResult, FONT, W, fmt_money, html_escape, palette, sized_chart};
use super::sweep_out::write_atomic;
use crate::inference::abc::{Ending, Population, weighted_quantile};
use anyhow::{Context as _, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the files are made from.
pub struct Context<'a> {
    pub su: &'a Setup,
    pub pops: &'a [Population],
    /// Every run: (generation, candidate, run) → each target's model value (None: failed).
    pub runs: &'a BTreeMap<(u32, u64, u64), Option<Vec<f64>>>,
    pub k_runs: u64,
    pub opts: &'a CalibrateOptions,
}

/// One row of predictive.csv.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PredictiveRow {
    pub target: String,
    pub quantity: String,
    pub period: String,
    pub data: f64,
    pub uncertainty: f64,
    pub fitted: bool,
    pub prior_q05: f64,
    pub prior_q50: f64,
    pub prior_q95: f64,
    pub posterior_mean: f64,
    pub posterior_q05: f64,
    pub posterior_q50: f64,
    pub posterior_q95: f64,
    /// Whether the data lie inside the posterior predictive 90% band.
    pub inside_90: bool,
}

/// One row of identification.csv.
#[derive(Clone, Debug, serde::Serialize)]
pub struct IdentificationRow {
    pub parameter: String,
    pub prior: String,
    pub baseline: f64,
    pub prior_q05: f64,
    pub prior_q95: f64,
    pub posterior_mean: f64,
    pub posterior_q05: f64,
    pub posterior_q95: f64,
    /// Posterior 90% interval width over the prior's: near 1, the 2023 data say little about it.
    pub width_ratio: f64,
}

/// The weighted per-run model values of a generation's particles, per target: (value, weight) pairs.
fn run_values(ctx: &Context, pop: &Population) -> Vec<Vec<(f64, f64)>> {
    let n_t = ctx.su.targets.len();
    let mut out = vec![Vec::new(); n_t];
    for p in &pop.particles {
        for k in 0..ctx.k_runs {
            if let Some(Some(v)) = ctx.runs.get(&(p.born, p.index, k)) {
                for i in 0..n_t {
                    if v[i].is_finite() {
                        out[i].push((v[i], p.weight / ctx.k_runs as f64));
                    }
                }
            }
        }
    }
    out
}

fn wq(pairs: &[(f64, f64)], q: f64) -> f64 {
    let (v, w): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
    if v.is_empty() { f64::NAN } else { weighted_quantile(&v, &w, q) }
}

/// Parameter values of a population's particles (rows) in prior order.
fn values(ctx: &Context, pop: &Population) -> Vec<Vec<f64>> {
    pop.particles.iter().map(|p| ctx.su.priors.priors.iter().zip(&p.z).map(|(pr, z)| pr.value(*z)).collect()).collect()
}

pub fn predictive(ctx: &Context) -> Vec<PredictiveRow> {
    let (first, last) = (&ctx.pops[0], ctx.pops.last().expect("a population"));
    let (prior, post) = (run_values(ctx, first), run_values(ctx, last));
    ctx.su
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (lo, hi) = (wq(&post[i], 0.05), wq(&post[i], 0.95));
            let tw: f64 = post[i].iter().map(|x| x.1).sum();
            PredictiveRow {
                target: t.id.clone(),
                quantity: t.quantity.clone(),
                period: t.period.clone(),
                data: t.value,
                uncertainty: t.uncertainty,
                fitted: ctx.su.observed.fit[i],
                prior_q05: wq(&prior[i], 0.05),
                prior_q50: wq(&prior[i], 0.5),
                prior_q95: wq(&prior[i], 0.95),
                posterior_mean: post[i].iter().map(|(v, w)| v * w).sum::<f64>() / tw,
                posterior_q05: lo,
                posterior_q50: wq(&post[i], 0.5),
                posterior_q95: hi,
                inside_90: lo <= t.value && t.value <= hi,
            }
        })
        .collect()
}

pub fn identification(ctx: &Context) -> Vec<IdentificationRow> {
    let last = ctx.pops.last().expect("a population");
    let x = values(ctx, last);
    let w: Vec<f64> = last.particles.iter().map(|p| p.weight).collect();
    let base = ctx.su.priors.base_values();
    ctx.su
        .priors
        .priors
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let col: Vec<f64> = x.iter().map(|r| r[k]).collect();
            let (a, b) = p.dist.interval(0.9);
            let (lo, hi) = (weighted_quantile(&col, &w, 0.05), weighted_quantile(&col, &w, 0.95));
            IdentificationRow {
                parameter: p.path.clone(),
                prior: describe(&p.dist),
                baseline: base[k],
                prior_q05: a,
                prior_q95: b,
                posterior_mean: col.iter().zip(&w).map(|(v, w)| v * w).sum(),
                posterior_q05: lo,
                posterior_q95: hi,
                width_ratio: (hi - lo) / (b - a),
            }
        })
        .collect()
}

fn describe(d: &crate::inference::prior::Dist) -> String {
    use crate::inference::prior::Dist::*;
    match *d {
        Uniform { min, max } => format!("uniform({min}, {max})"),
        LogUniform { min, max } => format!("log_uniform({min}, {max})"),
        Normal { mean, sd } => format!("normal({mean}, {sd})"),
        TruncatedNormal { mean, sd, min, max } => format!("truncated_normal({mean}, {sd}, {min}, {max})"),
        Beta { alpha, beta, min, max } => format!("beta({alpha}, {beta}, {min}, {max})"),
    }
}

fn csv_of<T: serde::Serialize>(rows: &[T]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}

/// Writes every file; returns their paths.
pub fn write(out: &Path, ctx: &Context) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let paths = ctx.su.priors.paths();
    // posterior.csv: every generation's particles.
    let mut post = String::from("generation,particle,born,candidate,weight,distance");
    for p in &paths {
        post.push(',');
        post.push_str(p);
    }
    post.push('\n');
    for pop in ctx.pops {
        for (i, (p, x)) in pop.particles.iter().zip(values(ctx, pop)).enumerate() {
            post.push_str(&format!("{},{i},{},{},{},{}", pop.generation, p.born, p.index, p.weight, p.distance));
            for v in x {
                post.push_str(&format!(",{v}"));
            }
            post.push('\n');
        }
    }
    let path = out.join("posterior.csv");
    write_atomic(&path, post)?;
    files.push(path);
    let mut gens = String::from(
        "generation,sampler,tolerance,particles,proposed,evaluated,runs,acceptance_rate,ess,mcmc_steps,mcmc_beta,median_error_se\n",
    );
    for p in ctx.pops {
        gens.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}\n",
            p.generation,
            if p.generation == 0 {
                "prior"
            } else if p.mcmc_steps > 0 {
                "mcmc"
            } else {
                "pmc"
            },
            p.tolerance,
            p.particles.len(),
            p.proposed,
            p.evaluated,
            p.evaluated * ctx.k_runs,
            p.acceptance,
            p.ess,
            p.mcmc_steps,
            p.mcmc_beta,
            median_error_se(ctx, p)
        ));
    }
    let path = out.join("generations.csv");
    write_atomic(&path, gens)?;
    files.push(path);
    let pred = predictive(ctx);
    let path = out.join("predictive.csv");
    write_atomic(&path, csv_of(&pred)?)?;
    files.push(path);
    let ident = identification(ctx);
    let path = out.join("identification.csv");
    write_atomic(&path, csv_of(&ident)?)?;
    files.push(path);
    files.extend(charts_and_report(out, ctx, &pred, &ident)?);
    Ok(files)
}

/// The weighted median over a generation's particles of the root mean square error of the fitted summaries
/// in units of the data's own standard errors: comparable across generations (the tolerance is not, as the
/// scales adapt).
pub fn median_error_se(ctx: &Context, pop: &Population) -> f64 {
    let o = &ctx.su.observed;
    let d: Vec<f64> = pop.particles.iter().map(|p| o.distance(&p.summary, &o.se)).collect();
    let w: Vec<f64> = pop.particles.iter().map(|p| p.weight).collect();
    weighted_quantile(&d, &w, 0.5)
}

/// Parameters ordered by how much the data narrowed them (smallest width ratio first).
fn by_narrowing(ident: &[IdentificationRow]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..ident.len()).collect();
    order.sort_by(|a, b| ident[*a].width_ratio.total_cmp(&ident[*b].width_ratio));
    order
}

fn charts_and_report(
    out: &Path,
    ctx: &Context,
    pred: &[PredictiveRow],
    ident: &[IdentificationRow],
) -> Result<Vec<PathBuf>> {
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    let charts = out.join("charts");
    std::fs::create_dir_all(&charts).with_context(|| format!("cannot create {}", charts.display()))?;
    let dpi = ctx.opts.dpi;
    let mut files = Vec::new();
    let mut figures: Vec<(String, String)> = Vec::new();
    // Tolerance and acceptance by generation.
    let title = "Tolerance and acceptance rate by generation";
    let (svg, f) = sized_chart!(charts, "generations", (W, 400), dpi, |root: &DrawingArea<_, Shift>| generations(
        root, title, ctx.pops
    ));
    files.extend(f);
    figures.push((title.to_string(), svg));
    // Predictive bands against the data, one chart per quantity over time.
    let mut quantities: Vec<&str> = Vec::new();
    for r in pred {
        if !quantities.contains(&r.quantity.as_str()) {
            quantities.push(&r.quantity);
        }
    }
    for q in quantities {
        let rows: Vec<&PredictiveRow> = pred.iter().filter(|r| r.quantity == q).collect();
        let title = format!("{q}: data (±1 standard error) against the prior and posterior predictive 90% bands");
        let (svg, f) =
            sized_chart!(charts, format!("predictive_{}", q.replace('.', "_")), (W, 440), dpi, |root: &DrawingArea<
                _,
                Shift,
            >| {
                predictive_chart(root, &title, &rows)
            });
        files.extend(f);
        figures.push((title, svg));
    }
    // Posterior against prior: the 12 parameters the data narrowed most.
    let last = ctx.pops.last().expect("a population");
    let x = values(ctx, last);
    let w: Vec<f64> = last.particles.iter().map(|p| p.weight).collect();
    let shown: Vec<usize> = by_narrowing(ident).into_iter().take(12).collect();
    let title = format!("Posterior (bars) against prior (line): the {} parameters the data narrowed most", shown.len());
    let rows = shown.len().div_ceil(3) as u32;
    let (svg, f) =
        sized_chart!(charts, "posterior_vs_prior", (W, 60 + 200 * rows), dpi, |root: &DrawingArea<_, Shift>| {
            marginals(root, &title, ctx, &shown, &x, &w)
        });
    files.extend(f);
    figures.push((title, svg));
    // Pairs: the most correlated pairs of the final population.
    let pairs = correlated_pairs(&x, &w, 4);
    if !pairs.is_empty() {
        let title = "The most correlated parameter pairs of the posterior (weighted particles)".to_string();
        let (svg, f) = sized_chart!(charts, "pairs", (W, 460), dpi, |root: &DrawingArea<_, Shift>| {
            pair_chart(root, &title, ctx, &pairs, &x, &w)
        });
        files.extend(f);
        figures.push((title, svg));
    }
    let rpath = out.join("report.html");
    write_atomic(&rpath, html(ctx, pred, ident, &figures))?;
    files.push(rpath);
    Ok(files)
}

fn weighted_corr(a: &[f64], b: &[f64], w: &[f64]) -> f64 {
    let ma: f64 = a.iter().zip(w).map(|(x, w)| x * w).sum();
    let mb: f64 = b.iter().zip(w).map(|(x, w)| x * w).sum();
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for i in 0..a.len() {
        sab += w[i] * (a[i] - ma) * (b[i] - mb);
        saa += w[i] * (a[i] - ma).powi(2);
        sbb += w[i] * (b[i] - mb).powi(2);
    }
    sab / (saa * sbb).sqrt()
}

/// The `k` parameter pairs with the largest |weighted correlation|, with it.
fn correlated_pairs(x: &[Vec<f64>], w: &[f64], k: usize) -> Vec<(usize, usize, f64)> {
    let p = x.first().map_or(0, Vec::len);
    let col = |j: usize| x.iter().map(|r| r[j]).collect::<Vec<f64>>();
    let cols: Vec<Vec<f64>> = (0..p).map(col).collect();
    let mut pairs = Vec::new();
    for i in 0..p {
        for j in i + 1..p {
            let r = weighted_corr(&cols[i], &cols[j], w);
            if r.is_finite() {
                pairs.push((i, j, r));
            }
        }
    }
    pairs.sort_by(|a, b| b.2.abs().total_cmp(&a.2.abs()));
    pairs.truncate(k);
    pairs
}

fn generations<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str, pops: &[Population]) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let n = pops.len() as f64;
    let tol: Vec<(f64, f64)> =
        pops.iter().filter(|p| p.tolerance.is_finite()).map(|p| (p.generation as f64, p.tolerance)).collect();
    let acc: Vec<(f64, f64)> = pops.iter().map(|p| (p.generation as f64, p.acceptance)).collect();
    let tmax = tol.iter().map(|x| x.1).fold(1e-9, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .right_y_label_area_size(60)
        .build_cartesian_2d(-0.2..(n - 0.8).max(0.2), 0.0..tmax)?
        .set_secondary_coord(-0.2..(n - 0.8).max(0.2), 0.0..1.05);
    chart
        .configure_mesh()
        .x_desc("generation")
        .y_desc("tolerance (distance)")
        .x_labels(pops.len().max(2))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("acceptance rate")
        .label_style(("sans-serif", 13))
        .y_label_formatter(&|v| format!("{:.0}%", 100.0 * v))
        .draw()?;
    chart
        .draw_series(LineSeries::new(tol.clone(), palette(0).stroke_width(2)))?
        .label("tolerance (left axis)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], palette(0).stroke_width(2)));
    chart.draw_series(tol.iter().map(|p| Circle::new(*p, 4, palette(0).filled())))?;
    chart
        .draw_secondary_series(LineSeries::new(acc.clone(), palette(1).stroke_width(2)))?
        .label("acceptance rate (right axis)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], palette(1).stroke_width(2)));
    chart.draw_secondary_series(acc.iter().map(|p| Circle::new(*p, 4, palette(1).filled())))?;
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.9)).draw()?;
    Ok(())
}

fn month_index(period: &str) -> f64 {
    let y: f64 = period.get(..4).and_then(|s| s.parse().ok()).unwrap_or(2023.0);
    let m: f64 = period.get(5..7).and_then(|s| s.parse().ok()).unwrap_or(12.0);
    y * 12.0 + m - 1.0
}

fn predictive_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    rows: &[&PredictiveRow],
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let xs: Vec<f64> = rows.iter().map(|r| month_index(&r.period)).collect();
    let (x0, x1) = (
        xs.iter().copied().fold(f64::INFINITY, f64::min) - 0.6,
        xs.iter().copied().fold(f64::NEG_INFINITY, f64::max) + 0.6,
    );
    let vals = rows.iter().flat_map(|r| {
        [
            r.prior_q05,
            r.prior_q95,
            r.posterior_q05,
            r.posterior_q95,
            r.data * (1.0 + r.uncertainty),
            r.data * (1.0 - r.uncertainty),
        ]
    });
    let (lo, hi) =
        vals.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |a, v| (a.0.min(v), a.1.max(v)));
    let pad = 0.08 * (hi - lo).abs().max(1.0);
    let money = rows.first().is_some_and(|r| r.quantity.ends_with("usd") || r.quantity.contains("usd_"));
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .x_desc("month")
        .y_desc(rows.first().map(|r| r.quantity.clone()).unwrap_or_default())
        .x_labels(rows.len().clamp(2, 12))
        .x_label_formatter(&|v| {
            let m = v.round() as i64;
            format!("{}-{:02}", m.div_euclid(12), m.rem_euclid(12) + 1)
        })
        .y_label_formatter(&|v| if money { fmt_money(*v) } else { crate::analysis::fmt_big(*v) })
        .draw()?;
    let bar = |x: f64, lo: f64, hi: f64, dx: f64, c: RGBAColor| {
        Rectangle::new([(x + dx - 0.12, lo), (x + dx + 0.12, hi)], c.filled())
    };
    chart
        .draw_series(rows.iter().zip(&xs).map(|(r, x)| bar(*x, r.prior_q05, r.prior_q95, -0.14, palette(7).mix(0.4))))?
        .label("prior predictive 90%")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], palette(7).mix(0.4).filled()));
    chart
        .draw_series(
            rows.iter().zip(&xs).map(|(r, x)| bar(*x, r.posterior_q05, r.posterior_q95, 0.14, palette(0).mix(0.6))),
        )?
        .label("posterior predictive 90%")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], palette(0).mix(0.6).filled()));
    chart
        .draw_series(rows.iter().zip(&xs).map(|(r, x)| {
            let se = r.uncertainty * r.data.abs();
            PathElement::new(vec![(*x, r.data - se), (*x, r.data + se)], BLACK.stroke_width(2))
        }))?
        .label("data ± 1 s.e. (filled: fitted, open: held out)")
        .legend(|(x, y)| Circle::new((x + 8, y), 4, BLACK.filled()));
    chart.draw_series(rows.iter().zip(&xs).map(|(r, x)| {
        if r.fitted {
            Circle::new((*x, r.data), 5, BLACK.filled())
        } else {
            Circle::new((*x, r.data), 5, BLACK.stroke_width(2))
        }
    }))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()?;
    Ok(())
}

fn marginals<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    ctx: &Context,
    shown: &[usize],
    x: &[Vec<f64>],
    w: &[f64],
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 16))?;
    let rows = shown.len().div_ceil(3).max(1);
    let cells = root.split_evenly((rows, 3));
    for (cell, k) in cells.iter().zip(shown) {
        let p = &ctx.su.priors.priors[*k];
        let (a, b) = p.dist.interval(0.99);
        let bins = 20;
        let h = (b - a) / bins as f64;
        let mut mass = vec![0.0; bins];
        for (r, wt) in x.iter().zip(w) {
            let i = (((r[*k] - a) / h).floor().max(0.0) as usize).min(bins - 1);
            mass[i] += wt;
        }
        let dens: Vec<f64> = mass.iter().map(|m| m / h).collect();
        let prior: Vec<(f64, f64)> =
            (0..=100).map(|i| a + (b - a) * i as f64 / 100.0).map(|v| (v, p.dist.pdf(v))).collect();
        let top = dens.iter().copied().chain(prior.iter().map(|q| q.1)).fold(1e-12, f64::max) * 1.1;
        let name = p.path.rsplit('.').take(2).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join(".");
        let mut chart = ChartBuilder::on(cell)
            .caption(name, ("sans-serif", 12))
            .margin(6)
            .x_label_area_size(22)
            .y_label_area_size(8)
            .build_cartesian_2d(a..b, 0.0..top)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .disable_y_axis()
            .x_labels(3)
            .x_label_formatter(&|v| crate::analysis::fmt_big(*v))
            .label_style(("sans-serif", 10))
            .draw()?;
        chart.draw_series(dens.iter().enumerate().map(|(i, d)| {
            Rectangle::new([(a + i as f64 * h, 0.0), (a + (i + 1) as f64 * h, *d)], palette(0).mix(0.6).filled())
        }))?;
        chart.draw_series(LineSeries::new(prior, BLACK.stroke_width(2)))?;
    }
    Ok(())
}

fn pair_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    ctx: &Context,
    pairs: &[(usize, usize, f64)],
    x: &[Vec<f64>],
    w: &[f64],
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 16))?;
    let cells = root.split_evenly((1, pairs.len().max(1)));
    let wmax = w.iter().copied().fold(1e-12, f64::max);
    for (cell, (i, j, r)) in cells.iter().zip(pairs) {
        let range = |k: usize| {
            let (lo, hi) =
                x.iter().map(|v| v[k]).fold((f64::INFINITY, f64::NEG_INFINITY), |a, v| (a.0.min(v), a.1.max(v)));
            let pad = 0.05 * (hi - lo).max(1e-9);
            (lo - pad)..(hi + pad)
        };
        let short = |k: usize| ctx.su.priors.priors[k].path.rsplit('.').next().unwrap_or("").to_string();
        let mut chart = ChartBuilder::on(cell)
            .caption(format!("r = {r:.2}"), ("sans-serif", 12))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(44)
            .build_cartesian_2d(range(*i), range(*j))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(short(*i))
            .y_desc(short(*j))
            .x_labels(3)
            .y_labels(4)
            .x_label_formatter(&|v| crate::analysis::fmt_big(*v))
            .y_label_formatter(&|v| crate::analysis::fmt_big(*v))
            .label_style(("sans-serif", 10))
            .draw()?;
        chart.draw_series(x.iter().zip(w).map(|(v, wt)| {
            Circle::new((v[*i], v[*j]), 2 + (4.0 * wt / wmax).round() as i32, palette(0).mix(0.5).filled())
        }))?;
    }
    Ok(())
}

fn html(ctx: &Context, pred: &[PredictiveRow], ident: &[IdentificationRow], figures: &[(String, String)]) -> String {
    let o = ctx.opts;
    let last = ctx.pops.last().expect("a population");
    let runs: usize = ctx.runs.len();
    let mut h = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>llm-market calibration</title>\n<style>\
         body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}table{border-collapse:collapse;margin:1em 0;font-size:14px}\
         td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f0f0f0}td:first-child{text-align:left}\
         figure{margin:2em 0}figcaption{font-weight:bold;margin-bottom:.5em}svg{max-width:100%;height:auto}</style></head><body>\n",
    );
    let (version, commit) = super::manifest::tool_version();
    h.push_str(&format!(
        "<h1>Calibration: {} parameters against {} targets</h1>\n<p id=\"provenance\">ABC-SMC with {} particles, {} generations ({} runs, {} per particle), \
         {} agents per run, runs to {}, calibration seed {}; priors <code>{}</code>; tool {} {}; command <code>{}</code>.</p>\n",
        ctx.su.priors.priors.len(),
        ctx.su.targets.len(),
        o.particles,
        ctx.pops.len(),
        runs,
        o.seeds_per_particle,
        ctx.su.priors.base.agents,
        ctx.su.end,
        o.seed,
        html_escape(&o.priors.display().to_string()),
        version,
        commit.unwrap_or(""),
        html_escape(&o.command_line.join(" "))
    ));
    h.push_str(&format!(
        "<p>The final generation's tolerance is {:.3} (distance: root mean square of each fitted summary's error over its scale, \
         the spread of the previous generation combined with the data's own standard error), its acceptance rate {:.1}% and its \
         effective sample size {:.0}.</p>\n",
        last.tolerance,
        100.0 * last.acceptance,
        last.ess
    ));
    h.push_str("<h2>Targets: data against the posterior predictive</h2>\n<table id=\"predictive\"><tr><th>target</th><th>fitted</th><th>data</th><th>±</th><th>prior 90%</th><th>posterior 90%</th><th>inside</th></tr>\n");
    for r in pred {
        let f = |v: f64| {
            if r.quantity.ends_with("usd") || r.quantity.contains("usd_") {
                fmt_money(v)
            } else {
                crate::analysis::fmt_big(v)
            }
        };
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.0}%</td><td>{} – {}</td><td>{} – {}</td><td>{}</td></tr>\n",
            html_escape(&r.target),
            if r.fitted { "yes" } else { "held out" },
            f(r.data),
            100.0 * r.uncertainty,
            f(r.prior_q05),
            f(r.prior_q95),
            f(r.posterior_q05),
            f(r.posterior_q95),
            if r.inside_90 { "yes" } else { "no" }
        ));
    }
    h.push_str("</table>\n<h2>What the 2023 data identify</h2>\n<p>Posterior 90% interval width over the prior's, the most narrowed first; \
                a ratio near 1 means the targets say little about the parameter. Every parameter is in <code>identification.csv</code>.</p>\n\
                <table id=\"identification\"><tr><th>parameter</th><th>baseline</th><th>prior 90%</th><th>posterior 90%</th><th>width ratio</th></tr>\n");
    for k in by_narrowing(ident).into_iter().take(25) {
        let r = &ident[k];
        let f = crate::analysis::fmt_big;
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{} – {}</td><td>{} – {}</td><td>{:.2}</td></tr>\n",
            html_escape(&r.parameter),
            f(r.baseline),
            f(r.prior_q05),
            f(r.prior_q95),
            f(r.posterior_q05),
            f(r.posterior_q95),
            r.width_ratio
        ));
    }
    h.push_str("</table>\n");
    h.push_str(&super::report::figures_html(figures));
    h.push_str("</body></html>\n");
    h
}

/// The terminal summary.
pub fn summary_text(su: &Setup, pops: &[Population], ending: &Ending, runs: usize) -> String {
    let last = pops.last().expect("a population");
    let mut s = format!(
        "{} generations, {} runs; final tolerance {:.3}, acceptance {:.1}%, ESS {:.0}",
        pops.len(),
        runs,
        last.tolerance,
        100.0 * last.acceptance,
        last.ess
    );
    match ending {
        Ending::Generations => {}
        Ending::MinAcceptance => s.push_str(" (stopped: acceptance below --min-acceptance)"),
        Ending::CandidateCap(t) => s.push_str(&format!(
            " (generation {t} reached its cap of candidates without {} acceptances and is not kept)",
            last.particles.len()
        )),
    }
    s.push_str(&format!("\n{} parameters, {} targets", su.priors.priors.len(), su.targets.len()));
    s
}
