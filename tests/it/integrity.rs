//! Results are never lost or silently wrong: one writer per output folder, folders that know what they
//! hold, verified resume with `--repair`, verified `merge` and `compare`, clean stops on signals, and a
//! property test that corrupts a finished sweep at random and requires refusal or the original bytes.

use super::support::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const FILES: [&str; 4] = ["runs.csv", "annual.csv", "summary.csv", "index.csv"];

fn sweep_file() -> String {
    root().join("tests/data/sweep_tiny.toml").display().to_string()
}

fn sweep(out: &Path, extra: &[&str]) -> Output {
    let f = sweep_file();
    let mut args = vec!["sweep", f.as_str(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    llm(&args)
}

/// A finished sweep (traces of three runs kept) to compare with.
fn reference() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let o = sweep(d.path(), &["--traces", "sample:3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    d
}

/// Every file the sweep wrote, by relative path (the manifest aside: it holds timings).
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if p.is_dir() {
                stack.push(p);
            } else if rel != "manifest.json" && rel != ".llm-market.lock" {
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

fn assert_same(a: &Path, b: &Path) {
    let (x, y) = (snapshot(a), snapshot(b));
    assert_eq!(x.iter().map(|f| &f.0).collect::<Vec<_>>(), y.iter().map(|f| &f.0).collect::<Vec<_>>());
    for ((name, p), (_, q)) in x.iter().zip(&y) {
        assert!(p == q, "{name} differs between {} and {}", a.display(), b.display());
    }
}

fn edit(dir: &Path, name: &str, f: impl FnOnce(String) -> String) {
    let text = String::from_utf8(read(dir, name)).unwrap();
    fs::write(dir.join(name), f(text)).unwrap();
}

/// Line number (1-based) of the first line of `name` that starts with `prefix`.
fn line_of(dir: &Path, name: &str, prefix: &str) -> usize {
    String::from_utf8(read(dir, name)).unwrap().lines().position(|l| l.starts_with(prefix)).unwrap() + 1
}

/// `--resume` refuses (exit 2, naming `needle`), changes nothing; `--resume --repair` restores the bytes.
fn refused_then_repaired(reference: &Path, dir: &Path, needle: &str) {
    let before = snapshot(dir);
    let o = sweep(dir, &["--traces", "sample:3", "--resume"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains(needle), "expected {needle:?} in: {}", stderr(&o));
    assert!(stderr(&o).contains("--repair"), "{}", stderr(&o));
    assert!(snapshot(dir) == before, "a refused resume changed the folder");
    let o = sweep(dir, &["--traces", "sample:3", "--resume", "--repair"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same(reference, dir);
}

#[test]
fn a_malformed_row_in_the_middle_is_refused_not_truncated_and_repair_restores_it() {
    let r = reference();
    let d = tempfile::tempdir().unwrap();
    copy_dir(r.path(), d.path());
    let line = line_of(d.path(), "annual.csv", "3,");
    edit(d.path(), "annual.csv", |t| t.replacen("\n3,", "\n#3,", 1));
    refused_then_repaired(r.path(), d.path(), &format!("annual.csv:{line}: does not start with a run id"));
    // The repair did only the damaged run.
    let o = sweep(d.path(), &["--traces", "sample:3", "--resume"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("0 run now, 8 done before"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// Cuts the first line starting with `prefix` after its first `keep` bytes (keeping its newline);
/// `usize::MAX` deletes the whole line.
fn keep_head_of_line(t: &str, prefix: &str, keep: usize) -> String {
    let i = t.find(&format!("\n{prefix}")).unwrap() + 1;
    let j = t[i..].find('\n').unwrap() + i;
    if keep == usize::MAX { format!("{}{}", &t[..i], &t[j + 1..]) } else { format!("{}{}", &t[..i + keep], &t[j..]) }
}

#[test]
fn structural_damage_is_found_and_repaired() {
    let r = reference();
    type Damage = (&'static str, fn(&Path), &'static str);
    let cases: Vec<Damage> = vec![
        (
            "a field dropped from a middle runs.csv row",
            |d| edit(d, "runs.csv", |t| t.replacen(",ok,,", ",ok,", 4).replacen(",ok,", ",ok,,", 3)),
            "runs.csv:5: has ",
        ),
        (
            "half a row in the middle of runs.csv",
            |d| edit(d, "runs.csv", |t| keep_head_of_line(&t, "4,", 19)),
            "runs.csv:6:",
        ),
        (
            "half a row in the middle of annual.csv",
            |d| edit(d, "annual.csv", |t| keep_head_of_line(&t, "2,", 14)),
            "annual.csv:",
        ),
        (
            "a deleted summary row",
            |d| edit(d, "summary.csv", |t| keep_head_of_line(&t, "5,", usize::MAX)),
            "summary.csv:",
        ),
        (
            "runs.csv holding only its header",
            |d| edit(d, "runs.csv", |t| t.lines().next().unwrap().to_string() + "\n"),
            "runs.csv: run 0 has 0 rows",
        ),
        ("runs.csv removed", |d| fs::remove_file(d.join("runs.csv")).unwrap(), "runs.csv: missing"),
        ("index.csv removed", |d| fs::remove_file(d.join("index.csv")).unwrap(), "index.csv: missing"),
        ("an edited value", |d| edit(d, "annual.csv", |t| t.replacen(",lab,", ",lab ,", 1)), "annual.csv:2-"),
        (
            "a trace file edited",
            |d| edit(&d.join("traces/run-000002"), "market.csv", |t| t.replacen(",", ";", 3)),
            "trace of run 2 differs",
        ),
        (
            "a trace folder removed",
            |d| fs::remove_dir_all(d.join("traces/run-000005")).unwrap(),
            "trace of run 5 is missing",
        ),
    ];
    for (what, damage, needle) in cases {
        let d = tempfile::tempdir().unwrap();
        copy_dir(r.path(), d.path());
        damage(d.path());
        eprintln!("case: {what}");
        refused_then_repaired(r.path(), d.path(), needle);
    }
}

#[test]
fn resume_without_a_manifest_is_refused() {
    let r = reference();
    let d = tempfile::tempdir().unwrap();
    copy_dir(r.path(), d.path());
    fs::remove_file(d.path().join("manifest.json")).unwrap();
    let before = snapshot(d.path());
    let o = sweep(d.path(), &["--traces", "sample:3", "--resume"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no readable manifest.json") && stderr(&o).contains("--force"), "{}", stderr(&o));
    assert!(snapshot(d.path()) == before);
}

#[test]
fn outputs_are_never_overwritten_or_mixed_without_force() {
    let r = reference();
    let before = snapshot(r.path());
    let rp = r.path().to_str().unwrap();
    // A run into a sweep folder.
    let tiny = tiny();
    let o = llm(&["run", tiny.to_str().unwrap(), "--out", rp]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("holds a sweep (sweep sweep_tiny, status complete, 8 of 8 runs)"), "{}", stderr(&o));
    // The same sweep again without --resume.
    let o = sweep(r.path(), &["--traces", "sample:3"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("already holds a sweep") && stderr(&o).contains("--resume"), "{}", stderr(&o));
    assert!(snapshot(r.path()) == before, "a refused command changed the folder");
    // A sweep into a run folder.
    let run = tempfile::tempdir().unwrap();
    run_tiny(run.path(), &[]);
    let run_before = snapshot(run.path());
    let o = sweep(run.path(), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("holds a run (scenario tiny"), "{}", stderr(&o));
    let o = sweep(run.path(), &["--resume"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // A run into a run folder.
    let o = llm(&["run", tiny.to_str().unwrap(), "--out", run.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("already holds a run"), "{}", stderr(&o));
    assert!(snapshot(run.path()) == run_before);
    // --force moves the old files aside, never deletes them.
    let o = sweep(run.path(), &["--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let backups: Vec<PathBuf> = fs::read_dir(run.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("backup-"))
        .collect();
    assert_eq!(backups.len(), 1);
    for (name, bytes) in &run_before {
        assert_eq!(&fs::read(backups[0].join(name)).unwrap(), bytes, "{name}");
    }
    assert!(!run.path().join("trace.csv").exists());
    let plain = tempfile::tempdir().unwrap();
    assert!(sweep(plain.path(), &[]).status.success());
    for f in FILES {
        assert_eq!(read(plain.path(), f), read(run.path(), f), "{f}");
    }
}

#[test]
fn a_second_process_on_the_same_folder_is_refused_and_the_first_finishes_intact() {
    let reference = tempfile::tempdir().unwrap();
    let slow = ["--agents", "60000", "--jobs", "1"];
    assert!(sweep(reference.path(), &slow).status.success());
    let d = tempfile::tempdir().unwrap();
    let mut first = Command::new(env!("CARGO_BIN_EXE_llm-market"))
        .args(["sweep", &sweep_file(), "--out", d.path().to_str().unwrap()])
        .args(slow)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first process holds the folder.
    let t0 = Instant::now();
    while !d.path().join("index.csv").exists() && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    for extra in [&["--resume"][..], &[][..], &["--force"][..]] {
        let mut args = slow.to_vec();
        args.extend_from_slice(extra);
        let o = sweep(d.path(), &args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("is in use by process {} (since", first.id())),
            "{extra:?}: {}",
            stderr(&o)
        );
    }
    let o = llm(&["run", tiny().to_str().unwrap(), "--out", d.path().to_str().unwrap(), "--force"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(first.wait().unwrap().success());
    for f in FILES {
        assert_eq!(read(reference.path(), f), read(d.path(), f), "{f}");
    }
    // Once the first process has ended, its lock is free.
    let o = sweep(d.path(), &["--agents", "60000", "--jobs", "1", "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn merge_and_compare_verify_what_they_read() {
    let base = tempfile::tempdir().unwrap();
    let shard = |k: u32| base.path().join(format!("s{k}"));
    for k in 0..2 {
        assert!(sweep(&shard(k), &["--shard", &format!("{k}/2")]).status.success());
    }
    let dirs = [shard(0).display().to_string(), shard(1).display().to_string()];
    // A short runs.csv row in a shard.
    edit(&shard(1), "runs.csv", |t| {
        let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
        let l = lines[2].clone();
        lines[2] = l[..l.rfind(',').unwrap()].to_string();
        lines.join("\n") + "\n"
    });
    let m = base.path().join("m");
    let o = llm(&["merge", &dirs[0], &dirs[1], "--out", m.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("runs.csv:3: has ") && stderr(&o).contains("cannot merge"), "{}", stderr(&o));
    assert!(!m.join("runs.csv").exists());

    // Shards of sweeps with different --agents: say what differs.
    let other = base.path().join("other");
    assert!(sweep(&other, &["--shard", "1/2", "--agents", "500"]).status.success());
    let o = llm(&["merge", &dirs[0], other.to_str().unwrap(), "--out", m.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("agents: 3000 → 500"), "{}", stderr(&o));

    // compare refuses an unfinished sweep, or with --partial compares its committed runs and says so.
    let unfinished = base.path().join("u");
    assert!(sweep(&unfinished, &[]).status.success());
    // As if stopped while committing run 4: runs 0-3 committed, run 4's annual rows written.
    edit(&unfinished, "manifest.json", |t| t.replace("\"complete\"", "\"running\""));
    for (name, last) in [("index.csv", 3), ("runs.csv", 3), ("summary.csv", 3), ("annual.csv", 4)] {
        edit(&unfinished, name, |t| {
            let mut lines = t.lines();
            let mut out = format!("{}\n", lines.next().unwrap());
            for l in lines.filter(|l| l.split(',').next().unwrap().parse::<u64>().unwrap() <= last) {
                out.push_str(l);
                out.push('\n');
            }
            out
        });
    }
    let out = base.path().join("cmp");
    let o = llm(&["compare", unfinished.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("did not finish (status running)") && stderr(&o).contains("--partial"),
        "{}",
        stderr(&o)
    );
    let o = llm(&["compare", unfinished.to_str().unwrap(), "--out", out.to_str().unwrap(), "--partial"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let html = fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("partial: 4 of 8 runs committed"), "the report says it is partial");

    // A run folder whose market.csv was cut short.
    let run = base.path().join("run");
    run_tiny(&run, &[]);
    edit(&run, "market.csv", |t| t[..t.len() - 40].to_string());
    let o = llm(&["compare", run.to_str().unwrap(), "--out", base.path().join("cmp2").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("market.csv: the file changed after the run wrote it"), "{}", stderr(&o));
    let o = llm(&["compare", tiny().to_str().unwrap(), "--replicates", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--replicates"), "{}", stderr(&o));
}

#[test]
fn temporaries_of_a_crash_are_removed() {
    let r = reference();
    let d = tempfile::tempdir().unwrap();
    copy_dir(r.path(), d.path());
    fs::write(d.path().join("manifest.json.tmp-99999999"), "{").unwrap();
    fs::write(d.path().join("manifest.tmp-99999998"), "{").unwrap();
    fs::create_dir(d.path().join(".llm-market-staging-99999999")).unwrap();
    fs::create_dir(d.path().join(".llm-market-repair-99999999")).unwrap();
    fs::create_dir(d.path().join("traces/.tmp-run-000001-99999999")).unwrap();
    let o = sweep(d.path(), &["--traces", "sample:3", "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same(r.path(), d.path());
}

fn signal(pid: u32, sig: &str) {
    assert!(Command::new("kill").args(["-s", sig, &pid.to_string()]).status().unwrap().success());
}

#[test]
fn signals_stop_cleanly_and_leave_a_resumable_sweep() {
    let slow = ["--agents", "60000", "--jobs", "1", "--traces", "all"];
    let reference = tempfile::tempdir().unwrap();
    assert!(sweep(reference.path(), &slow).status.success());
    for (sig, code) in [("TERM", 143), ("INT", 130)] {
        let d = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_llm-market"))
            .args(["sweep", &sweep_file(), "--out", d.path().to_str().unwrap()])
            .args(slow)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while fs::read_to_string(d.path().join("index.csv")).map_or(0, |t| t.lines().count()) < 3
            && t0.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        signal(child.id(), sig);
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(code), "SIG{sig}: {}", stderr(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("continue with --resume"));
        let m: serde_json::Value = serde_json::from_slice(&read(d.path(), "manifest.json")).unwrap();
        assert_eq!(m["status"], "interrupted");
        let names: Vec<String> = fs::read_dir(d.path().join("traces"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        assert!(names.iter().all(|n| n.starts_with("run-")), "temporaries left: {names:?}");
        let o = sweep(d.path(), &[&slow[..], &["--resume"]].concat());
        assert!(o.status.success(), "{}", stderr(&o));
        assert_same(reference.path(), d.path());
    }
    // A single run: nothing written, no staging folder left.
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let child = Command::new(env!("CARGO_BIN_EXE_llm-market"))
        .args(["run", tiny().to_str().unwrap(), "--agents", "200000", "--out", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !fs::read_dir(&out)
        .is_ok_and(|mut r| r.any(|e| e.unwrap().file_name().to_string_lossy().starts_with(".llm-market-staging")))
        && t0.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    signal(child.id(), "INT");
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let left: Vec<String> =
        fs::read_dir(&out).unwrap().flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect();
    assert_eq!(left, [".llm-market.lock"], "nothing but the lock file is left");
}

/// Corrupts a finished sweep at random (deleted, duplicated, truncated or swapped rows, flipped bytes,
/// removed files) and requires: `--resume` refuses naming a file, or gives the original bytes; then
/// `--resume --repair` gives the original bytes. 200 cases with `LLM_MARKET_SLOW_TESTS=1` (CI), 40 otherwise.
#[test]
fn random_damage_is_refused_or_repaired_to_the_same_bytes() {
    let cases = if std::env::var("LLM_MARKET_SLOW_TESTS").is_ok_and(|v| v == "1") { 200 } else { 40 };
    eprintln!("{cases} random corruptions (200 with LLM_MARKET_SLOW_TESTS=1)");
    let r = reference();
    let files: Vec<String> = snapshot(r.path()).into_iter().map(|f| f.0).collect();
    let mut rng = llm_market::model::rng::CounterRng::new(0x5eed, 1);
    let mut pick = |n: usize| (rng.uniform() * n as f64) as usize % n.max(1);
    let (mut refused, mut resumed) = (0, 0);
    for case in 0..cases {
        let d = tempfile::tempdir().unwrap();
        copy_dir(r.path(), d.path());
        let name = &files[pick(files.len())];
        let path = d.path().join(name);
        let bytes = fs::read(&path).unwrap();
        let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
        let how = pick(6);
        let mut new: Vec<u8> = Vec::new();
        let at = pick(lines.len());
        match how {
            0 => lines.iter().enumerate().filter(|(i, _)| *i != at).for_each(|(_, l)| new.extend(*l)),
            1 => lines.iter().enumerate().for_each(|(i, l)| {
                new.extend(*l);
                if i == at {
                    new.extend(*l);
                }
            }),
            2 => {
                new = bytes.clone();
                new.truncate(pick(bytes.len()));
            }
            3 => {
                new = bytes.clone();
                let i = pick(bytes.len());
                new[i] ^= 1 << pick(8);
            }
            4 => {
                let mut ls = lines.clone();
                let b = pick(ls.len());
                ls.swap(at, b);
                ls.iter().for_each(|l| new.extend(*l));
            }
            _ => {}
        }
        if how == 5 {
            fs::remove_file(&path).unwrap();
        } else {
            fs::write(&path, &new).unwrap();
        }
        let what = [
            "deleted a line of",
            "duplicated a line of",
            "truncated",
            "flipped a bit of",
            "swapped two lines of",
            "removed",
        ][how];
        let o = sweep(d.path(), &["--traces", "sample:3", "--resume"]);
        match o.status.code() {
            Some(0) => {
                resumed += 1;
                assert_same(r.path(), d.path());
                continue;
            }
            Some(2) => {
                refused += 1;
                let err = stderr(&o);
                let file = name.rsplit('/').next().unwrap();
                assert!(err.contains(file) || err.contains("traces/run-"), "case {case} ({what} {name}): {err}");
            }
            other => panic!("case {case} ({what} {name}): exit {other:?}: {}", stderr(&o)),
        }
        let o = sweep(d.path(), &["--traces", "sample:3", "--resume", "--repair"]);
        assert!(o.status.success(), "case {case} ({what} {name}): {}", stderr(&o));
        assert_same(r.path(), d.path());
    }
    eprintln!("{refused} refused then repaired, {resumed} resumed to the same bytes");
    assert!(refused > cases / 4, "most corruptions are refused ({refused} of {cases})");
}

/// Unmounts a test file system when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Names of the tool's temporaries anywhere under `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.contains(".tmp-")
                || name.starts_with(".llm-market-staging")
                || name.starts_with(".llm-market-repair")
            {
                found.push(e.path().display().to_string());
            }
            if e.path().is_dir() {
                stack.push(e.path());
            }
        }
    }
    found
}

/// A full disk (a 48 kB tmpfs): the error names the file, nothing temporary is left, and the sweep resumes
/// to the bytes of an uninterrupted one. Needs root to mount: runs when `LLM_MARKET_MOUNT_TESTS=1` (CI).
#[test]
fn a_full_disk_names_the_file_and_leaves_a_resumable_folder() {
    if std::env::var("LLM_MARKET_MOUNT_TESTS").ok().as_deref() != Some("1") {
        eprintln!("skipped: set LLM_MARKET_MOUNT_TESTS=1 to run it (needs root to mount a tmpfs; CI sets it)");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mnt = d.path().join("small");
    fs::create_dir(&mnt).unwrap();
    let ok = Command::new("mount").args(["-t", "tmpfs", "-o", "size=48k", "tmpfs"]).arg(&mnt).status().unwrap();
    assert!(ok.success(), "cannot mount a tmpfs (LLM_MARKET_MOUNT_TESTS=1 needs root)");
    let _unmount = Mounted(mnt.clone());
    let out = mnt.join("sweep");
    let o = sweep(&out, &["--traces", "all"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("No space left on device") && err.contains(&format!("cannot write {}", out.display())),
        "{err}"
    );
    assert_eq!(temporaries(&out), Vec::<String>::new());
    let roomy = d.path().join("roomy");
    copy_dir(&out, &roomy);
    let o = sweep(&roomy, &["--traces", "all", "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = tempfile::tempdir().unwrap();
    assert!(sweep(reference.path(), &["--traces", "all"]).status.success());
    assert_same(reference.path(), &roomy);

    // A run: exit 2 naming the file, no output and no staging folder left.
    let run = mnt.join("run");
    let o = llm(&["run", tiny().to_str().unwrap(), "--out", run.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("No space left on device") && stderr(&o).contains("cannot write"), "{}", stderr(&o));
    assert_eq!(temporaries(&run), Vec::<String>::new());
    assert!(!run.join("trace.csv").exists());
}

/// Cases found by review: a failed run that would keep a trace, bytes moved between a run's two trace
/// files, edited headers, stray trace folders, a user's `*.tmp-<digits>` file, an impossible manifest.
#[test]
fn review_cases_are_handled() {
    // A sweep whose failing runs fall on traced runs: resumed as complete, merged and compared.
    let d = tempfile::tempdir().unwrap();
    let faults = root().join("tests/data/sweep_faults.toml");
    let f = faults.to_str().unwrap();
    let o = llm(&["sweep", f, "--out", d.path().to_str().unwrap(), "--traces", "all"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = llm(&["sweep", f, "--out", d.path().to_str().unwrap(), "--traces", "all", "--resume"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 run now, 5 done before"), "{}", stderr(&o));

    let r = reference();
    // Bytes moved from a trace.csv to its market.csv.
    let moved = tempfile::tempdir().unwrap();
    copy_dir(r.path(), moved.path());
    let t = moved.path().join("traces/run-000000");
    let trace = String::from_utf8(read(&t, "trace.csv")).unwrap();
    let cut = trace[..trace.len() - 1].rfind('\n').unwrap() + 1;
    fs::write(t.join("market.csv"), format!("{}{}", &trace[cut..], String::from_utf8(read(&t, "market.csv")).unwrap()))
        .unwrap();
    fs::write(t.join("trace.csv"), &trace[..cut]).unwrap();
    refused_then_repaired(r.path(), moved.path(), "trace of run 0 differs");

    // An edited header: refused by resume, merge and compare alike.
    let swapped = tempfile::tempdir().unwrap();
    copy_dir(r.path(), swapped.path());
    edit(swapped.path(), "summary.csv", |t| t.replacen("min_cash_usd,min_cash_date", "min_cash_date,min_cash_usd", 1));
    let out = tempfile::tempdir().unwrap();
    let o = llm(&["compare", swapped.path().to_str().unwrap(), "--out", out.path().join("c").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("summary.csv:1: the header differs"), "{}", stderr(&o));
    let o = llm(&["merge", swapped.path().to_str().unwrap(), "--out", out.path().join("m").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("summary.csv:1: the header differs"), "{}", stderr(&o));
    refused_then_repaired(r.path(), swapped.path(), "summary.csv:1: the header differs");

    // A trace folder of a run that keeps none: refused (compare would have read it), repair removes it.
    let stray = tempfile::tempdir().unwrap();
    copy_dir(r.path(), stray.path());
    copy_dir(&r.path().join("traces/run-000000"), &stray.path().join("traces/run-000001"));
    let o = llm(&["compare", stray.path().to_str().unwrap(), "--out", out.path().join("c2").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    refused_then_repaired(r.path(), stray.path(), "traces/run-000001: a trace the index does not record");

    // A user's file that merely looks like a temporary is not removed.
    let notes = tempfile::tempdir().unwrap();
    copy_dir(r.path(), notes.path());
    fs::write(notes.path().join("notes.tmp-20240101"), "mine").unwrap();
    assert!(sweep(notes.path(), &["--traces", "sample:3", "--resume"]).status.success());
    assert_eq!(fs::read_to_string(notes.path().join("notes.tmp-20240101")).unwrap(), "mine");

    // An impossible manifest: exit 2, no panic.
    let huge = tempfile::tempdir().unwrap();
    copy_dir(r.path(), huge.path());
    edit(huge.path(), "manifest.json", |t| t.replacen("\"total_runs\": 8", "\"total_runs\": 4611686018427387904", 1));
    for args in
        [vec!["merge", huge.path().to_str().unwrap(), "--out"], vec!["compare", huge.path().to_str().unwrap(), "--out"]]
    {
        let mut a = args.clone();
        let o_dir = out.path().join(format!("h-{}", args[0]));
        a.push(o_dir.to_str().unwrap());
        let o = llm(&a);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("more than a sweep may have"), "{}", stderr(&o));
    }
}

#[test]
fn force_does_not_move_a_folder_another_process_is_writing() {
    let d = tempfile::tempdir().unwrap();
    let inner = d.path().join("runs").join("busy");
    let mut first = Command::new(env!("CARGO_BIN_EXE_llm-market"))
        .args(["sweep", &sweep_file(), "--out", inner.to_str().unwrap(), "--agents", "60000", "--jobs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !inner.join("index.csv").exists() && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = llm(&["run", tiny().to_str().unwrap(), "--out", d.path().to_str().unwrap(), "--force"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("is in use by process {}", first.id())), "{}", stderr(&o));
    assert!(first.wait().unwrap().success());
    assert!(inner.join("index.csv").exists(), "the busy folder stayed where it was");
}

#[test]
fn an_interrupted_merge_leaves_nothing_half_written() {
    let base = tempfile::tempdir().unwrap();
    let many = root().join("tests/data/sweep_many.toml");
    let shard = |k: u32| base.path().join(format!("s{k}"));
    for k in 0..2 {
        let (out, k) = (shard(k), format!("{k}/2"));
        let o =
            llm(&["sweep", many.to_str().unwrap(), "--out", out.to_str().unwrap(), "--traces", "all", "--shard", &k]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let out = base.path().join("m");
    let child = Command::new(env!("CARGO_BIN_EXE_llm-market"))
        .args(["merge", shard(0).to_str().unwrap(), shard(1).to_str().unwrap(), "--out", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !fs::read_dir(&out)
        .is_ok_and(|mut r| r.any(|e| e.unwrap().file_name().to_string_lossy().starts_with(".llm-market-staging")))
        && t0.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    signal(child.id(), "TERM");
    let o = child.wait_with_output().unwrap();
    let left: Vec<String> =
        fs::read_dir(&out).unwrap().flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect();
    match o.status.code() {
        // Stopped before the end: nothing but the lock file is left, and a merge afterwards works.
        Some(143) => assert_eq!(left, [".llm-market.lock"], "{}", stderr(&o)),
        // Finished before the signal arrived (a fast machine): a complete merge.
        Some(0) => {
            eprintln!("the merge finished before the signal: the interrupted path was not exercised this time");
            assert!(left.contains(&"manifest.json".to_string()));
        }
        other => panic!("exit {other:?}: {}", stderr(&o)),
    }
    let again = base.path().join("m2");
    let o = llm(&["merge", shard(0).to_str().unwrap(), shard(1).to_str().unwrap(), "--out", again.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}
