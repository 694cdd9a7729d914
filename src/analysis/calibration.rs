//! The table "model vs 2023 data" (README "Calibration"): runs a scenario with monthly recording and compares
//! it with `data/calibration_2023.csv` (public figures with sources, compiled into the binary).

use super::fmt_big;
use crate::api::{self, RunOptions};
use crate::config::Scenario;
use crate::config::file::EventKind;
use crate::experiment::runner::Stoppable;
use crate::sim::SimError;
use crate::sim::rows::TraceRow;
use chrono::{Datelike, NaiveDate};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

/// The public figures up to 2023-08-31, with sources: the design notes' table plus two rows (ChatGPT "at
/// capacity" in January–February 2023, GPT-4's message cap).
pub use crate::inference::targets::DATA;

/// The firm the calibration is about.
pub const FOCUS_FIRM: &str = "openai";

/// One line of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub metric: String,
    pub period: String,
    pub model: String,
    pub data: String,
    pub ratio: Option<f64>,
    /// The model's and the data's values as numbers, where they are numbers (calibration.csv writes these;
    /// `model` and `data` are the text for people: `1.29B`, dates, criteria).
    pub model_value: Option<f64>,
    pub data_value: Option<f64>,
    /// `Some(true)` when the criterion is met, `None` when there is no criterion.
    pub ok: Option<bool>,
    pub source: String,
}

/// The whole table.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub scenario: String,
    pub seed: u64,
    pub agents: u64,
    pub lines: Vec<Line>,
}

struct Datum {
    date: String,
    metric: String,
    entity: String,
    value: f64,
    source: String,
}

fn data() -> Vec<Datum> {
    let mut r = csv::Reader::from_reader(DATA.as_bytes());
    r.records()
        .filter_map(|x| x.ok())
        .filter_map(|x| {
            Some(Datum {
                date: x.get(0)?.to_string(),
                metric: x.get(1)?.to_string(),
                entity: x.get(2)?.to_string(),
                value: x.get(3)?.parse().ok()?,
                source: x.get(5)?.to_string(),
            })
        })
        .collect()
}

/// Runs the scenario (its trace must be recorded monthly) and builds the report; a non-zero `stop` (a
/// signal) ends the run at its next tick with an error.
pub fn calibrate(scenario: Arc<Scenario>, options: &RunOptions, stop: &AtomicUsize) -> Result<Report, SimError> {
    let mut sink = Stoppable { inner: api::MemorySink::default(), stop };
    let tables = api::run_streaming(&scenario, options, &mut sink, &mut |_, _| {})?;
    let run = api::RunResult::from_parts(sink.inner, tables);
    let p = scenario.params();
    let firm_trace: Vec<&TraceRow> = run.trace.iter().filter(|r| r.firm == FOCUS_FIRM).collect();
    let month =
        |y: i32, m: u32| firm_trace.iter().find(|r| r.date.year() == y && r.date.month() == m && r.tick > 0).copied();
    let d = data();
    let mut lines = Vec::new();

    // Monthly visits, the emergent curve of F4.
    let mut visits = Vec::new();
    for x in d.iter().filter(|x| x.metric == "web_visits" && x.entity == "ChatGPT") {
        let (y, m): (i32, u32) = (x.date[..4].parse().unwrap_or(0), x.date[5..7].parse().unwrap_or(0));
        let model = month(y, m).map(|r| r.visits as f64).unwrap_or(0.0);
        visits.push(((y, m), model, x.value));
        let ratio = model / x.value;
        lines.push(Line {
            metric: "ChatGPT web visits".into(),
            period: x.date.clone(),
            model: fmt_big(model),
            data: fmt_big(x.value),
            ratio: Some(ratio),
            model_value: Some(model),
            data_value: Some(x.value),
            ok: None,
            source: x.source.clone(),
        });
    }
    let in_2023: Vec<_> = visits.iter().filter(|v| v.0.0 == 2023).collect();
    if let Some(peak) = in_2023.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
        lines.push(Line {
            metric: "ChatGPT visits peak month (Jan–Aug 2023)".into(),
            period: "2023".into(),
            model: format!("{}-{:02}", peak.0.0, peak.0.1),
            data: "2023-05".into(),
            ratio: None,
            model_value: None,
            data_value: None,
            ok: Some((4..=6).contains(&peak.0.1)),
            source: "Similarweb; criterion: peak in April–June".into(),
        });
    }
    for m in [7u32, 8] {
        let cur = visits.iter().find(|v| v.0 == (2023, m));
        let prev = visits.iter().find(|v| v.0 == (2023, m - 1));
        if let (Some(c), Some(p)) = (cur, prev) {
            let model = c.1 / p.1 - 1.0;
            let data = c.2 / p.2 - 1.0;
            lines.push(Line {
                metric: "ChatGPT visits, change on previous month".into(),
                period: format!("2023-{m:02}"),
                model: format!("{:+.1}%", 100.0 * model),
                data: format!("{:+.1}%", 100.0 * data),
                ratio: None,
                model_value: Some(model),
                data_value: Some(data),
                ok: Some(model < 0.0),
                source: "Similarweb; criterion: visits fall".into(),
            });
        }
    }
    // Monthly active users, January 2023.
    if let Some(x) = d.iter().find(|x| x.metric == "monthly_active_users") {
        let model = month(2023, 1).map(|r| r.users as f64).unwrap_or(0.0);
        lines.push(Line {
            metric: "ChatGPT monthly active users".into(),
            period: x.date.clone(),
            model: fmt_big(model),
            data: fmt_big(x.value),
            ratio: Some(model / x.value),
            model_value: Some(model),
            data_value: Some(x.value),
            ok: None,
            source: x.source.clone(),
        });
    }
    // Serving spend per day (F1): what ChatGPT's chat (free and paid) took of OpenAI's compute bill.
    if let Some(x) = d.iter().find(|x| x.metric == "inference_cost") {
        for (label, months) in [("2023-02", vec![2u32]), ("2023-03..05 (spring)", vec![3, 4, 5])] {
            let mut spend = 0.0;
            let mut days = 0.0;
            for m in &months {
                if let Some(r) = month(2023, *m) {
                    spend += (r.cost_free_chat_usd + r.cost_paid_chat_usd).usd();
                    days += r.date.day() as f64;
                }
            }
            let per_day = if days > 0.0 { spend / days } else { 0.0 };
            let ratio = per_day / x.value;
            lines.push(Line {
                metric: "ChatGPT serving spend per day (USD; chat's share of compute)".into(),
                period: label.into(),
                model: fmt_big(per_day),
                data: fmt_big(x.value),
                ratio: Some(ratio),
                model_value: Some(per_day),
                data_value: Some(x.value),
                ok: Some((0.75..=1.25).contains(&ratio)),
                source: format!("{}; criterion: within ±25%", x.source),
            });
        }
    }
    // ChatGPT "at capacity" (waitlist, rate limits) in January–February 2023: emerges from demand outgrowing
    // the GPUs contracted before launch.
    let rationed: Vec<(u32, u64, u64)> =
        [1u32, 2].iter().filter_map(|m| month(2023, *m).map(|r| (*m, r.waitlist, r.rationed_users))).collect();
    if let Some(x) = d.iter().find(|x| x.metric == "at_capacity") {
        let text = rationed
            .iter()
            .map(|(m, w, r)| format!("2023-{m:02}: {} waitlisted, {} rationed", fmt_big(*w as f64), fmt_big(*r as f64)))
            .collect::<Vec<_>>()
            .join("; ");
        lines.push(Line {
            metric: "ChatGPT at capacity (sign-ups waitlisted, users rationed)".into(),
            period: "2023-01..02".into(),
            model: if text.is_empty() { "-".into() } else { text },
            data: "at capacity".into(),
            ratio: None,
            model_value: None,
            data_value: None,
            ok: Some(rationed.iter().any(|(_, w, r)| *w > 0 || *r > 0)),
            source: format!("{}; criterion: waitlist or rationing in January or February", x.source),
        });
    }
    // Dated inputs: prices, funding, launches.
    let date_line = |metric: &str, model: Option<NaiveDate>, data: &str, source: &str| Line {
        metric: metric.into(),
        period: "date".into(),
        model: model.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
        data: data.into(),
        ratio: None,
        model_value: None,
        data_value: None,
        ok: Some(model.map(|d| d.to_string()) == Some(data.to_string())),
        source: source.into(),
    };
    let event_date = |firm: &str, pred: &dyn Fn(&crate::config::file::EventFile) -> bool| {
        p.events.iter().filter(|e| e.enabled && e.firm.as_deref() == Some(firm) && pred(e)).map(|e| e.date.0).min()
    };
    lines.push(date_line(
        "ChatGPT Plus at $20/month from",
        event_date(FOCUS_FIRM, &|e| e.kind == EventKind::Price && e.sub_price_usd_per_month == Some(20.0)),
        "2023-02-01",
        "OpenAI 'Introducing ChatGPT Plus'",
    ));
    lines.push(date_line(
        "ChatGPT Enterprise seats from",
        event_date(FOCUS_FIRM, &|e| e.kind == EventKind::Price && e.seat_price_usd_per_month.is_some_and(|s| s > 0.0)),
        "2023-08-28",
        "OpenAI",
    ));
    lines.push(date_line(
        "GPT-4 release",
        event_date(FOCUS_FIRM, &|e| e.kind == EventKind::Release),
        "2023-03-14",
        "OpenAI",
    ));
    let capped_tier = scenario
        .firms()
        .iter()
        .find(|f| f.id == FOCUS_FIRM)
        .and_then(|f| f.tiers.iter().skip(1).find(|t| t.message_cap_per_active_day > 0.0))
        .map(|t| t.release);
    lines.push(date_line(
        "GPT-4 tier with a message cap (paid users) from",
        capped_tier,
        "2023-03-14",
        "OpenAI (GPT-4 in ChatGPT Plus, 25 messages per 3 hours)",
    ));
    let msft: f64 = p
        .events
        .iter()
        .filter(|e| {
            e.enabled
                && e.kind == EventKind::Funding
                && e.firm.as_deref() == Some(FOCUS_FIRM)
                && e.date.0.year() >= 2023
        })
        .filter_map(|e| e.amount_usd)
        .sum();
    let first_msft = event_date(FOCUS_FIRM, &|e| e.kind == EventKind::Funding);
    lines.push(Line {
        metric: "Microsoft investment (sum of tranches from 2023)".into(),
        period: first_msft.map(|d| d.to_string()).unwrap_or_default(),
        model: fmt_big(msft),
        data: "10.00B from 2023-01-23".into(),
        ratio: Some(msft / 1e10),
        model_value: Some(msft),
        data_value: None,
        ok: Some((msft - 1e10).abs() < 1.0 && first_msft.map(|d| d.to_string()).as_deref() == Some("2023-01-23")),
        source: "Bloomberg / Semafor".into(),
    });
    let api = p.firms.iter().find(|f| f.id == FOCUS_FIRM).map(|f| f.api_price_usd_per_mtok).unwrap_or(0.0);
    lines.push(Line {
        metric: "gpt-3.5-turbo API price (USD per M tokens)".into(),
        period: "2023-03".into(),
        model: format!("{api:.2}"),
        data: "2.00".into(),
        ratio: Some(api / 2.0),
        model_value: Some(api),
        data_value: Some(2.0),
        ok: Some((api - 2.0).abs() < 1e-9),
        source: "OpenAI price list".into(),
    });
    for (firm, label, data_date) in [
        ("bing", "Bing Chat launch", "2023-02-07"),
        ("llama", "LLaMA launch", "2023-02-24"),
        ("claude", "Claude launch (API)", "2023-03-14"),
        ("bard", "Bard launch", "2023-03-21"),
        ("ernie", "Ernie Bot public", "2023-08-31"),
    ] {
        let model = scenario
            .firms()
            .iter()
            .find(|f| f.id == firm)
            .map(|f| if firm == "ernie" { f.chat_launch } else { f.launch });
        lines.push(date_line(label, model, data_date, "company announcements"));
    }
    lines.push(date_line(
        "Claude 2 public web app",
        scenario.firms().iter().find(|f| f.id == "claude").map(|f| f.chat_launch),
        "2023-07-11",
        "Anthropic",
    ));
    lines.push(date_line(
        "Llama 2 (open weights, commercial use)",
        event_date("llama", &|e| e.kind == EventKind::Release && e.self_hostable == Some(true)),
        "2023-07-18",
        "Meta",
    ));

    // Yearly results and the seed's forecasts (F10, F13, F14, F2).
    let annual: Vec<_> = run.annual.iter().filter(|r| r.firm == FOCUS_FIRM).collect();
    let period = |year: i32| {
        if year == p.start.0.year() && (p.start.0.month(), p.start.0.day()) != (1, 1) {
            format!("{year} (from {})", p.start.0)
        } else {
            year.to_string()
        }
    };
    for r in &annual {
        lines.push(Line {
            metric: "OpenAI revenue (prediction after 2023-08)".into(),
            period: period(r.year),
            model: fmt_big(r.revenue_usd.usd()),
            data: match r.year {
                2023 => "forecast 200M".into(),
                2024 => "forecast 1.00B".into(),
                _ => "-".into(),
            },
            ratio: match r.year {
                2023 => Some(r.revenue_usd.usd() / 2e8),
                2024 => Some(r.revenue_usd.usd() / 1e9),
                _ => None,
            },
            model_value: Some(r.revenue_usd.usd()),
            data_value: match r.year {
                2023 => Some(2e8),
                2024 => Some(1e9),
                _ => None,
            },
            ok: None,
            source: "Reuters (Dec 2022) forecast; IPO threshold 100M (Investopedia)".into(),
        });
        lines.push(Line {
            metric: "OpenAI profit (loss)".into(),
            period: period(r.year),
            model: fmt_big(r.profit_usd.usd()),
            data: if r.year == 2022 { "-540M (2022)".into() } else { "-".into() },
            ratio: None,
            model_value: Some(r.profit_usd.usd()),
            data_value: if r.year == 2022 { Some(-5.4e8) } else { None },
            ok: None,
            source: "The Information: 2022 loss ≈ 540M".into(),
        });
    }
    // OpenAI's 2022 result: the run's 2022 (from launch) plus the costs of 2022 before it, from the same
    // parameters (fixed cost on its growth trend, training programmes); revenue before the run (the GPT-3
    // API, about 28M in 2022) is not modelled and counts as zero.
    if let (Some(model), Some(x)) = (
        crate::inference::targets::result_of_year(&scenario, &run, FOCUS_FIRM, 2022),
        d.iter().find(|x| x.metric == "net_result" && x.entity == "OpenAI" && x.date == "2022"),
    ) {
        let ratio = model / x.value;
        lines.push(Line {
            metric: "OpenAI 2022 result (run from launch + earlier 2022 costs)".into(),
            period: "2022".into(),
            model: fmt_big(model),
            data: fmt_big(x.value),
            ratio: Some(ratio),
            model_value: Some(model),
            data_value: Some(x.value),
            ok: Some((0.7..=1.3).contains(&ratio)),
            source: format!("{}; criterion: within ±30%", x.source),
        });
    }
    let revenue_in = |year: i32| annual.iter().find(|r| r.year == year).map(|r| r.revenue_usd.usd()).unwrap_or(0.0);
    for (label, year, threshold, source) in [
        (
            "OpenAI revenue ≥ 200M in 2023 (forecast, F14)",
            2023,
            2e8,
            "Reuters (Dec 2022), judged unlikely by the article",
        ),
        (
            "OpenAI revenue ≥ 1B in 2024 (forecast, F14)",
            2024,
            1e9,
            "Reuters (Dec 2022), judged unlikely by the article",
        ),
    ] {
        lines.push(Line {
            metric: label.into(),
            period: year.to_string(),
            model: (revenue_in(year) >= threshold).to_string(),
            data: "forecast".into(),
            ratio: None,
            model_value: None,
            data_value: None,
            ok: None,
            source: source.into(),
        });
    }
    let ipo_year = annual
        .iter()
        .find(|r| r.revenue_usd.usd() >= 1e8)
        .map(|r| r.year.to_string())
        .unwrap_or_else(|| "never".into());
    lines.push(Line {
        metric: "First year with revenue ≥ 100M (IPO threshold, F13)".into(),
        period: "run".into(),
        model: ipo_year,
        data: "-".into(),
        ratio: None,
        model_value: None,
        data_value: None,
        ok: None,
        source: "Investopedia via the source article".into(),
    });
    if let Some(s) = run.summary.iter().find(|s| s.firm == FOCUS_FIRM) {
        lines.push(Line {
            metric: "OpenAI bankrupt by end-2024".into(),
            period: "2024".into(),
            model: (s.exit_date.is_some_and(|d| d.year() <= 2024) && s.bankrupt).to_string(),
            data: "predicted by some media (F2)".into(),
            ratio: None,
            model_value: None,
            data_value: None,
            ok: None,
            source: "the source article".into(),
        });
        lines.push(Line {
            metric: "OpenAI break-even month".into(),
            period: "run".into(),
            model: s.break_even_date.map(|d| d.to_string()).unwrap_or_else(|| "never".into()),
            data: "-".into(),
            ratio: None,
            model_value: None,
            data_value: None,
            ok: None,
            source: "F17".into(),
        });
    }
    Ok(Report { scenario: p.name.clone(), seed: p.seed, agents: p.agents, lines })
}

impl Report {
    pub fn to_markdown(&self) -> String {
        let mut s =
            format!("Calibration of scenario `{}` (seed {}, {} agents)\n\n", self.scenario, self.seed, self.agents);
        s.push_str("| metric | period | model | data | model/data | check | source |\n|---|---|---|---|---|---|---|\n");
        for l in &self.lines {
            let ratio = l.ratio.map(|r| format!("{r:.2}")).unwrap_or_default();
            let ok = match l.ok {
                Some(true) => "ok",
                Some(false) => "OFF",
                None => "",
            };
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                l.metric, l.period, l.model, l.data, ratio, ok, l.source
            ));
        }
        s
    }

    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record(["metric", "period", "model", "data", "ratio", "ok", "source"]);
        for l in &self.lines {
            let _ = w.write_record([
                l.metric.clone(),
                l.period.clone(),
                l.model_value.map(|v| format!("{v}")).unwrap_or_else(|| l.model.clone()),
                l.data_value.map(|v| format!("{v}")).unwrap_or_else(|| l.data.clone()),
                l.ratio.map(|r| format!("{r:.4}")).unwrap_or_default(),
                l.ok.map(|b| b.to_string()).unwrap_or_default(),
                l.source.clone(),
            ]);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    /// Whether every line with a criterion meets it.
    pub fn all_ok(&self) -> bool {
        self.lines.iter().all(|l| l.ok != Some(false))
    }
}
