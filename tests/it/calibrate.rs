//! `llm-market calibrate` (ABC-SMC) on the tiny scenario: normalised posteriors, the same bytes for any job
//! count and after SIGKILL and `--resume`, refusals of bad priors and targets, `compare --posterior` with its
//! variance split, and simulation-based calibration (known parameters recovered; 20 data sets with
//! `LLM_MARKET_SLOW_TESTS=1`, 4 otherwise).

use super::support::{llm, read, root, stderr};
use llm_market::api::{self, RunOptions};
use llm_market::inference::abc::{Sampler, weighted_quantile};
use llm_market::inference::targets;
use llm_market::io::calibrate::{self, CalibrateOptions, CalibrateOutcome};
use llm_market::model::rng::CounterRng;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const PRIORS: &str = "tests/data/priors_tiny.toml";
const TARGETS: &str = "tests/data/targets_tiny.csv";
const FILES: [&str; 5] =
    ["posterior.csv", "generations.csv", "predictive.csv", "identification.csv", "simulations.csv"];

fn calibrate_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["calibrate", PRIORS, "--targets", TARGETS, "--particles", "16", "--out", out];
    if !extra.contains(&"--generations") {
        a.extend(["--generations", "3"]);
    }
    a.extend_from_slice(extra);
    a
}

fn weights_by_generation(dir: &Path) -> Vec<(u32, f64)> {
    let mut r = csv::Reader::from_path(dir.join("posterior.csv")).unwrap();
    let mut sums = std::collections::BTreeMap::new();
    for rec in r.deserialize::<std::collections::HashMap<String, String>>() {
        let rec = rec.unwrap();
        *sums.entry(rec["generation"].parse::<u32>().unwrap()).or_insert(0.0) += rec["weight"].parse::<f64>().unwrap();
    }
    sums.into_iter().collect()
}

#[test]
fn calibrate_writes_a_normalised_posterior_and_the_same_bytes_for_any_job_count() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let oa = llm(&calibrate_args(a.path().to_str().unwrap(), &["--jobs", "1"]));
    assert!(oa.status.success(), "{}", stderr(&oa));
    let ob = llm(&calibrate_args(b.path().to_str().unwrap(), &["--jobs", "2"]));
    assert!(ob.status.success(), "{}", stderr(&ob));
    for f in FILES {
        assert!(read(a.path(), f) == read(b.path(), f), "{f} differs between --jobs 1 and --jobs 2");
    }
    // The MCMC sampler too.
    let (c, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (dir, jobs) in [(&c, "1"), (&d, "2")] {
        let o = llm(&calibrate_args(dir.path().to_str().unwrap(), &["--jobs", jobs, "--sampler", "mcmc"]));
        assert!(o.status.success(), "{}", stderr(&o));
    }
    for f in FILES {
        assert!(read(c.path(), f) == read(d.path(), f), "MCMC: {f} differs between --jobs 1 and --jobs 2");
    }
    assert!(String::from_utf8(read(c.path(), "generations.csv")).unwrap().contains(",mcmc,"));
    let sums = weights_by_generation(a.path());
    assert_eq!(sums.iter().map(|s| s.0).collect::<Vec<_>>(), vec![0, 1, 2]);
    for (g, s) in sums {
        assert!((s - 1.0).abs() < 1e-9, "generation {g}: weights sum to {s}");
    }
    let gens = String::from_utf8(read(a.path(), "generations.csv")).unwrap();
    let tol: Vec<f64> = gens.lines().skip(1).map(|l| l.split(',').nth(2).unwrap().parse().unwrap()).collect();
    assert!(tol[0].is_infinite() && tol[2] < tol[1], "tolerances {tol:?}");
    // Every target has its predictive band; the report and the charts are there.
    let pred = String::from_utf8(read(a.path(), "predictive.csv")).unwrap();
    assert_eq!(pred.lines().count(), 1 + 7);
    let html = String::from_utf8(read(a.path(), "report.html")).unwrap();
    for id in ["predictive", "identification", "provenance"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "report lacks {id}");
    }
    assert!(a.path().join("charts/posterior_vs_prior.svg").is_file());
    let m: serde_json::Value = serde_json::from_slice(&read(a.path(), "manifest.json")).unwrap();
    assert_eq!(m["kind"], "calibration");
    assert_eq!(m["complete"], true);
    // A second calibration into the same folder is refused; nothing changes.
    let before = read(a.path(), "posterior.csv");
    let again = llm(&calibrate_args(a.path().to_str().unwrap(), &[]));
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("already holds a calibration"), "{}", stderr(&again));
    assert_eq!(read(a.path(), "posterior.csv"), before);
}

#[test]
fn a_killed_calibration_resumes_to_the_same_bytes() {
    let reference = tempfile::tempdir().unwrap();
    let o = llm(&calibrate_args(reference.path().to_str().unwrap(), &["--jobs", "2", "--generations", "4"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let mut interrupted = 0;
    for delay_ms in [40u64, 150, 400] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().to_str().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_llm-market"))
            .args(calibrate_args(out, &["--jobs", "2", "--generations", "4"]))
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let finished = child.try_wait().unwrap().is_some();
        interrupted += usize::from(!finished);
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        if !finished && dir.path().join("manifest.json").is_file() {
            let m: serde_json::Value = serde_json::from_slice(&read(dir.path(), "manifest.json")).unwrap();
            if m["complete"] != true {
                let o = llm(&calibrate_args(out, &["--jobs", "2", "--generations", "4", "--resume"]));
                assert!(o.status.success(), "resume after {delay_ms} ms: {}", stderr(&o));
            }
        } else if !dir.path().join("manifest.json").is_file() {
            let o = llm(&calibrate_args(out, &["--jobs", "2", "--generations", "4", "--resume"]));
            assert!(o.status.success(), "resume after {delay_ms} ms: {}", stderr(&o));
        }
        for f in FILES {
            assert!(read(reference.path(), f) == read(dir.path(), f), "{f} differs after SIGKILL at {delay_ms} ms");
        }
    }
    assert!(interrupted > 0, "every run finished before its kill: nothing was resumed");
    // Resuming with other settings is refused.
    let o = llm(&calibrate_args(reference.path().to_str().unwrap(), &["--seed", "9", "--resume"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("other settings"), "{}", stderr(&o));
}

#[test]
fn rounds_of_shards_and_gathering_give_the_bytes_of_one_process() {
    let (one, sharded) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (one.path().to_str().unwrap(), sharded.path().to_str().unwrap());
    let o = llm(&calibrate_args(a, &["--sampler", "mcmc"]));
    assert!(o.status.success(), "{}", stderr(&o));
    // Rounds as `llm-market slurm` runs them: every shard's share, then the gathering, until it writes the outputs;
    // three shards in odd rounds, two in even ones (a shard's runs do not depend on the count).
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds <= 60, "no end after 60 rounds");
        let shards: &[&str] = if rounds % 2 == 1 { &["0/3", "1/3", "2/3"] } else { &["0/2", "1/2"] };
        for &k in shards {
            let o = llm(&calibrate_args(b, &["--sampler", "mcmc", "--shard", k, "--jobs", "1"]));
            assert!(o.status.success(), "shard {k}: {}", stderr(&o));
            assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("shard {k} ran")));
        }
        let o = llm(&calibrate_args(b, &["--sampler", "mcmc", "--gather"]));
        assert!(o.status.success(), "gather: {}", stderr(&o));
        if String::from_utf8_lossy(&o.stdout).contains("wrote") {
            break;
        }
        assert!(String::from_utf8_lossy(&o.stdout).contains("still needs"), "{}", String::from_utf8_lossy(&o.stdout));
    }
    assert!(rounds > 3, "{rounds} rounds: the test should need several (generations, MCMC steps)");
    for f in FILES {
        assert!(read(one.path(), f) == read(sharded.path(), f), "{f} differs between one process and shards");
    }
    // A shard or a gathering of the complete calibration has nothing to do, and says so.
    for extra in [&["--shard", "1/3"][..], &["--gather"][..]] {
        let mut args = vec!["--sampler", "mcmc"];
        args.extend_from_slice(extra);
        let o = llm(&calibrate_args(b, &args));
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("is complete"), "{}", String::from_utf8_lossy(&o.stdout));
    }
    // --force moves the shards aside with the outputs.
    let o = llm(&calibrate_args(b, &["--sampler", "mcmc", "--force", "--generations", "2"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!sharded.path().join("shards").exists());
    let backups =
        std::fs::read_dir(sharded.path()).unwrap().flatten().filter(|e| e.path().join("shards/0").is_dir()).count();
    assert_eq!(backups, 1, "the shards are in a backup folder");
    // `llm-market slurm` checks the calibration before writing scripts: a missing targets file is refused.
    let s = tempfile::tempdir().unwrap();
    let o =
        llm(&["slurm", PRIORS, "--shards", "2", "--out", s.path().to_str().unwrap(), "--", "--targets", "nope.csv"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("nope.csv") && !s.path().join("slurm").exists(), "{}", stderr(&o));
    // A shard with other settings is refused by the gathering (exit 2, naming the shard's folder); nothing
    // of the finished calibration changes.
    let (c, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let c_str = c.path().to_str().unwrap();
    let o = llm(&calibrate_args(c_str, &["--shard", "0/2", "--seed", "5"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = llm(&calibrate_args(c_str, &["--gather"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("shards/0") && stderr(&o).contains("other settings"), "{}", stderr(&o));
    // A shard cannot be forced or gathered at once (the command line refuses it).
    let o = llm(&calibrate_args(d.path().to_str().unwrap(), &["--shard", "0/2", "--force"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = llm(&calibrate_args(d.path().to_str().unwrap(), &["--shard", "2/2"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("0 ≤ K < N"), "{}", stderr(&o));
}

#[test]
fn bad_priors_and_targets_are_refused_naming_file_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let priors = dir.path().join("priors.toml");
    std::fs::write(
        &priors,
        format!(
            "scenario = {:?}\n\n[[prior]]\npath = \"awareness.trial_utility\"\ndist = \"uniform\"\nmin = 2.0\nmax = 1.0\nwhy = \"x\"\nsource = \"y\"\n\n[[prior]]\npath = \"awareness.no_such_key\"\ndist = \"normal\"\nmean = 1.0\nsd = 0.1\nwhy = \"x\"\nsource = \"y\"\n",
            root().join("tests/data/tiny.toml").display().to_string()
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = llm(&["calibrate", priors.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("priors.toml") && e.contains("priors.toml:7: prior[0].max"), "{e}");
    assert!(e.contains("prior[1].path") && e.contains("no such key"), "{e}");
    assert!(!out.exists(), "nothing is written");
    // A prior whose range the scenario validator refuses names its bound.
    std::fs::write(
        &priors,
        format!(
            "scenario = {:?}\n[[prior]]\npath = \"awareness.word_of_mouth_per_month\"\ndist = \"uniform\"\nmin = -5.0\nmax = 1.0\nwhy = \"x\"\nsource = \"y\"\n",
            root().join("tests/data/tiny.toml").display().to_string()
        ),
    )
    .unwrap();
    let o = llm(&["calibrate", priors.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("prior[0].min") && stderr(&o).contains("refused by the scenario validator"),
        "{}",
        stderr(&o)
    );
    // Targets: a missing uncertainty names the line and column; a firm the scenario lacks is refused.
    let t = dir.path().join("targets.csv");
    std::fs::write(
        &t,
        "date,metric,entity,value,unit,source,reliability,uncertainty,model\n2023-01,v,lab,5,u,s,r,,lab.visits\n",
    )
    .unwrap();
    let o = llm(&["calibrate", PRIORS, "--targets", t.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("line 2, column `uncertainty`"), "{}", stderr(&o));
    std::fs::write(
        &t,
        "date,metric,entity,value,unit,source,reliability,uncertainty,model\n2023-01,v,x,5,u,s,r,0.1,openai.visits\n",
    )
    .unwrap();
    let o = llm(&["calibrate", PRIORS, "--targets", t.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("firm \"openai\""), "{}", stderr(&o));
    assert!(!out.exists(), "nothing is written");
    // The committed priors of the baseline validate.
    let o = llm(&["validate", "configs/priors.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("priors"), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn compare_under_a_posterior_pairs_draws_and_seeds_and_splits_the_variance() {
    let cal = tempfile::tempdir().unwrap();
    let o = llm(&calibrate_args(cal.path().to_str().unwrap(), &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let post = cal.path().join("posterior.csv");
    let out = tempfile::tempdir().unwrap();
    let o = llm(&[
        "compare",
        "tests/data/tiny.toml",
        "tests/data/tiny_copy.toml",
        "--posterior",
        post.to_str().unwrap(),
        "--draws",
        "3",
        "--replicates",
        "2",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("variance split"), "{table}");
    let mut r = csv::Reader::from_path(out.path().join("comparison.csv")).unwrap();
    let mut checked = 0;
    let mut parameters_matter = false;
    for rec in r.deserialize::<std::collections::HashMap<String, String>>() {
        let rec = rec.unwrap();
        assert_eq!(rec["n"], "6", "3 draws × 2 seeds");
        // The split is empty where it is undefined (an outcome that never varies).
        let share = |k: &str| rec[k].parse::<f64>().unwrap_or(f64::NAN);
        let (sp, ss) = (share("share_parameters"), share("share_seeds"));
        assert!((sp.is_nan() && ss.is_nan()) || (sp + ss - 1.0).abs() < 1e-9, "{rec:?}");
        if rec["scenario"] == "tiny_copy" {
            // The same scenario under the same draws and seeds: paired, and exactly no difference.
            assert_eq!(rec["pairing"], "paired");
            assert_eq!(rec["diff_vs_baseline"].parse::<f64>().unwrap(), 0.0, "{rec:?}");
        }
        if rec["metric"] == "profit_2023_usd" && rec["firm"] == "lab" {
            // The lab's fixed cost is one of the parameters: its draws move the lab's 2023 result most.
            parameters_matter = sp > 0.5;
            let (lo, hi) = (rec["predictive_lo"].parse::<f64>().unwrap(), rec["predictive_hi"].parse::<f64>().unwrap());
            assert!(lo < hi, "{rec:?}");
        }
        checked += 1;
    }
    assert!(checked > 20 && parameters_matter, "{checked} rows; parameters matter: {parameters_matter}");
    let m: serde_json::Value = serde_json::from_slice(&read(out.path(), "manifest.json")).unwrap();
    assert_eq!(m["draws"], 3);
    let html = String::from_utf8(read(out.path(), "report.html")).unwrap();
    assert!(html.contains("id=\"posterior\""), "the report has the table under parameter uncertainty");
    // --posterior applies to scenario files only.
    let o = llm(&["compare", cal.path().to_str().unwrap(), "--posterior", post.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_sweep_under_a_posterior_crosses_its_design_with_common_draws() {
    let cal = tempfile::tempdir().unwrap();
    let o = llm(&calibrate_args(cal.path().to_str().unwrap(), &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let post = cal.path().join("posterior.csv");
    let post = post.to_str().unwrap();
    let sw = tempfile::tempdir().unwrap();
    let sw_str = sw.path().to_str().unwrap();
    let sweep = ["sweep", "tests/data/sweep_tiny.toml", "--posterior", post, "--draws", "3", "--out", sw_str];
    let o = llm(&sweep);
    assert!(o.status.success(), "{}", stderr(&o));
    // 2 × 2 design points × 3 draws × 2 replicates; the design's key (word of mouth) keeps the design's
    // values, the posterior's other columns follow the draw, the same draw at every design point.
    let mut r = csv::Reader::from_path(sw.path().join("runs.csv")).unwrap();
    let h: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    let col = |k: &str| h.iter().position(|x| x == k).unwrap_or_else(|| panic!("no column {k}: {h:?}"));
    assert_eq!(h.iter().filter(|x| *x == "awareness.word_of_mouth_per_month").count(), 1);
    let (cp, cw, ct, cf) = (
        col("point_id"),
        col("awareness.word_of_mouth_per_month"),
        col("awareness.trial_utility"),
        col("firms.lab.fixed_cost_usd_per_year"),
    );
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 24);
    let mut by_draw: std::collections::BTreeMap<u64, std::collections::BTreeSet<(String, String)>> = Default::default();
    for row in &rows {
        let point: u64 = row[cp].parse().unwrap();
        let wom = if (point / 3) / 2 == 0 { "2" } else { "4" };
        assert!(row[cw].parse::<f64>().unwrap() == wom.parse::<f64>().unwrap(), "point {point}: {:?}", &row[cw]);
        by_draw.entry(point % 3).or_default().insert((row[ct].to_string(), row[cf].to_string()));
    }
    assert_eq!(by_draw.len(), 3);
    assert!(by_draw.values().all(|v| v.len() == 1), "one parameter set per draw at every point: {by_draw:?}");
    let m: serde_json::Value = serde_json::from_slice(&read(sw.path(), "manifest.json")).unwrap();
    assert_eq!((m["points"].as_u64(), m["total_runs"].as_u64()), (Some(12), Some(24)));
    assert_eq!(m["sweep_spec"]["posterior"]["rows"].as_array().map(Vec::len), Some(3));
    // Compared, each design point pools its draws: 3 draws × 2 seeds, with the variance split.
    let cmp = tempfile::tempdir().unwrap();
    let o = llm(&["compare", sw_str, "--out", cmp.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("variance split"));
    let mut r = csv::Reader::from_path(cmp.path().join("comparison.csv")).unwrap();
    let recs: Vec<std::collections::HashMap<String, String>> = r.deserialize().map(|x| x.unwrap()).collect();
    let scenarios: std::collections::BTreeSet<&str> = recs.iter().map(|r| r["scenario"].as_str()).collect();
    assert_eq!(scenarios.len(), 4, "{scenarios:?}");
    assert!(recs.iter().all(|r| r["n"] == "6"));
    assert!(recs.iter().any(|r| r["share_parameters"].parse::<f64>().is_ok_and(|x| x > 0.0)));
    // Resumed without --posterior it is another sweep: refused, nothing changes; analyze refuses it too.
    let before = read(sw.path(), "runs.csv");
    let o = llm(&["sweep", "tests/data/sweep_tiny.toml", "--out", sw_str, "--resume"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(read(sw.path(), "runs.csv"), before);
    let o = llm(&["analyze", sw_str, "--out", cmp.path().join("a").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("posterior draws"), "{}", stderr(&o));

    // `slurm --posterior` gives every array task the same draws: its scripts, run here task by task with
    // bash (as Slurm would, without the cluster), merge to the unsharded sweep's bytes.
    let cluster = sw.path().join("on the cluster");
    let o = llm(&[
        "slurm",
        "tests/data/sweep_tiny.toml",
        "--posterior",
        post,
        "--draws",
        "3",
        "--shards",
        "2",
        "--out",
        cluster.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let script = cluster.join("slurm/array.sbatch");
    assert!(std::fs::read_to_string(&script).unwrap().contains(" --draws 3"));
    for k in ["0", "1"] {
        let o = std::process::Command::new("bash")
            .arg(&script)
            .env("SLURM_ARRAY_TASK_ID", k)
            .env("SLURM_ARRAY_TASK_COUNT", "2")
            .output()
            .unwrap();
        assert!(o.status.success(), "task {k}: {}", stderr(&o));
    }
    let o = std::process::Command::new("bash").arg(cluster.join("slurm/merge.sbatch")).output().unwrap();
    assert!(o.status.success(), "merge: {}", stderr(&o));
    assert_eq!(read(&cluster, "runs.csv"), read(sw.path(), "runs.csv"));
    let o = llm(&["slurm", PRIORS, "--posterior", post, "--shards", "2", "--out", cluster.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "--posterior is for a sweep: {}", stderr(&o));
}

/// One simulation-based calibration: true values drawn from the prior, data from a run at them, a calibration
/// of those data; returns (truth, posterior 5% and 95%, prior 5% and 95%) per parameter for the last and
/// for the first generation after the prior.
fn sbc_once(rep: u64, particles: usize, generations: usize, sampler: Sampler) -> Vec<[f64; 7]> {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = CalibrateOptions::new(root().join(PRIORS), dir.path().join("cal"));
    opts.targets = Some(root().join(TARGETS));
    let su = calibrate::setup(&opts).unwrap();
    let mut r = CounterRng::new(0x5BC, rep);
    let truth: Vec<f64> = su.priors.priors.iter().map(|p| p.value(r.normal())).collect();
    let scenario = Arc::new(su.priors.scenario(&truth, 1000 + rep).unwrap());
    let run = api::run(&scenario, &RunOptions::default()).unwrap();
    let values = targets::model_values(&su.targets, &scenario, &run);
    let data = dir.path().join("targets.csv");
    std::fs::write(&data, targets::to_csv(&su.targets, &values)).unwrap();
    opts.targets = Some(data);
    opts.particles = particles;
    opts.generations = generations;
    opts.sampler = Some(sampler);
    opts.seed = 77 + rep;
    opts.jobs = 2;
    let CalibrateOutcome::Done { populations, .. } = calibrate::calibrate(&opts, &|_, _, _| {}).unwrap() else {
        panic!("interrupted")
    };
    let interval = |pop: &llm_market::inference::abc::Population, k: usize| {
        let x: Vec<f64> = pop.particles.iter().map(|p| su.priors.priors[k].value(p.z[k])).collect();
        let w: Vec<f64> = pop.particles.iter().map(|p| p.weight).collect();
        (weighted_quantile(&x, &w, 0.05), weighted_quantile(&x, &w, 0.95))
    };
    (0..truth.len())
        .map(|k| {
            let (lo, hi) = interval(populations.last().unwrap(), k);
            let (lo1, hi1) = interval(&populations[1], k);
            let (a, b) = su.priors.priors[k].dist.interval(0.9);
            [truth[k], lo, hi, a, b, lo1, hi1]
        })
        .collect()
}

#[test]
fn simulation_based_calibration_covers_known_parameters_and_narrows_them() {
    let slow = std::env::var("LLM_MARKET_SLOW_TESTS").is_ok_and(|v| v == "1");
    let reps = if slow { 20 } else { 4 };
    eprintln!("{reps} simulation-based calibrations (20 with LLM_MARKET_SLOW_TESTS=1)");
    // Both samplers: even data sets PMC, odd ones MCMC moves.
    let sampler = |rep: u64| if rep.is_multiple_of(2) { Sampler::Pmc } else { Sampler::Mcmc };
    let rows: Vec<[f64; 7]> = (0..reps).flat_map(|rep| sbc_once(rep, 60, 5, sampler(rep))).collect();
    let covered = rows.iter().filter(|r| r[1] <= r[0] && r[0] <= r[2]).count();
    let rate = covered as f64 / rows.len() as f64;
    eprintln!("90% credible intervals cover the true value in {covered} of {} cases", rows.len());
    assert!((0.75..=1.0).contains(&rate), "coverage {rate}");
    // The posterior is narrower than the prior, and narrower after five generations than after two.
    let ratio =
        |lo: usize, hi: usize| rows.iter().map(|r| (r[hi] - r[lo]) / (r[4] - r[3])).sum::<f64>() / rows.len() as f64;
    let (last, first) = (ratio(1, 2), ratio(5, 6));
    eprintln!("mean posterior/prior width: {first:.2} after generation 1, {last:.2} after generation 4");
    assert!(last < 0.9 && last < first, "{first} → {last}");
}

#[test]
fn a_posterior_value_holds_until_a_scenarios_dated_change() {
    // bigtech_price_war changes `orgs.log_price_weight` by a set event on 2023-09-01. A plain `--set` of that
    // key is refused; a posterior draw (`until_events`) applies until the event, which then takes over.
    use llm_market::config::{self, Overrides};
    let file = root().join("configs/scenarios/bigtech_price_war.toml");
    let sets = vec!["orgs.log_price_weight=0.123".to_string()];
    let refused = config::load(Some(&file), &Overrides { sets: sets.clone(), ..Default::default() }).unwrap_err();
    assert!(refused.to_string().contains("org_price_sensitivity"), "{refused}");
    let until_events = vec!["orgs.log_price_weight".to_string()];
    let s = config::load(Some(&file), &Overrides { sets, until_events, ..Default::default() }).unwrap();
    assert_eq!(s.params().orgs.log_price_weight, 0.123);
    let after = s.epochs().last().expect("the event's epoch");
    assert_ne!(after.params.orgs.log_price_weight, 0.123, "the scenario's dated change takes over");
}
