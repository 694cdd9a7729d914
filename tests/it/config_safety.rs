//! Configuration hardening (issue 10): names stay inside `outputs/`, inputs are regular files of bounded
//! size, `extends` loops and cycles are named, validation covers the whole run, messages blame the flag,
//! keys without a default are required, and fault injection lives outside the scenario schema.

use super::support::*;
use llm_market::config::{self, Overrides};
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary in `cwd` with `args`, killing it (and failing) after 60 s.
fn llm_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_llm-market"));
    c.args(args).current_dir(cwd).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("the binary runs");
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("llm-market {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Asserts exit code 2 and returns stderr.
fn refused(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "expected exit 2, got {:?}: {err}", o.status.code());
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// The entries of a folder, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    v.sort();
    v
}

fn extends_tiny(body: &str) -> String {
    format!("extends = {:?}\n{body}", tiny().to_str().unwrap())
}

#[test]
fn names_are_single_path_components() {
    let long = "n".repeat(101);
    for name in
        ["../../escape", "/tmp/absolute", "a/b", "..", ".hidden", "a\\\\b", "x\\u0000y", "tab\\there", &long, " "]
    {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s.toml");
        fs::write(&f, extends_tiny(&format!("name = \"{name}\"\n"))).unwrap();
        let err = refused(&llm_in(dir.path(), &["run", "s.toml"], &[]));
        assert!(err.contains("s.toml:2: name: must"), "{name}: {err}");
        assert_eq!(entries(dir.path()), ["s.toml"], "{name}: nothing may be written");
    }
    // The same rule for a sweep file's name.
    let dir = tempfile::tempdir().unwrap();
    let sweep = fs::read_to_string(root().join("tests/data/sweep_tiny.toml")).unwrap();
    let sweep = sweep
        .replace("name = \"sweep_tiny\"", "name = \"../../escape\"")
        .replace("scenario = \"tiny.toml\"", &format!("scenario = {:?}", tiny().to_str().unwrap()));
    fs::write(dir.path().join("w.toml"), sweep).unwrap();
    let err = refused(&llm_in(dir.path(), &["sweep", "w.toml"], &[]));
    assert!(err.contains("w.toml:2: name: must be a single folder name"), "{err}");
    assert_eq!(entries(dir.path()), ["w.toml"]);
}

#[test]
fn inputs_must_be_regular_files_of_bounded_size() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let err = refused(&llm_in(d, &["validate", "/dev/zero"], &[]));
    assert!(err.contains("/dev/zero: is not a regular file (a character device)"), "{err}");
    let err = refused(&llm_in(d, &["validate", d.to_str().unwrap()], &[]));
    assert!(err.contains("is not a regular file (a directory)"), "{err}");
    assert!(Command::new("mkfifo").arg(d.join("fifo")).status().unwrap().success());
    for args in [vec!["validate", "fifo"], vec!["run", "fifo", "--out", "out"], vec!["sweep", "fifo", "--out", "out"]] {
        let err = refused(&llm_in(d, &args, &[]));
        assert!(err.contains("fifo: is not a regular file (a FIFO)"), "{args:?}: {err}");
    }
    fs::write(d.join("ext.toml"), "extends = \"/dev/zero\"\n").unwrap();
    let err = refused(&llm_in(d, &["validate", "ext.toml"], &[]));
    assert!(err.contains("ext.toml:1: extends: `extends` names /dev/zero which is not a regular file"), "{err}");
    fs::write(d.join("ext2.toml"), "extends = \"fifo\"\n").unwrap();
    let err = refused(&llm_in(d, &["validate", "ext2.toml"], &[]));
    assert!(err.contains("ext2.toml:1: extends: `extends` names fifo which is not a regular file (a FIFO)"), "{err}");
    let mut big = extends_tiny("");
    big.push_str(&"# padding\n".repeat(1_800_000));
    fs::write(d.join("big.toml"), big).unwrap();
    let err = refused(&llm_in(d, &["run", "big.toml", "--out", "out"], &[]));
    assert!(err.contains("big.toml: is 17.2 MiB; input files are limited to 16 MiB"), "{err}");
    assert!(!d.join("out").exists());
}

#[test]
fn extends_loops_and_cycles_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::os::unix::fs::symlink(d.join("loop2.toml"), d.join("loop1.toml")).unwrap();
    std::os::unix::fs::symlink(d.join("loop1.toml"), d.join("loop2.toml")).unwrap();
    fs::write(d.join("s.toml"), "extends = \"loop1.toml\"\n").unwrap();
    let err = refused(&llm_in(d, &["validate", "s.toml"], &[]));
    assert!(err.contains("s.toml:1: extends:") && err.contains("loop1.toml which is a symbolic link loop"), "{err}");
    let err = refused(&llm_in(d, &["validate", "loop1.toml"], &[]));
    assert!(err.contains("loop1.toml: is a symbolic link loop"), "{err}");

    fs::write(d.join("a.toml"), "extends = \"b.toml\"\nname = \"a\"\n").unwrap();
    fs::write(d.join("b.toml"), "name = \"b\"\nextends = \"a.toml\"\n").unwrap();
    let err = refused(&llm_in(d, &["validate", "a.toml"], &[]));
    assert!(
        err.contains("b.toml:2: extends: `extends` forms a cycle: a.toml → ") && err.contains("b.toml → "),
        "{err}"
    );
}

#[test]
fn the_accounts_hold_every_validated_run() {
    // The largest cash a scenario may name runs (it used to fail at a later tick).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = llm(&[
        "run",
        "--agents",
        "2000",
        "--set",
        "tick=month",
        "--set",
        "record_every=month",
        "--set",
        "firms.openai.cash_usd=1e14",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The baseline over 50 years: its cost trends are refused by validation, naming the key and `end`.
    let o = llm(&["validate", root().join("configs/baseline.toml").to_str().unwrap(), "--set", "end=2073-01-05"]);
    let err = refused(&o);
    assert!(err.contains("fixed_cost_growth_per_year: the firm's fixed cost could reach"), "{err}");
    assert!(err.contains("or shorten `end`"), "{err}");

    // At the edge of validation the run finishes: the longest run, flat cost trends, the largest cash, and
    // then the largest prices and cost growth that still validate.
    let mut sets: Vec<String> =
        vec!["end=2073-01-05".into(), "tick=month".into(), "record_every=month".into(), "agents=2000".into()];
    for firm in ["openai", "bing", "bard", "claude", "llama", "ernie"] {
        for k in ["fixed_cost_growth_per_year", "cost_decline_per_year"] {
            sets.push(format!("firms.{firm}.{k}=1.0"));
        }
    }
    sets.push("orgs.token_growth_per_year=1.0".into());
    sets.push("firms.openai.cash_usd=1e14".into());
    let valid = |sets: &[String]| config::load(None, &Overrides { sets: sets.to_vec(), ..Default::default() }).is_ok();
    assert!(valid(&sets), "{:?}", config::load(None, &Overrides { sets: sets.clone(), ..Default::default() }).err());
    // The largest value of `key` in [lo, hi] that validates, by bisection on a log scale.
    let largest = |sets: &mut Vec<String>, key: &str, lo: f64, hi: f64| {
        let (mut lo, mut hi) = (lo.ln(), hi.ln());
        for _ in 0..40 {
            let mid = 0.5 * (lo + hi);
            let mut s = sets.clone();
            s.push(format!("{key}={:e}", mid.exp()));
            if valid(&s) { lo = mid } else { hi = mid }
        }
        sets.push(format!("{key}={:e}", lo.exp()));
    };
    largest(&mut sets, "firms.openai.sub_price_usd_per_month", 1.0, 1e6);
    largest(&mut sets, "firms.openai.api_price_usd_per_mtok", 1.0, 1e6);
    largest(&mut sets, "firms.bard.fixed_cost_growth_per_year", 1.0, 100.0);
    assert!(valid(&sets));
    let out = dir.path().join("edge");
    let mut args = vec!["run".to_string(), "--out".into(), out.to_str().unwrap().into()];
    for s in &sets {
        args.extend(["--set".into(), s.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = llm(&args);
    assert!(o.status.success(), "a validated scenario must run to its end: {}", stderr(&o));
}

#[test]
fn absurd_magnitudes_are_out_of_range() {
    for (set, want) in [
        ("elo_reference=1e308", "elo_reference: must be at most 10000 Elo (range [-10000, 10000] Elo), got 1e308"),
        ("elo_reference=-1e308", "elo_reference: must lie in [-10000, 10000] Elo, got -1e308"),
        ("population=1e12", "population: must be at most 1e11 people"),
        ("firms.openai.sub_price_usd_per_month=1e7", "must be at most 1e6 USD"),
        ("firms.openai.brand=2000", "must be at most 1000"),
    ] {
        let err = refused(&llm(&["validate", "configs/baseline.toml", "--set", set]));
        assert!(err.contains(want), "{set}: {err}");
        assert!(err.contains("1 problem"), "{set}: {err}");
    }
}

#[test]
fn flags_are_blamed_for_their_values() {
    let err = refused(&llm(&["validate", "configs/baseline.toml", "--agents", "0"]));
    assert!(err.contains("--agents: agents: must be at least 1, got 0"), "{err}");
    assert!(!err.contains("baseline.toml:"), "{err}");
    let err = refused(&llm(&["validate", "configs/baseline.toml", "--set", "firms.openai.brand=inf"]));
    assert!(err.contains("--set: firms.openai.brand: must be a finite number"), "{err}");
    assert!(!err.contains("baseline.toml:"), "{err}");
    // One message per problem.
    let err = refused(&llm(&["validate", "configs/baseline.toml", "--set", "firms.openai.cash_usd=inf"]));
    assert!(err.contains("1 problem in the input") && err.matches("cash_usd").count() == 1, "{err}");
    // Long values are cut.
    let long = format!("calendar.summer_start={}", "x".repeat(100_000));
    let err = refused(&llm(&["validate", "configs/baseline.toml", "--set", &long]));
    assert!(err.contains("… (100000 characters)"), "{}", &err[..err.len().min(600)]);
    assert!(err.len() < 1000, "{} characters", err.len());
    let err = refused(&llm(&["validate", "configs/baseline.toml", "--set", &format!("{}=1", "k".repeat(100_000))]));
    assert!(err.contains("… (100000 characters)") && err.len() < 1000, "{}", err.len());
}

#[test]
fn keys_without_a_default_are_required() {
    let dir = tempfile::tempdir().unwrap();
    let text = fs::read_to_string(tiny()).unwrap();
    // Drop the first firm's launch and the first training programme's cost from a copy of the tiny scenario.
    let launch = text.lines().find(|l| l.starts_with("launch =")).unwrap();
    let no_launch = text.replacen(&format!("{launch}\n"), "", 1);
    let f = dir.path().join("s.toml");
    fs::write(&f, &no_launch).unwrap();
    let err = refused(&llm(&["validate", f.to_str().unwrap()]));
    let firm_line = no_launch.lines().position(|l| l.trim() == "[[firms]]").unwrap() + 1;
    assert!(
        err.contains(&format!("s.toml:{firm_line}: firms[0].launch: missing key (every firm needs a launch date)")),
        "{err}"
    );
    // A file that extends another inherits the key.
    fs::write(dir.path().join("child.toml"), extends_tiny("[[firms]]\nid = \"lab\"\nbrand = 0.1\n")).unwrap();
    let o = llm(&["validate", dir.path().join("child.toml").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A firm new in the child needs its own launch.
    fs::write(dir.path().join("new.toml"), extends_tiny("[[firms]]\nid = \"newco\"\n")).unwrap();
    let err = refused(&llm(&["validate", dir.path().join("new.toml").to_str().unwrap()]));
    assert!(err.contains("new.toml:2: firms[3].launch: missing key"), "{err}");
    fs::write(
        dir.path().join("tr.toml"),
        extends_tiny("[[firms]]\nid = \"lab\"\ntraining = [ { name = \"x\", start = 2023-01-01, months = 3.0 } ]\n"),
    )
    .unwrap();
    let err = refused(&llm(&["validate", dir.path().join("tr.toml").to_str().unwrap()]));
    assert!(err.contains("firms[0].training[0].cost_usd: missing key"), "{err}");
    // A tier needs its release date; a firm needs at least one tier.
    fs::write(dir.path().join("tier.toml"), extends_tiny("[[firms]]\nid = \"lab\"\ntiers = [ { name = \"x\" } ]\n"))
        .unwrap();
    let err = refused(&llm(&["validate", dir.path().join("tier.toml").to_str().unwrap()]));
    assert!(err.contains("firms[0].tiers[0].release: missing key (every tier needs a release date)"), "{err}");
    fs::write(dir.path().join("none.toml"), extends_tiny("[[firms]]\nid = \"lab\"\ntiers = []\n")).unwrap();
    let err = refused(&llm(&["validate", dir.path().join("none.toml").to_str().unwrap()]));
    assert!(err.contains("firms[0].tiers: every firm needs at least one tier"), "{err}");
}

#[test]
fn shipped_scenarios_still_validate() {
    let mut files = vec![root().join("configs/baseline.toml")];
    for dir in ["configs/scenarios", "tests/data"] {
        for e in fs::read_dir(root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") && !llm_market::experiment::spec::is_sweep_file(&p) {
                files.push(p);
            }
        }
    }
    // Priors files (calibration) validate as priors files.
    let (priors, scenarios): (Vec<_>, Vec<_>) =
        files.into_iter().partition(|p| llm_market::inference::prior::is_priors_file(p));
    assert!(priors.iter().any(|p| p.ends_with("priors_tiny.toml")));
    for f in scenarios {
        config::load(Some(&f), &Overrides::default()).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
    for f in priors.into_iter().chain([root().join("configs/priors.toml")]) {
        llm_market::inference::prior::load(&f, &Overrides::default())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}

#[test]
fn fault_injection_is_an_environment_variable_and_a_panic_is_exit_1() {
    let o = llm(&["validate", "configs/baseline.toml", "--set", "fault_panic_at_tick=3"]);
    assert!(refused(&o).contains("fault_panic_at_tick: no such key"), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = llm_env(
        &["run", tiny().to_str().unwrap(), "--set", "end=2023-01-31", "--out", out.to_str().unwrap()],
        &[("LLM_MARKET_TEST_PANIC", "0@3")],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("error: the run failed: internal error (panic: fault injected at tick 3"), "{err}");
    assert!(err.contains("this is a bug"), "{err}");
    let left: Vec<String> = if out.exists() { entries(&out) } else { vec![] };
    assert!(left.iter().all(|f| f.starts_with('.')), "nothing is written (a lock file may stay): {left:?}");
}

/// The firms' decisions are checked like every other input: wrong modes, thresholds out of order, a start
/// before the run's, two programmes to inherit, and set events on what is fixed at set-up are refused with
/// the key path (and the file and line for a file).
#[test]
fn bad_decision_settings_are_refused_with_their_key() {
    for (set, want) in [
        ("firms.openai.strategy.prices=\"maybe\"", "firms.openai.strategy.prices"),
        ("decisions.cut_runway_months=[6.0, 12.0, 9.0, 3.0]", "decisions.cut_runway_months[1]: cuts come in order"),
        ("decisions.start=2022-01-01", "decisions.start: must not be before the start of the run"),
        ("decisions.max_markup=1.0", "decisions.max_markup: must be at least decisions.min_markup (1.2)"),
        ("decisions.run_months=0.01", "decisions.run_months"),
        ("firms.openai.model.trained=2024-01-01", "firms.openai.model.trained: the last model before the firm decides"),
    ] {
        let err = refused(&llm(&["validate", "configs/baseline.toml", "--set", set]));
        assert!(err.contains(want), "{set}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let two = dir.path().join("two.toml");
    fs::write(
        &two,
        extends_tiny(
            "[[firms]]\nid = \"lab\"\ntraining = [\n  { name = \"a\", start = 2023-05-01, months = 6.0, cost_usd = 1.0e6 },\n  { name = \"b\", start = 2023-06-01, months = 6.0, cost_usd = 1.0e6 },\n]\n",
        ),
    )
    .unwrap();
    let err = refused(&llm(&["validate", two.to_str().unwrap()]));
    assert!(
        err.contains("two.toml") && err.contains("training[1]: a firm whose training is decided may have one"),
        "{err}"
    );
    let event = dir.path().join("event.toml");
    fs::write(
        &event,
        extends_tiny(
            "[[events]]\nid = \"switch\"\ndate = 2023-08-01\nkind = \"set\"\nkey = \"firms.lab.strategy.training\"\nvalue = \"scripted\"\n",
        ),
    )
    .unwrap();
    let err = refused(&llm(&["validate", event.to_str().unwrap()]));
    assert!(err.contains("event.toml:") && err.contains("whether a firm trains its own models"), "{err}");
}
