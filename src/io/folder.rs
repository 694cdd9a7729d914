//! Output folders: one writer at a time (an advisory lock file inside the folder), what a folder holds
//! (the `kind` of its `manifest.json`), refusing to mix or overwrite outputs, `--force` moving earlier
//! outputs aside into a dated backup folder, and removing the temporaries a crashed process left.
//!
//! The lock is `std::fs::File::try_lock` (flock on Linux) on `.llm-market.lock`: the kernel releases it
//! when its process ends, however it ends, so the lock of a dead process is simply taken over.

use anyhow::{Context, Result, bail};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file inside every output folder the tool writes.
pub const LOCK_FILE: &str = ".llm-market.lock";

/// What an output folder holds (`kind` in its `manifest.json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `llm-market run`: one run's trace, market, annual and summary CSVs.
    Run,
    /// `llm-market sweep` (unsharded).
    Sweep,
    /// `llm-market sweep --shard K/N`: one shard of a sweep.
    Shard,
    /// `llm-market merge`: the shards of a sweep merged.
    Merge,
    /// `llm-market compare`: comparison.csv, charts and report.html (and the runs of scenario files).
    Comparison,
    /// `llm-market analyze`: sensitivity.csv, prim_boxes.csv, charts and report.html.
    Analysis,
    /// `llm-market calibrate`: posterior.csv, generations.csv, predictive.csv, identification.csv,
    /// simulations.csv (the checkpoint while it runs), charts and report.html.
    Calibration,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Run => "run",
            Kind::Sweep => "sweep",
            Kind::Shard => "shard",
            Kind::Merge => "merge",
            Kind::Comparison => "comparison",
            Kind::Analysis => "analysis",
            Kind::Calibration => "calibration",
        }
    }
    fn parse(s: &str) -> Option<Kind> {
        [Kind::Run, Kind::Sweep, Kind::Shard, Kind::Merge, Kind::Comparison, Kind::Analysis, Kind::Calibration]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
    /// Whether a folder of this kind holds sweep CSVs (runs.csv, index.csv, …).
    pub fn is_sweep_like(self) -> bool {
        matches!(self, Kind::Sweep | Kind::Shard | Kind::Merge)
    }
}

/// Names the tool writes at the top of an output folder, of any kind. `--force` moves these aside; any
/// other file or folder (a user's notes, a Slurm job's `slurm/` and `shards/`) is left where it is.
const OUTPUT_NAMES: &[&str] = &[
    "manifest.json",
    "trace.csv",
    "market.csv",
    "decisions.csv",
    "annual.csv",
    "summary.csv",
    "runs.csv",
    "index.csv",
    "trace.parquet",
    "market.parquet",
    "decisions.parquet",
    "annual.parquet",
    "summary.parquet",
    "runs.parquet",
    "traces",
    "comparison.csv",
    "report.html",
    "charts",
    "runs",
    "sensitivity.csv",
    "prim_boxes.csv",
    "analysis",
    "posterior.csv",
    "generations.csv",
    "predictive.csv",
    "identification.csv",
    "simulations.csv",
];

/// How a command means to use a folder that already holds outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A new output: refuse a folder that holds outputs.
    Fresh,
    /// `--resume`: continue the output of the same kind that is there (or start one in an empty folder).
    Resume,
    /// `--force`: move earlier outputs aside into `backup-<time>/`, then start afresh.
    Force,
}

impl Mode {
    /// The mode of a command's `--force` and `--resume` flags (they exclude each other).
    pub fn from_flags(force: bool, resume: bool) -> Mode {
        if force {
            Mode::Force
        } else if resume {
            Mode::Resume
        } else {
            Mode::Fresh
        }
    }
}

/// An output folder held exclusively by this process until the value is dropped.
#[derive(Debug)]
pub struct FolderLock {
    dir: PathBuf,
    _file: File,
}

impl FolderLock {
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// What a folder holds, as far as the tool can tell.
#[derive(Clone, Debug, Default)]
pub struct Contents {
    /// The kind named by its manifest (`None`: no readable manifest).
    pub kind: Option<Kind>,
    /// The manifest, when it could be read.
    pub manifest: Option<serde_json::Value>,
    /// Output names present (see [`OUTPUT_NAMES`]).
    pub names: Vec<String>,
}

impl Contents {
    /// One line saying what is there, for messages.
    pub fn describe(&self) -> String {
        let m = self.manifest.as_ref();
        let s = |k: &str| m.and_then(|m| m[k].as_str()).unwrap_or("?").to_string();
        match self.kind {
            Some(Kind::Run) => format!(
                "a run (scenario {}, seed {}, written {})",
                s("scenario"),
                m.map_or("?".into(), |m| m["seed"].to_string()),
                s("end_time")
            ),
            Some(Kind::Calibration) => format!(
                "a calibration ({}, priors {}, started {})",
                if m.and_then(|m| m["complete"].as_bool()) == Some(true) { "finished" } else { "unfinished" },
                s("priors"),
                s("start_time")
            ),
            Some(k @ (Kind::Sweep | Kind::Shard | Kind::Merge)) => format!(
                "a {} (sweep {}, status {}, {} of {} runs)",
                if k == Kind::Merge { "merged sweep" } else { k.as_str() },
                s("sweep"),
                s("status"),
                m.and_then(|m| m["runs_done"].as_u64()).map_or("?".into(), |n| n.to_string()),
                m.map_or("?".into(), |m| m["total_runs"].to_string())
            ),
            Some(Kind::Comparison) => format!("a comparison (written {})", s("end_time")),
            Some(Kind::Analysis) => format!("an analysis of sweep {} (written {})", s("sweep"), s("end_time")),
            None => {
                format!("files named like llm-market outputs ({}) but no readable manifest.json", self.names.join(", "))
            }
        }
    }
}

/// Reads what `dir` holds without changing anything.
pub fn inspect(dir: &Path) -> Contents {
    let mut c = Contents::default();
    for name in OUTPUT_NAMES {
        if dir.join(name).symlink_metadata().is_ok() {
            c.names.push(name.to_string());
        }
    }
    c.manifest = read_manifest(&dir.join("manifest.json"));
    c.kind = c.manifest.as_ref().and_then(|m| match m["kind"].as_str() {
        Some(k) => Kind::parse(k),
        // Run manifests of earlier versions had no kind.
        None => m.get("scenario").map(|_| Kind::Run),
    });
    c
}

/// A manifest read with a size limit (a manifest is a few kB; anything huge is not one of ours).
pub fn read_manifest(path: &Path) -> Option<serde_json::Value> {
    let f = File::open(path).ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    f.take(16 << 20).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Takes the folder's lock (creating the folder), or says who holds it.
pub fn lock(dir: &Path) -> Result<FolderLock> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create the output folder {}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.lines().next().unwrap_or("").trim().to_string();
            bail!(
                "{} is in use by {}; nothing was written. Wait for it to finish, or write to another --out",
                dir.display(),
                if holder.is_empty() { "another llm-market process".to_string() } else { holder }
            );
        }
        Err(fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let args: Vec<String> = std::env::args().skip(1).take(3).collect();
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "process {} (since {now}, `llm-market {}`)", std::process::id(), args.join(" "))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(FolderLock { dir: dir.to_path_buf(), _file: file })
}

/// Locks an existing folder while its outputs are read (so that no process writes them meanwhile). A folder
/// the tool may not write to (someone else's results) is read without the lock.
pub fn lock_for_reading(dir: &Path) -> Result<Option<FolderLock>> {
    match OpenOptions::new().read(true).write(true).create(true).truncate(false).open(dir.join(LOCK_FILE)) {
        Err(e)
            if e.kind() == std::io::ErrorKind::PermissionDenied
                || e.kind() == std::io::ErrorKind::ReadOnlyFilesystem =>
        {
            Ok(None)
        }
        _ => lock(dir).map(Some),
    }
}

/// Locks `dir` for writing an output of `kind`, after checking what is there:
/// - nothing of ours: fine;
/// - [`Mode::Resume`]: fine when the folder holds the same kind (the caller verifies the rest);
/// - [`Mode::Force`]: every output name is moved into `backup-<UTC time>/` inside the folder;
/// - otherwise: refused, saying what is there and how to proceed.
///
/// Temporaries of crashed processes (staging folders, `*.tmp-*` files) are removed once the lock is held:
/// no live process can be writing them.
pub fn claim(dir: &Path, kind: Kind, mode: Mode) -> Result<FolderLock> {
    let lock = lock(dir)?;
    remove_temporaries(dir);
    let there = inspect(dir);
    if there.names.is_empty() {
        return Ok(lock);
    }
    let resumable = matches!(kind, Kind::Sweep | Kind::Shard | Kind::Calibration);
    match mode {
        Mode::Resume if there.kind == Some(kind) => Ok(lock),
        Mode::Force => {
            let backup = move_aside(dir, &there.names)?;
            eprintln!("moved the earlier outputs of {} to {}", dir.display(), backup.display());
            Ok(lock)
        }
        _ => {
            let what = there.describe();
            let how = if resumable && there.kind == Some(kind) {
                "use --resume to continue it, --force to move its files aside into a backup-<time>/ folder there and start afresh, or another --out"
            } else {
                "use another --out, or --force to move those files aside into a backup-<time>/ folder there first"
            };
            let verb = if there.kind == Some(kind) { "already holds" } else { "holds" };
            bail!("{} {verb} {what}; nothing was written: {how}", dir.display())
        }
    }
}

/// Takes the locks of every output folder nested in `path` (a comparison's `runs/<name>/`): a folder
/// another process is writing must not be moved. The locks are held until the returned values drop.
fn lock_nested(path: &Path, held: &mut Vec<FolderLock>) -> Result<()> {
    let Ok(entries) = fs::read_dir(path) else { return Ok(()) };
    if path.join(LOCK_FILE).is_file() {
        held.push(lock(path)?);
    }
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) && !e.file_name().to_string_lossy().starts_with("run-") {
            lock_nested(&e.path(), held)?;
        }
    }
    Ok(())
}

/// Moves `names` into a new `backup-<UTC time>/` folder inside `dir`; returns its path. Refused if an
/// output folder nested in what would move is in use by another process.
pub fn move_aside(dir: &Path, names: &[String]) -> Result<PathBuf> {
    let mut held = Vec::new();
    for name in names {
        lock_nested(&dir.join(name), &mut held)?;
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let mut backup = dir.join(format!("backup-{stamp}"));
    let mut n = 2;
    while backup.exists() {
        backup = dir.join(format!("backup-{stamp}-{n}"));
        n += 1;
    }
    fs::create_dir(&backup).with_context(|| format!("cannot create {}", backup.display()))?;
    for name in names {
        let (from, to) = (dir.join(name), backup.join(name));
        fs::rename(&from, &to).with_context(|| format!("cannot move {} to {}", from.display(), to.display()))?;
    }
    sync_dir(dir);
    Ok(backup)
}

/// Prefixes and patterns of the temporaries the tool creates inside an output folder.
pub const STAGING_PREFIX: &str = ".llm-market-staging-";
pub const REPAIR_PREFIX: &str = ".llm-market-repair-";
const TRACE_TMP_PREFIX: &str = ".tmp-run-";

/// Whether a file name is one of the tool's temporary files: `NAME.tmp-<pid>` for a file NAME the tool
/// writes with [`crate::io::sweep_out::write_atomic`] (and `manifest.tmp-<pid>` of earlier versions). Any
/// other name — a user's `notes.tmp-2024` — is not the tool's and is left alone.
fn is_tmp_file(name: &str) -> bool {
    name.rsplit_once(".tmp-").is_some_and(|(base, pid)| {
        !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && (base == "manifest" || (OUTPUT_NAMES.contains(&base) && base.contains('.')))
    })
}

/// Removes the temporaries a crashed or killed process left in `dir` (call with the lock held).
pub fn remove_temporaries(dir: &Path) {
    let clear = |d: &Path, top: bool| {
        let Ok(entries) = fs::read_dir(d) else { return };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let staging = top && (name.starts_with(STAGING_PREFIX) || name.starts_with(REPAIR_PREFIX));
            if staging || (!top && name.starts_with(TRACE_TMP_PREFIX)) {
                let _ = fs::remove_dir_all(e.path());
            } else if is_tmp_file(&name) && e.file_type().is_ok_and(|t| t.is_file()) {
                let _ = fs::remove_file(e.path());
            }
        }
    };
    clear(dir, true);
    clear(&dir.join("traces"), false);
}

/// Syncs a folder's entries to disk (after renames), where the platform allows.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporaries_are_recognised() {
        assert!(is_tmp_file("manifest.tmp-1234"));
        assert!(is_tmp_file("manifest.json.tmp-1234"));
        assert!(is_tmp_file("index.csv.tmp-7"));
        assert!(!is_tmp_file("manifest.json"));
        assert!(!is_tmp_file("notes.tmp-x"));
        assert!(!is_tmp_file("notes.tmp-20240101"));
    }

    #[test]
    fn a_second_lock_is_refused_and_names_the_holder() {
        let d = tempfile::tempdir().unwrap();
        let first = lock(d.path()).unwrap();
        let e = lock(d.path()).unwrap_err().to_string();
        assert!(e.contains("is in use by process") && e.contains("since"), "{e}");
        drop(first);
        lock(d.path()).unwrap();
    }

    #[test]
    fn claim_refuses_other_outputs_and_force_moves_them_aside() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("manifest.json"), r#"{"kind":"sweep","sweep":"s","status":"complete"}"#).unwrap();
        fs::write(d.path().join("runs.csv"), "run_id\n").unwrap();
        fs::write(d.path().join("notes.txt"), "mine").unwrap();
        let e = claim(d.path(), Kind::Run, Mode::Fresh).unwrap_err().to_string();
        assert!(e.contains("holds a sweep (sweep s, status complete") && e.contains("--force"), "{e}");
        let e = claim(d.path(), Kind::Sweep, Mode::Fresh).unwrap_err().to_string();
        assert!(e.contains("already holds a sweep") && e.contains("--resume"), "{e}");
        claim(d.path(), Kind::Sweep, Mode::Resume).unwrap();
        claim(d.path(), Kind::Run, Mode::Force).unwrap();
        assert!(!d.path().join("runs.csv").exists() && d.path().join("notes.txt").exists());
        let backups: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("backup-"))
            .collect();
        assert_eq!(backups.len(), 1);
        assert!(backups[0].path().join("runs.csv").exists() && backups[0].path().join("manifest.json").exists());
    }
}
