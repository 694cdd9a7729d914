//! The baseline reproduces the 2023 patterns of docs/ODD.md §1: ChatGPT visits peak in April–June 2023
//! and fall in July and August; chat's serving spend in February and spring 2023 is within ±25% of
//! US$0.7M/day; ChatGPT is at capacity in January–February 2023; OpenAI's 2022 result is within ±30% of
//! the reported US$540M loss; the dated inputs (GPT-4's capped tier among them) match the public record. At 100k agents by default; at the full 1M agents when
//! `LLM_MARKET_SLOW_TESTS` is set (CI sets it).

use llm_market::analysis::calibration::calibrate;
use llm_market::config::{self, Overrides};
use llm_market::model::calendar::Period;
use std::sync::Arc;

#[test]
fn baseline_meets_every_calibration_criterion() {
    let agents = if std::env::var_os("LLM_MARKET_SLOW_TESTS").is_some() { None } else { Some(100_000) };
    let o = Overrides { agents, record_every: Some(Period::Month), ..Default::default() };
    let s = config::load(None, &o).unwrap();
    let report = calibrate(Arc::new(s), &llm_market::api::RunOptions::default(), &Default::default()).unwrap();
    let failed: Vec<_> = report
        .lines
        .iter()
        .filter(|l| l.ok == Some(false))
        .map(|l| format!("{} {}: {} vs {}", l.metric, l.period, l.model, l.data))
        .collect();
    assert!(failed.is_empty(), "calibration criteria not met:\n{}", failed.join("\n"));
    assert!(report.lines.iter().filter(|l| l.ok == Some(true)).count() >= 17);
}
