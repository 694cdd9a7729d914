//! Docking (Rand & Rust 2011): with one firm and word of mouth from everyone aware, the agent-based
//! awareness share follows the closed-form Bass curve F(t) = (1 − e^{−(p+q)t}) / (1 + (q/p) e^{−(p+q)t}).

use super::support::*;
use llm_market::api::run_in_memory;
use llm_market::config::Scenario;
use llm_market::config::file::{SegmentValues, WordOfMouth};
use llm_market::model::calendar::DAYS_PER_MONTH;
use llm_market::model::econ::bass_share;
use std::sync::Arc;

#[test]
fn agent_awareness_matches_the_bass_curve() {
    let (p, q) = (0.02, 0.4);
    let base = load(&tiny(), &[]);
    let mut f = base.params().clone();
    f.firms.truncate(1);
    f.events.clear();
    f.agents = 40_000;
    f.end = llm_market::config::file::DateValue("2024-11-30".parse().unwrap());
    f.record_every = Some(llm_market::model::calendar::Period::Month);
    f.awareness.p_base_per_month = p;
    f.awareness.launch_p_per_month = 0.0;
    f.awareness.word_of_mouth_per_month = q;
    f.awareness.word_of_mouth_from = WordOfMouth::Aware;
    f.firms[0].reach_per_month = 0.0;
    f.firms[0].awareness_by_segment = SegmentValues::default();
    // Early randomness shifts a single Bass path in time; the mean of a few replicates is compared.
    let seeds = [1u64, 2, 3, 4];
    let mut mean: Vec<(f64, f64)> = Vec::new();
    for seed in seeds {
        let mut fs = f.clone();
        fs.seed = seed;
        let s = Arc::new(Scenario::from_file(fs, "docking").unwrap());
        let start = s.params().start.0;
        let (sink, _) = run_in_memory(s).unwrap();
        assert!(sink.market.len() >= 24);
        if mean.is_empty() {
            mean = sink.market.iter().map(|r| ((r.date - start).num_days() as f64 / DAYS_PER_MONTH, 0.0)).collect();
        }
        for (m, row) in mean.iter_mut().zip(&sink.market) {
            m.1 += row.aware_users as f64 / row.population as f64 / seeds.len() as f64;
        }
    }
    let mut worst: f64 = 0.0;
    for (t, agent) in &mean {
        worst = worst.max((agent - bass_share(p, q, *t)).abs());
    }
    assert!(worst < 0.01, "largest gap between agent and closed-form Bass curves: {worst}");
}
