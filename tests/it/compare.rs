//! Scenario comparison: a scenario against itself gives zero differences with zero-width intervals,
//! every chart is written and valid, the report embeds every chart and table (the fan charts with the first
//! replicate's decisions marked), `end_quality_elo` comes from the traces, and inputs from different
//! binary versions or with incompatible specs are refused.

use super::support::*;
use std::fs;

fn compare(out: &std::path::Path, inputs: &[&str], extra: &[&str]) -> std::process::Output {
    let mut args = vec!["compare"];
    args.extend_from_slice(inputs);
    args.extend_from_slice(&["--out", out.to_str().unwrap(), "--replicates", "3", "--set", "end=2023-06-30"]);
    args.extend_from_slice(extra);
    llm(&args)
}

#[test]
fn a_scenario_against_itself_differs_by_exactly_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (root().join("tests/data/tiny.toml"), root().join("tests/data/tiny_copy.toml"));
    // To the end of September 2023: the tiny scenario's firms decide from July.
    let o = compare(
        dir.path(),
        &[a.to_str().unwrap(), b.to_str().unwrap()],
        &["--focus", "lab", "--set", "end=2023-09-30"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("Comparison against baseline `tiny`"), "{stdout}");
    let mut r = csv::Reader::from_path(dir.path().join("comparison.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    let col = |n: &str| h.iter().position(|x| x == n).unwrap();
    let mut copies = 0;
    let mut quality = 0;
    for rec in r.records() {
        let rec = rec.unwrap();
        quality += (&rec[col("metric")] == "end_quality_elo") as usize;
        if &rec[col("scenario")] == "tiny_copy" {
            copies += 1;
            assert_eq!(&rec[col("pairing")], "paired");
            let what = format!("{} {}", &rec[col("metric")], &rec[col("firm")]);
            let v = |c: &str| rec[col(c)].parse::<f64>().unwrap();
            assert_eq!(v("diff_vs_baseline"), 0.0, "{what}");
            if &rec[col("kind")] == "probability" {
                // Newcombe's paired interval: around 0, symmetric, never outside [-1, 1]. With 3 pairs and no
                // discordant one it still has a width: 3 seeds cannot rule out other seeds disagreeing.
                let (lo, hi) = (v("diff_ci_lo"), v("diff_ci_hi"));
                assert!((-1.0..=0.0).contains(&lo) && (0.0..=1.0).contains(&hi), "{what}: [{lo}, {hi}]");
                assert!((lo + hi).abs() < 1e-12, "{what}: [{lo}, {hi}]");
            } else {
                assert_eq!((v("diff_ci_lo"), v("diff_ci_hi")), (0.0, 0.0), "{what}");
            }
        }
    }
    assert!(copies > 20, "{copies} rows");
    assert_eq!(quality, 2 * 3, "end_quality_elo for every firm of both scenarios (from the traces)");

    // Every chart in SVG and PNG, valid, and embedded in the self-contained report.
    let charts: Vec<_> = fs::read_dir(dir.path().join("charts")).unwrap().map(|e| e.unwrap().path()).collect();
    let svgs: Vec<_> = charts.iter().filter(|p| p.extension().is_some_and(|e| e == "svg")).collect();
    let pngs: Vec<_> = charts.iter().filter(|p| p.extension().is_some_and(|e| e == "png")).collect();
    assert_eq!(svgs.len(), pngs.len());
    // Users fans for the 3 firms, a cash fan for the lab only (the giant's and the open model's cash is 0
    // throughout: a panel with nothing to show is dropped), 2 share charts, 3 boxplots.
    assert_eq!(svgs.len(), 3 + 1 + 2 + 3, "{svgs:?}");
    for absent in ["fan_cash_giant.svg", "fan_cash_open.svg"] {
        assert!(!svgs.iter().any(|p| p.ends_with(absent)), "{absent} should be dropped");
    }
    // Paper-ready labels: year-aligned ticks, the replicate count, money as $…, no quoted category labels.
    let fan = fs::read_to_string(dir.path().join("charts/fan_cash_lab.svg")).unwrap();
    let texts: Vec<&str> = fan.lines().map(str::trim).collect();
    assert!(texts.contains(&"2023") && texts.contains(&"Jul 2023"), "year-aligned ticks: {texts:?}");
    assert!(fan.contains("(n = 3)") && fan.contains("cash (US$)"), "fan chart labels");
    assert!(fan.contains("$"), "money on the axis");
    let boxes = fs::read_to_string(dir.path().join("charts/box_hhi_end.svg")).unwrap();
    assert!(boxes.contains("tiny (n = 3)") && !boxes.contains("&quot;tiny") && !boxes.contains("\"tiny"), "box labels");
    assert!(boxes.contains("HHI of user shares at the end (0–1)"));
    for p in &svgs {
        let text = fs::read_to_string(p).unwrap();
        assert!(text.contains("<svg") && text.trim_end().ends_with("</svg>"), "{}", p.display());
    }
    for p in &pngs {
        assert_eq!(&fs::read(p).unwrap()[..8], b"\x89PNG\r\n\x1a\n", "{}", p.display());
    }
    let html = fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert_eq!(html.matches("<figure").count(), svgs.len());
    assert_eq!(html.matches("<svg").count(), svgs.len());
    assert!(html.contains("id=\"scenarios\"") && html.contains("id=\"headline\""));
    assert!(
        !html.contains("http://") || html.matches("http://").count() == html.matches("xmlns").count(),
        "no network references"
    );
    assert!(html.contains("Test scenario: every mechanism on a small market."));
    // The fan charts mark the first replicate's decisions, and the report says how to read the marks.
    assert!(html.contains("id=\"decision-marks\""));
    let decisions = fs::read_to_string(dir.path().join("runs/tiny/traces/run-000000/decisions.csv")).unwrap();
    assert!(decisions.lines().count() > 1, "the tiny lab decides from July 2023");
}

#[test]
fn different_versions_and_incompatible_specs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let scenario = tiny();
        let mut args =
            vec!["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--set", "end=2023-03-31"];
        args.extend_from_slice(extra);
        assert!(llm(&args).status.success());
        out
    };
    let a = run("a", &[]);
    let b = run("b", &["--seed", "9"]);
    // Another binary version.
    let m = b.join("manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_str(&fs::read_to_string(&m).unwrap()).unwrap();
    manifest["version"] = "0.0.1".into();
    fs::write(&m, serde_json::to_string(&manifest).unwrap()).unwrap();
    let o =
        llm(&["compare", a.to_str().unwrap(), b.to_str().unwrap(), "--out", dir.path().join("c").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("different binary versions"), "{}", stderr(&o));
    // Different firms.
    let base = dir.path().join("base");
    assert!(
        llm(&["run", "--agents", "2000", "--set", "end=2023-01-31", "--out", base.to_str().unwrap()]).status.success()
    );
    let o =
        llm(&["compare", a.to_str().unwrap(), base.to_str().unwrap(), "--out", dir.path().join("d").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("incompatible specs"), "{}", stderr(&o));
    // An unknown baseline name.
    let o =
        llm(&["compare", a.to_str().unwrap(), "--baseline", "nope", "--out", dir.path().join("e").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--baseline \"nope\" is none of the scenarios"), "{}", stderr(&o));
}
