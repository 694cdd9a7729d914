//! `llm-market analyze` on real sweeps of the tiny scenario: a Saltelli and a Morris design run and analysed
//! end to end, outcomes that move with their inputs, refusals with exit code 2 and nothing written, and
//! the runs.csv columns the analyses read.

use super::support::{llm, stderr, tiny};
use std::path::Path;

/// Writes a sweep file over the tiny scenario with `design` (the `[design]` table's body).
fn sweep_file(dir: &Path, design: &str, replicates: u64) -> std::path::PathBuf {
    let text = format!(
        r#"name = "analyze_test"
scenario = "{}"
seed = 3
replicates = {replicates}
set = ["end=2023-06-30"]

[design]
{design}

[[parameters]]
path = "awareness.word_of_mouth_per_month"
min = 1.5
max = 6.0
scale = "log"

[[parameters]]
path = "firms.lab.brand"
min = 0.0
max = 1.0

[[parameters]]
path = "segments.consumer.outside_utility"
min = 2.0
max = 4.0
"#,
        tiny().display()
    );
    let f = dir.join("sweep.toml");
    std::fs::write(&f, text).unwrap();
    f
}

fn sweep(dir: &Path, design: &str, replicates: u64) -> std::path::PathBuf {
    let f = sweep_file(dir, design, replicates);
    let out = dir.join("sweep");
    let o = llm(&["sweep", f.to_str().unwrap(), "--out", out.to_str().unwrap(), "--jobs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    out
}

fn rows(path: &Path) -> Vec<csv::StringRecord> {
    csv::Reader::from_path(path).unwrap().records().map(|r| r.unwrap()).collect()
}

#[test]
fn saltelli_sweep_then_analyze_writes_indices_charts_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = sweep(dir.path(), "kind = \"saltelli\"\nsamples = 8", 2);
    // runs.csv carries the exit reason and bankruptcy by year per firm.
    let runs = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    let header = runs.lines().next().unwrap();
    for c in ["lab_exit_reason", "lab_bankrupt_by_2023", "lab_bankrupt_by_2024", "lab_bankrupt_by_2025"] {
        assert!(header.split(',').any(|h| h == c), "runs.csv lacks {c}: {header}");
    }
    assert_eq!(runs.lines().count(), 1 + 8 * 5 * 2, "(p + 2)·N points × 2 replicates");
    // Two outcomes, every method the design allows, PRIM on a condition; extra flags appended.
    let analyze = |extra: &[&str]| {
        let mut args = vec![
            "analyze",
            out.to_str().unwrap(),
            "--outcome",
            "lab.end_cash_usd",
            "--outcome",
            "lab.revenue_2023_usd",
            "--prim",
            "lab.end_cash_usd < 49300000",
            "--resamples",
            "50",
        ];
        args.extend_from_slice(extra);
        llm(&args)
    };
    let o = analyze(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("lab.end_cash_usd: parameters by ST"), "{text}");
    let a = out.join("analysis");
    let s = rows(&a.join("sensitivity.csv"));
    let count = |m: &str, i: &str| s.iter().filter(|r| &r[1] == m && &r[3] == i).count();
    assert_eq!(count("sobol", "S1"), 2 * 3, "S1 per outcome and parameter");
    assert_eq!(count("sobol", "ST"), 2 * 3);
    assert_eq!(count("prcc", "prcc"), 2 * 3);
    assert_eq!(count("noise", "seed_share"), 2);
    assert!(s.iter().all(|r| &r[7] == "80"), "n_runs is the sweep's 80 runs");
    // Word of mouth moves revenue: its total index is clearly above zero; the brand of a firm that is not
    // `lab`'s competitor in this market moves it less (the index is a real function of the outcomes).
    let st = |p: &str| -> f64 {
        s.iter().find(|r| &r[0] == "lab.revenue_2023_usd" && &r[3] == "ST" && &r[2] == p).unwrap()[4].parse().unwrap()
    };
    assert!(st("awareness.word_of_mouth_per_month") > 0.05, "{}", st("awareness.word_of_mouth_per_month"));
    // Charts on disk, inlined in the report; the manifest says what was analysed.
    let charts: Vec<String> = std::fs::read_dir(a.join("charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    // PRIM on a condition that holds in about half of the runs: its trajectory, box and charts.
    let p = rows(&a.join("prim_boxes.csv"));
    assert!(p.iter().filter(|r| &r[1] == "trajectory").count() >= 2, "a peeling trajectory");
    assert!(p.iter().any(|r| &r[1] == "trajectory" && &r[3] == "true"), "a chosen box");
    for c in [
        "sobol_lab_end_cash_usd.svg",
        "prcc_lab_revenue_2023_usd.png",
        "scatter_lab_end_cash_usd.svg",
        "prim_tradeoff_0.svg",
    ] {
        assert!(charts.contains(&c.to_string()), "{c} missing: {charts:?}");
    }
    let html = std::fs::read_to_string(a.join("report.html")).unwrap();
    let svgs = charts.iter().filter(|c| c.ends_with(".svg")).count();
    assert_eq!(html.matches("<figure").count(), svgs, "every chart is in the report");
    assert!(html.contains("id=\"design\"") && html.contains("id=\"indices\"") && html.contains("saltelli design"));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["kind"], "analysis");
    assert_eq!(m["design"], "saltelli");
    // A second analysis into the same folder is refused, nothing overwritten; --force moves it aside.
    let before = std::fs::read(a.join("sensitivity.csv")).unwrap();
    let again = llm(&["analyze", out.to_str().unwrap(), "--outcome", "lab.end_cash_usd"]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(stderr(&again).contains("already holds an analysis"), "{}", stderr(&again));
    assert_eq!(std::fs::read(a.join("sensitivity.csv")).unwrap(), before);
    let forced =
        llm(&["analyze", out.to_str().unwrap(), "--outcome", "lab.end_cash_usd", "--force", "--resamples", "50"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert!(std::fs::read_dir(&a).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with("backup-")));
    // Same sweep, same options: the same bytes (bootstrap resamples are keyed, not drawn from the clock).
    let other = dir.path().join("again");
    let o2 = analyze(&["--out", other.to_str().unwrap(), "--dpi", "300"]);
    assert!(o2.status.success(), "{}", stderr(&o2));
    // --dpi 300: the PNGs have 300/96 times the pixels (900 → 2813 wide) and say so in their pHYs chunk.
    let png = std::fs::read(other.join("charts/sobol_lab_end_cash_usd.png")).unwrap();
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 2813);
    let at = png.windows(4).position(|w| w == b"pHYs").expect("a pHYs chunk");
    assert_eq!(u32::from_be_bytes(png[at + 4..at + 8].try_into().unwrap()), 11811, "300 dpi in pixels per metre");
    let small = std::fs::read(a.join("charts/sobol_lab_end_cash_usd.png")).unwrap();
    assert_eq!(u32::from_be_bytes(small[16..20].try_into().unwrap()), 900, "without --dpi: 96 dpi, the SVG's size");
    let first = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("backup-"))
        .unwrap();
    assert_eq!(
        std::fs::read(first.join("sensitivity.csv")).unwrap(),
        std::fs::read(other.join("sensitivity.csv")).unwrap()
    );
}

#[test]
fn morris_sweep_gives_elementary_effects_and_wrong_methods_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = sweep(dir.path(), "kind = \"morris\"\ntrajectories = 6\nlevels = 4", 1);
    let o = llm(&[
        "analyze",
        out.to_str().unwrap(),
        "--outcome",
        "lab.total_revenue_usd",
        "--method",
        "morris",
        "--resamples",
        "50",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = rows(&out.join("analysis/sensitivity.csv"));
    assert_eq!(s.iter().filter(|r| &r[1] == "morris").count(), 3 * 3, "μ, μ*, σ per parameter");
    assert!(s.iter().all(|r| &r[1] == "morris"), "--method morris gives only Morris rows");
    let mu_star: f64 = s.iter().find(|r| &r[2] == "awareness.word_of_mouth_per_month" && &r[3] == "mu_star").unwrap()
        [4]
    .parse()
    .unwrap();
    assert!(mu_star > 0.0);
    // Sobol on a Morris design: exit 2, the message says which design to use, nothing written.
    let bad = dir.path().join("bad");
    let o = llm(&["analyze", out.to_str().unwrap(), "--method", "sobol", "--out", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Sobol indices need a Saltelli design"), "{}", stderr(&o));
    assert!(!bad.exists(), "nothing written");
    // Bad outcomes and conditions name the flag and what is available.
    for (args, want) in [
        (vec!["--outcome", "lab.nonsense"], "--outcome \"lab.nonsense\": lab has no metric"),
        (vec!["--outcome", "nobody.end_cash_usd"], "no firm \"nobody\""),
        (vec!["--outcome", "lab.exit_reason"], "is a category"),
        (vec!["--prim", "lab.end_cash_usd"], "--prim \"lab.end_cash_usd\": write OUTCOME OP VALUE"),
        (vec!["--method", "prim"], "--method prim needs a condition"),
        (vec!["--method", "anova"], "unknown method"),
        (vec!["--threshold", "1.5"], "--threshold 1.5"),
    ] {
        let mut a = vec!["analyze", out.to_str().unwrap(), "--out", bad.to_str().unwrap()];
        a.extend(args.iter());
        let o = llm(&a);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert!(!bad.exists(), "{args:?}: nothing written");
    }
    // `compare` on the sweep folder says what each point stands for, and its CSV joins runs.csv on point_id.
    let cmp = dir.path().join("cmp");
    let o = llm(&[
        "compare",
        out.to_str().unwrap(),
        "--focus",
        "lab",
        "--metrics",
        "end_cash_usd",
        "--out",
        cmp.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("points:") && text.contains("analyze_test#3"), "{text}");
    assert!(
        text.lines().any(|l| l.contains("analyze_test#3") && l.contains("awareness.word_of_mouth_per_month=")),
        "{text}"
    );
    let c = rows(&cmp.join("comparison.csv"));
    let header = csv::Reader::from_path(cmp.join("comparison.csv")).unwrap().headers().unwrap().clone();
    let (pid, params) =
        (header.iter().position(|h| h == "point_id").unwrap(), header.iter().position(|h| h == "parameters").unwrap());
    let r3 = c.iter().find(|r| &r[0] == "analyze_test#3").unwrap();
    assert_eq!(&r3[pid], "3");
    assert!(r3[params].starts_with("awareness.word_of_mouth_per_month="), "{:?}", &r3[params]);
    // A run folder is not a sweep; a folder without a manifest is not an output folder.
    let run = dir.path().join("run");
    super::support::run_tiny(&run, &["--set", "end=2023-01-31"]);
    let o = llm(&["analyze", run.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("holds a run, not a sweep"), "{}", stderr(&o));
    let o = llm(&["analyze", tiny().parent().unwrap().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no manifest.json"), "{}", stderr(&o));
}

#[test]
fn design_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (design, want) in [
        ("kind = \"morris\"\ntrajectories = 4\nlevels = 3", "design.levels"),
        ("kind = \"morris\"", "design.trajectories"),
        ("kind = \"morris\"\ntrajectories = 4\nsamples = 5", "design.samples"),
        ("kind = \"saltelli\"\nsamples = 8\nlevels = 4", "design.levels"),
        ("kind = \"lhs\"\nsamples = 8\nsecond_order = true", "design.second_order"),
        ("kind = \"saltelli\"\nsamples = 70000", "at most 65536 base points"),
    ] {
        let f = sweep_file(dir.path(), design, 1);
        let o = llm(&["sweep", f.to_str().unwrap(), "--dry-run"]);
        assert_eq!(o.status.code(), Some(2), "{design}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{design}: {}", stderr(&o));
    }
    let f = sweep_file(dir.path(), "kind = \"saltelli\"\nsamples = 4\nsecond_order = true", 1);
    let o = llm(&["sweep", f.to_str().unwrap(), "--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("32 points") && text.contains("saltelli, 4 base points of 8 rows"), "{text}");
}

#[test]
fn points_without_a_value_skip_sobol_and_morris_trajectories_with_a_note_and_keep_the_rest() {
    // `decisions.cut_recover` must be at least 1: the points of the design below it are invalid runs.
    let dir = tempfile::tempdir().unwrap();
    for (design, skipped) in [
        ("kind = \"saltelli\"\nsamples = 8", "Sobol indices skipped"),
        ("kind = \"morris\"\ntrajectories = 6\nlevels = 4", "trajectories left out"),
    ] {
        let sub = dir.path().join(if design.contains("saltelli") { "s" } else { "m" });
        std::fs::create_dir_all(&sub).unwrap();
        let text = format!(
            "name = \"holes\"\nscenario = \"{}\"\nseed = 3\nset = [\"end=2023-03-31\"]\n\n[design]\n{design}\n\n\
             [[parameters]]\npath = \"decisions.cut_recover\"\nmin = 0.8\nmax = 1.5\n\n\
             [[parameters]]\npath = \"awareness.word_of_mouth_per_month\"\nmin = 1.5\nmax = 6.0\n",
            tiny().display()
        );
        let f = sub.join("sweep.toml");
        std::fs::write(&f, text).unwrap();
        let out = sub.join("sweep");
        let o = llm(&["sweep", f.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "some runs are invalid: exit 1 ({})", stderr(&o));
        let a = llm(&["analyze", out.to_str().unwrap(), "--outcome", "lab.total_revenue_usd", "--resamples", "20"]);
        assert!(a.status.success(), "{}", stderr(&a));
        assert!(stderr(&a).contains(skipped), "{}", stderr(&a));
        let s = rows(&out.join("analysis/sensitivity.csv"));
        assert!(s.iter().any(|r| &r[1] == "prcc"), "PRCC on the points that ran");
        assert!(s.iter().all(|r| &r[1] != "sobol"), "no Sobol index from an incomplete design");
        let html = std::fs::read_to_string(out.join("analysis/report.html")).unwrap();
        assert!(html.contains(skipped), "the report's notes say what was skipped");
    }
}
