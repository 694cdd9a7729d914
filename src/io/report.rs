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

/// Draws `f` at `size` to `name.svg` and `name.png` in `dir`; returns the SVG text and the paths.
macro_rules! sized_chart {
    ($dir:expr, $name:expr, $size:expr, $dpi:expr, $f:expr) => {{
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, $size).into_drawing_area();
            $f(&root).map_err(|e| anyhow::anyhow!("chart {}: {e}", $name))?;
        }
        let png = $dir.join(format!("{}.png", $name));
        super::hidpi::draw_png(&png, $size, $dpi, |root| $f(root))
            .map_err(|e| anyhow::anyhow!("chart {}: {e}", $name))?;
        let svg_path = $dir.join(format!("{}.svg", $name));
        std::fs::write(&svg_path, &svg).with_context(|| format!("cannot write {}", svg_path.display()))?;
        (svg, vec![svg_path, png])
    }};
}

pub(crate) use sized_chart;

/// A date as a decimal year (2024-07-02 → 2024.5), the x coordinate of the time charts: plotters then puts
/// its ticks on round numbers of years — whole years and half years — so they line up with the calendar.
pub(crate) fn decimal_year(d: NaiveDate) -> f64 {
    use chrono::Datelike;
    let days =
        if NaiveDate::from_ymd_opt(d.year(), 12, 31).is_some_and(|x| x.ordinal() == 366) { 366.0 } else { 365.0 };
    d.year() as f64 + d.ordinal0() as f64 / days
}

/// Ticks of a decimal-year axis from `d0` to `d1` on calendar boundaries: the first day of every month,
/// quarter, half year or year — the finest step that gives at most 8 ticks.
pub(crate) fn year_ticks(d0: NaiveDate, d1: NaiveDate) -> Vec<f64> {
    use chrono::Datelike;
    for step in [1u32, 3, 6, 12, 24, 60] {
        let mut ticks = Vec::new();
        let (mut y, mut m) = (d0.year(), 1u32);
        while let Some(d) = NaiveDate::from_ymd_opt(y, m, 1) {
            if d > d1 {
                break;
            }
            if d >= d0 && (m - 1) % step == 0 && (step < 12 || y % (step / 12) as i32 == 0) {
                ticks.push(decimal_year(d));
            }
            (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        }
        if ticks.len() <= 8 {
            return ticks;
        }
    }
    vec![decimal_year(d0), decimal_year(d1)]
}

/// A time axis in decimal years whose ticks are [`year_ticks`] (calendar boundaries), not plotters' round
/// numbers.
pub(crate) struct YearAxis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl YearAxis {
    pub(crate) fn new(d0: NaiveDate, d1: NaiveDate) -> YearAxis {
        let (lo, hi) = (decimal_year(d0), decimal_year(d1));
        YearAxis { lo, hi: hi.max(lo + 1e-3), ticks: year_ticks(d0, d1) }
    }
}

impl plotters::coord::ranged1d::Ranged for YearAxis {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;
    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let t = (v - self.lo) / (self.hi - self.lo);
        limit.0 + (t * (limit.1 - limit.0) as f64).round() as i32
    }
    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }
    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// A tick label of a decimal-year axis: `2024` on a year's start, `Jul 2024` on a month's.
pub(crate) fn year_label(x: f64) -> String {
    let year = x.floor();
    let month = ((x - year) * 12.0).round() as usize;
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    match month {
        0 => format!("{year:.0}"),
        12 => format!("{:.0}", year + 1.0),
        m => format!("{} {year:.0}", MONTHS[m]),
    }
}

/// US dollars on charts and in reports, one format everywhere: `$10.0B`, `$950M`, `$12.3k`, `−$1.2B`.
pub(crate) fn fmt_money(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let (sign, a) = (if x < 0.0 { "−" } else { "" }, x.abs());
    let body = if a >= 1e9 {
        format!("{:.1}B", a / 1e9)
    } else if a >= 1e7 {
        format!("{:.0}M", a / 1e6)
    } else if a >= 1e6 {
        format!("{:.1}M", a / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", a / 1e3)
    } else {
        format!("{a:.0}")
    };
    if body == "0" { "$0".into() } else { format!("{sign}${body}") }
}

/// The legend beside a chart (never over its data): one entry per series, a line (dashed like the series)
/// or a swatch, and its label.
pub(crate) fn legend_beside<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, RGBColor, usize, bool)],
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    let style = ("sans-serif", 13).into_font();
    for (k, (label, c, dash, swatch)) in entries.iter().enumerate() {
        let y = 40 + 22 * k as i32;
        if *swatch {
            area.draw(&Rectangle::new([(6, y - 6), (22, y + 6)], c.mix(0.8).filled()))?;
        } else if *dash == 0 {
            area.draw(&PathElement::new(vec![(4, y), (24, y)], c.stroke_width(3)))?;
        } else {
            for x in (4..24).step_by(2 * *dash + 2) {
                area.draw(&PathElement::new(vec![(x, y), ((x + *dash as i32 + 1).min(24), y)], c.stroke_width(3)))?;
            }
        }
        area.draw(&Text::new(label.clone(), (30, y - 7), style.clone()))?;
    }
    Ok(())
}

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

/// Whether a firm's series has something to show in any scenario (not zero throughout).
fn has_signal(scenarios: &[ScenarioData], firm: &str, value: fn(&crate::analysis::compare::TracePoint) -> f64) -> bool {
    scenarios
        .iter()
        .flat_map(|s| s.replicates.iter().flat_map(|r| r.trace.iter().flatten()))
        .any(|p| p.firm == firm && value(p).abs() > 0.0)
}

/// The exits of a firm across a scenario's replicates: (median exit date, replicates that exited).
fn exits(s: &ScenarioData, firm: &str) -> Option<(NaiveDate, usize)> {
    let mut dates: Vec<NaiveDate> = s
        .replicates
        .iter()
        .filter_map(|r| r.summary.iter().find(|m| m.get("firm").map(String::as_str) == Some(firm)))
        .filter_map(|m| m.get("exit_date")?.parse().ok())
        .collect();
    dates.sort();
    Some((*dates.get(dates.len() / 2)?, dates.len()))
}

/// Fan chart: median line and 50%/90% bands per scenario, overlaid; the second and later scenarios dashed so
/// that coinciding medians stay visible; each scenario's exits (in any replicate) marked with their count.
fn fan<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    scenarios: &[ScenarioData],
    firm: &str,
    (label, money): (&str, bool),
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
    let (plot, side) = root.split_horizontally(W - 200);
    let mut chart = ChartBuilder::on(&plot)
        .caption(format!("{firm}: {label} — median, 50% and 90% of replicates"), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(YearAxis::new(d0, d1), (y0 - pad)..(y1 + pad))?;
    chart
        .configure_mesh()
        .x_label_formatter(&|x| year_label(*x))
        .y_label_formatter(&|v| if money { fmt_money(*v) } else { crate::analysis::fmt_big(*v) })
        .x_desc("date")
        .y_desc(if money { format!("{label} (US$)") } else { format!("{label} (people)") })
        .draw()?;
    let mut entries = Vec::new();
    for (i, (s, b)) in scenarios.iter().zip(&all).enumerate() {
        let c = palette(i);
        for (lo, hi, alpha) in [(0usize, 4usize, 0.10), (1, 3, 0.20)] {
            let mut poly: Vec<(f64, f64)> = b.iter().map(|(d, q)| (decimal_year(*d), q[hi])).collect();
            poly.extend(b.iter().rev().map(|(d, q)| (decimal_year(*d), q[lo])));
            chart.draw_series(std::iter::once(Polygon::new(poly, c.mix(alpha).filled())))?;
        }
        let median = b.iter().map(|(d, q)| (decimal_year(*d), q[2]));
        let dash = if i == 0 { 0 } else { 2 + 2 * (i % 3) };
        if dash == 0 {
            chart.draw_series(LineSeries::new(median, c.stroke_width(2)))?;
        } else {
            chart.draw_series(DashedLineSeries::new(median, dash as i32 * 2, dash as i32, c.stroke_width(2)))?;
        }
        entries.push((format!("{} (n = {})", s.name, s.replicates.len()), c, dash, false));
        let median_at = |d: NaiveDate| b.iter().take_while(|(x, _)| *x <= d).last().map(|(_, q)| q[2]);
        // The first replicate's decisions, on the median line: ▲ a release, ● a funding round, ✕ a cut (or a
        // cut undone), ◆ a training run started or cancelled.
        if let Some(r) = s.replicates.first() {
            for m in r.decisions.iter().filter(|m| m.firm == firm && m.decision != "exit") {
                let Some(y) = median_at(m.date) else { continue };
                let at = (decimal_year(m.date), y);
                let style = c.filled();
                match m.decision.as_str() {
                    "release" => chart.draw_series(std::iter::once(TriangleMarker::new(at, 7, style)))?,
                    "funding_round" => chart.draw_series(std::iter::once(Circle::new(at, 5, style)))?,
                    "cuts" => chart.draw_series(std::iter::once(Cross::new(at, 6, c.stroke_width(2))))?,
                    _ => chart.draw_series(std::iter::once(
                        EmptyElement::at(at) + Polygon::new(vec![(0, -5), (5, 0), (0, 5), (-5, 0)], style),
                    ))?,
                };
            }
        }
        // ■ Exits in any replicate: at the median exit date, with how many replicates exited.
        if let Some((d, k)) = exits(s, firm) {
            let y = median_at(d).unwrap_or(y0);
            let at = (decimal_year(d), y);
            chart.draw_series(std::iter::once(
                EmptyElement::at(at)
                    + Rectangle::new([(-5, -5), (5, 5)], c.filled())
                    + Text::new(format!("exit {k}/{}", s.replicates.len()), (7, -14), ("sans-serif", 12).into_font()),
            ))?;
        }
    }
    legend_beside(&side, &entries)?;
    root.present()?;
    Ok(())
}

/// Stacked areas of firms' user shares over time (mean users across replicates) for one scenario, from the
/// first date any firm has users (no 0 → 100% wedge before the first launch).
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
    users.retain(|_, v| v.iter().sum::<f64>() > 0.0);
    let (Some(d0), Some(d1)) = (users.keys().next().copied(), users.keys().last().copied()) else { return Ok(()) };
    let (plot, side) = root.split_horizontally(W - 200);
    let mut chart = ChartBuilder::on(&plot)
        .caption(
            format!("{}: market shares of chatbot users (mean of {} replicates)", s.name, s.replicates.len()),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(YearAxis::new(d0, d1), 0.0..100.0)?;
    chart
        .configure_mesh()
        .x_label_formatter(&|x| year_label(*x))
        .x_desc("date")
        .y_desc("share of chatbot users (%)")
        .draw()?;
    let share = |d: &Vec<f64>, upto: usize| {
        let t: f64 = d.iter().sum();
        if t > 0.0 { 100.0 * d[..upto].iter().sum::<f64>() / t } else { 0.0 }
    };
    let mut entries = Vec::new();
    for j in (0..firms.len()).rev() {
        let c = palette(j);
        chart.draw_series(
            AreaSeries::new(users.iter().map(|(d, v)| (decimal_year(*d), share(v, j + 1))), 0.0, c.mix(0.8))
                .border_style(c),
        )?;
    }
    for (j, f) in firms.iter().enumerate() {
        entries.push((f.clone(), palette(j), 0, true));
    }
    legend_beside(&side, &entries)?;
    root.present()?;
    Ok(())
}

/// Boxplots of a final metric across scenarios, with each scenario's replicate count.
fn boxes<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    groups: &[(String, Vec<f64>)],
    (y_desc, money): (&str, bool),
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
    let names: Vec<String> = groups.iter().map(|g| format!("{} (n = {})", g.0, g.1.len())).collect();
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(names.as_slice().into_segmented(), ((lo - pad) as f32)..((hi + pad) as f32))?;
    chart
        .configure_mesh()
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(s) | SegmentValue::Exact(s) => (*s).clone(),
            SegmentValue::Last => String::new(),
        })
        .y_label_formatter(&|v| if money { fmt_money(*v as f64) } else { format!("{v:.2}") })
        .x_desc("scenario (n = replicates)")
        .y_desc(y_desc)
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
    ($dir:expr, $name:expr, $dpi:expr, $f:expr) => {{
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
            $f(&root).map_err(|e| anyhow::anyhow!("chart {}: {e}", $name))?;
        }
        let png = $dir.join(format!("{}.png", $name));
        super::hidpi::draw_png(&png, (W, H), $dpi, |root| $f(root))
            .map_err(|e| anyhow::anyhow!("chart {}: {e}", $name))?;
        let svg_path = $dir.join(format!("{}.svg", $name));
        std::fs::write(&svg_path, &svg).with_context(|| format!("cannot write {}", svg_path.display()))?;
        (svg, vec![svg_path, png])
    }};
}

/// The charts of a report, inlined: one `<figure>` per (caption, SVG text), numbered `chart-<i>`.
pub(crate) fn figures_html(figures: &[(String, String)]) -> String {
    let mut html = String::new();
    for (i, (title, svg)) in figures.iter().enumerate() {
        let body = svg.split_once("?>").map(|x| x.1).unwrap_or(svg);
        html.push_str(&format!(
            "<figure id=\"chart-{i}\"><figcaption>{}</figcaption>\n{}\n</figure>\n",
            html_escape(title),
            body.trim()
        ));
    }
    html
}

pub(crate) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Writes comparison.csv, the charts and report.html into `out`; returns the files written.
pub fn write_comparison(
    out: &Path,
    cmp: &Comparison,
    scenarios: &[ScenarioData],
    focus: &str,
    (command_line, dpi): (&[String], Option<u32>),
) -> Result<Vec<PathBuf>> {
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
        type Value = fn(&crate::analysis::compare::TracePoint) -> f64;
        let series: [(&str, &str, bool, Value); 2] =
            [("cash", "Cash", true, |p| p.cash), ("users", "Users", false, |p| p.users)];
        for firm in &cmp.firms {
            for (what, title, money, value) in series {
                // A panel with nothing to show (a firm without cash of its own: a big tech's chatbot) is dropped.
                if !has_signal(scenarios, firm, value) {
                    continue;
                }
                let (svg, f) =
                    chart_files!(charts, format!("fan_{what}_{firm}"), dpi, |root: &DrawingArea<_, Shift>| fan(
                        root,
                        scenarios,
                        firm,
                        (what, money),
                        value
                    ));
                files.extend(f);
                figures.push((format!("{title} of {firm}"), svg));
            }
        }
        for s in scenarios {
            let safe: String =
                s.name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
            let (svg, f) = chart_files!(charts, format!("shares_{safe}"), dpi, |root: &DrawingArea<_, Shift>| shares(
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
        let y_desc = if metric == "hhi_end" {
            "HHI of user shares at the end (0–1)".to_string()
        } else if metric == "end_cash_usd" {
            "cash at the end (US$)".to_string()
        } else {
            format!("revenue in {} (US$)", metric.trim_start_matches("revenue_").trim_end_matches("_usd"))
        };
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
            format!("{y_desc}, across replicates")
        } else {
            format!("{firm}: {y_desc}, across replicates")
        };
        let name = format!("box_{metric}{}", if firm.is_empty() { String::new() } else { format!("_{firm}") });
        let (svg, f) = chart_files!(charts, name, dpi, |root: &DrawingArea<_, Shift>| boxes(
            root,
            &title,
            &groups,
            (&y_desc, money)
        ));
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
    let versions: std::collections::BTreeSet<&str> = scenarios.iter().map(|s| s.version.as_str()).collect();
    html.push_str(&format!(
        "<p id=\"provenance\">llm-market {}; command <code>{}</code>.</p>\n",
        html_escape(&versions.into_iter().collect::<Vec<_>>().join(", ")),
        html_escape(&command_line.join(" "))
    ));
    html.push_str("<h2>Scenarios</h2>\n<table id=\"scenarios\"><tr><th>scenario</th><th>description</th><th>agents</th><th>replicates (seeds)</th><th>failed runs</th><th>source</th></tr>\n");
    for s in scenarios {
        let seeds: Vec<String> = s.replicates.iter().map(|r| r.seed.to_string()).collect();
        let seeds = if seeds.len() > 3 {
            format!("{}, {}, …, {}", seeds[0], seeds[1], seeds[seeds.len() - 1])
        } else {
            seeds.join(", ")
        };
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td></tr>\n",
            html_escape(&s.name),
            html_escape(&s.description),
            s.agents.map(|a| a.to_string()).unwrap_or_else(|| "?".into()),
            s.replicates.len(),
            html_escape(&seeds),
            s.failed,
            html_escape(&s.source)
        ));
    }
    html.push_str("</table>\n<h2>Headline results</h2>\n<table id=\"headline\"><tr><th>metric</th><th>scenario</th><th>n</th><th>mean</th><th>interval</th><th>difference vs baseline</th><th>interval</th><th>pairing</th></tr>\n");
    let mut rows = cmp.headline(focus);
    rows.sort_by(|a, b| a.metric.cmp(&b.metric).then(a.firm.cmp(&b.firm)));
    for r in rows {
        let f = |x: f64| if r.metric.ends_with("_usd") { fmt_money(x) } else { fmt_value(&r.metric, x) };
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
    html.push_str("</table>\n<p>Every metric of every firm is in <code>comparison.csv</code>.</p>\n");
    // Under --posterior: the predictive intervals and the variance split.
    let mut post: Vec<&crate::analysis::compare::Row> =
        cmp.headline(focus).into_iter().filter(|r| r.predictive_lo.is_some()).collect();
    if !post.is_empty() {
        post.sort_by(|a, b| a.metric.cmp(&b.metric).then(a.firm.cmp(&b.firm)));
        html.push_str("<h2>Under parameter uncertainty</h2>\n<p>Each scenario ran under the same draws from the calibration's posterior × the same seeds: the 90% posterior predictive interval of the runs, and the shares of their variance from the parameter draws and from the seeds.</p>\n<table id=\"posterior\"><tr><th>metric</th><th>scenario</th><th>n</th><th>predictive 90%</th><th>from parameters</th><th>from seeds</th></tr>\n");
        for r in post {
            let f = |x: f64| if r.metric.ends_with("_usd") { fmt_money(x) } else { fmt_value(&r.metric, x) };
            let pct = |x: Option<f64>| x.map_or("-".into(), |v| format!("{:.0}%", 100.0 * v));
            html.push_str(&format!(
                "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>[{}, {}]</td><td>{}</td><td>{}</td></tr>\n",
                html_escape(&r.metric),
                if r.firm.is_empty() { String::new() } else { format!(" ({})", html_escape(&r.firm)) },
                html_escape(&r.scenario),
                r.n,
                f(r.predictive_lo.unwrap_or(f64::NAN)),
                f(r.predictive_hi.unwrap_or(f64::NAN)),
                pct(r.share_parameters),
                pct(r.share_seeds)
            ));
        }
        html.push_str("</table>\n");
    }
    html.push_str("<h2>Charts</h2>\n");
    if has_traces {
        html.push_str("<p id=\"decision-marks\">On the fan charts, the first replicate's decisions (its <code>decisions.csv</code>) are marked on the scenario's median line: &#9650; a model released, &#9679; a funding round, &#10005; a cost cut (or one undone), &#9670; a training run started or cancelled, &#9632; an exit.</p>\n");
    }
    html.push_str(&figures_html(&figures));
    html.push_str("</body></html>\n");
    let rpath = out.join("report.html");
    crate::io::sweep_out::write_atomic(&rpath, &html)?;
    files.push(rpath);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_axes_tick_on_calendar_boundaries() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        let labels = |a, b| year_ticks(a, b).into_iter().map(year_label).collect::<Vec<_>>();
        assert_eq!(
            labels(d(2022, 11, 30), d(2025, 12, 31)),
            ["Jan 2023", "Jul 2023", "2024", "Jul 2024", "2025", "Jul 2025"].map(|s| s.replace("Jan 2023", "2023"))
        );
        assert_eq!(
            labels(d(2022, 11, 30), d(2023, 9, 30)),
            ["Jan 2023", "Apr 2023", "Jul 2023"].map(|s| s.replace("Jan 2023", "2023"))
        );
        assert_eq!(
            labels(d(2023, 1, 15), d(2023, 6, 30)),
            ["Feb 2023", "Mar 2023", "Apr 2023", "May 2023", "Jun 2023"]
        );
        assert_eq!(fmt_money(1.0e10), "$10.0B");
        assert_eq!(fmt_money(-1.234e9), "−$1.2B");
        assert_eq!(fmt_money(9.5e8), "$950M");
        assert_eq!(fmt_money(0.0), "$0");
        assert_eq!((fmt_money(1.5e6), fmt_money(2.0e6)), ("$1.5M".into(), "$2.0M".into()), "ticks stay distinct");
    }
}
