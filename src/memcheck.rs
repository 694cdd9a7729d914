//! Memory bounds checked before a command starts work (part of the `app` layer: it reads /proc and /sys).
//!
//! A run's peak memory is estimated from its agent counts (`sim::memory`); the memory this process may use
//! is the smaller of `MemAvailable` in /proc/meminfo and a cgroup limit (`/sys/fs/cgroup/memory.max`, or
//! cgroup v1's `memory.limit_in_bytes`) when one is set. A command whose runs — one per job held in memory
//! at once — would not fit is refused with exit code 2 before anything is allocated or written, with the
//! estimate, the limit and the largest agent count that fits. Where the memory cannot be read (not Linux),
//! nothing is checked. `LLM_MARKET_TEST_MEMORY_BYTES` replaces the reading, for tests.

use crate::config::validate::{MAX_AGENTS, MAX_ORG_AGENTS};
use crate::experiment::spec::{ParameterFile, Sweep};
use crate::sim::memory::{BYTES_PER_ORG, BYTES_PER_USER, FIXED_BYTES, max_users_within, peak_bytes};
use anyhow::{Result, bail};
use std::path::Path;

/// The environment variable that replaces the machine's available memory (bytes), for tests.
pub const TEST_MEMORY_VAR: &str = "LLM_MARKET_TEST_MEMORY_BYTES";

/// Memory this process may use, and where the figure came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Available {
    pub bytes: u64,
    /// `None` for the machine's `MemAvailable`, else the limit that applied (cgroup, test variable).
    pub source: Option<String>,
}

/// Reads the memory available to this process; `Ok(None)` where it cannot be read.
pub fn available() -> Result<Option<Available>> {
    if let Ok(raw) = std::env::var(TEST_MEMORY_VAR) {
        return match raw.trim().parse::<u64>() {
            Ok(bytes) => Ok(Some(Available { bytes, source: Some(TEST_MEMORY_VAR.into()) })),
            Err(_) => bail!("{TEST_MEMORY_VAR}: expected a number of bytes, got {raw:?}"),
        };
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| mem_available(&t));
    let cgroup = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok().and_then(|t| t.trim().parse::<u64>().ok()));
    Ok(match (meminfo, cgroup) {
        (Some(m), Some(c)) if c < m => Some(Available { bytes: c, source: Some("its cgroup's memory limit".into()) }),
        (Some(m), _) => Some(Available { bytes: m, source: None }),
        (None, Some(c)) => Some(Available { bytes: c, source: Some("its cgroup's memory limit".into()) }),
        (None, None) => None,
    })
}

/// `MemAvailable` of /proc/meminfo, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let kb = meminfo.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?.trim().strip_suffix("kB")?.trim();
    kb.parse::<u64>().ok()?.checked_mul(1024)
}

/// Where a command's number of user agents came from, to name it in a refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentsFrom {
    /// `--agents N`.
    Flag,
    /// `--set agents=N`.
    Set,
    /// The key `agents` of a scenario file (or of the files it extends).
    Key(String),
    /// A sweep file's `set = ["agents=N"]`.
    SweepSet(String),
    /// A varied parameter `agents` of a sweep file: N is its largest value.
    Parameter(String),
}

impl AgentsFrom {
    /// Where the agents of a scenario loaded from `path` (none: the embedded baseline) with these arguments
    /// came from: the command line wins over the file, as in `config::load`.
    pub fn scenario(path: Option<&Path>, flag: Option<u64>, sets: &[String]) -> AgentsFrom {
        if flag.is_some() {
            AgentsFrom::Flag
        } else if sets.iter().any(|s| is_agents_set(s)) {
            AgentsFrom::Set
        } else {
            AgentsFrom::Key(path.map_or("the embedded baseline".into(), |p| p.display().to_string()))
        }
    }

    fn subject(&self, n: u64) -> String {
        match self {
            AgentsFrom::Flag => format!("--agents {n}"),
            AgentsFrom::Set => format!("--set agents={n}"),
            AgentsFrom::Key(file) => format!("`agents = {n}` in {file}"),
            AgentsFrom::SweepSet(file) => format!("`agents={n}` in the `set` of {file}"),
            AgentsFrom::Parameter(file) => format!("the varied parameter `agents` of {file} (up to {n})"),
        }
    }

    fn fix(&self, m: u64) -> String {
        match self {
            AgentsFrom::Flag => format!("--agents {m}"),
            AgentsFrom::Set => format!("--set agents={m}"),
            AgentsFrom::Key(file) => format!("`agents = {m}` in {file} (or --agents {m})"),
            AgentsFrom::SweepSet(file) => format!("`agents={m}` in the `set` of {file} (or --agents {m})"),
            AgentsFrom::Parameter(file) => format!("`agents` values up to {m} in {file}"),
        }
    }
}

/// Whether a `--set` string sets the top-level `agents`.
pub fn is_agents_set(s: &str) -> bool {
    s.split_once('=').is_some_and(|(k, _)| k.trim() == "agents")
}

/// What a command will hold in memory at once: `at_once` runs of `users` user and `orgs` org agents.
#[derive(Clone, Debug)]
pub struct Demand {
    pub users: u64,
    pub orgs: u64,
    /// Runs in memory at the same time (the jobs, at most the runs to do).
    pub at_once: u64,
    pub from: AgentsFrom,
}

impl Demand {
    /// Estimated peak bytes of all the runs held at once.
    pub fn bytes(&self) -> u64 {
        peak_bytes(self.users, self.orgs).saturating_mul(self.at_once.max(1))
    }

    /// The memory line of a dry run: the estimate against what is available.
    pub fn describe(&self, avail: Option<&Available>) -> String {
        let per_run = peak_bytes(self.users, self.orgs);
        let total = match self.at_once {
            0 | 1 => format!("about {}", human(per_run)),
            n => format!("about {} ({n} jobs × {} per run)", human(self.bytes()), human(per_run)),
        };
        match avail {
            Some(a) => format!("estimated memory: {total}; {} available\n", human(a.bytes)),
            None => format!("estimated memory: {total}\n"),
        }
    }
}

/// Refuses (`Err`, exit code 2) a demand that does not fit in `avail` bytes, naming the estimate, the limit
/// and the largest agent count (and job count) that fits.
pub fn check(d: &Demand, avail: &Available) -> Result<()> {
    let need = d.bytes();
    if need <= avail.bytes {
        return Ok(());
    }
    let at_once = d.at_once.max(1);
    let per_run = peak_bytes(d.users, d.orgs);
    let how = format!(
        "{BYTES_PER_USER} bytes per user agent + {BYTES_PER_ORG} per organisation agent ({} of them) + {} per run",
        d.orgs,
        human(FIXED_BYTES)
    );
    let has = match &avail.source {
        None => format!("this machine has {} available", human(avail.bytes)),
        Some(s) => format!("this process may use {} ({s})", human(avail.bytes)),
    };
    let users_fit_one = nice_floor(max_users_within(avail.bytes, d.orgs));
    if at_once == 1 {
        let advice = if users_fit_one == 0 {
            none_fits(d.orgs, avail.bytes)
        } else {
            format!("use at most {}", d.from.fix(users_fit_one))
        };
        bail!("{} needs about {} of memory ({how}); {has}: {advice}", d.from.subject(d.users), human(need));
    }
    let jobs_fit = avail.bytes / per_run;
    let users_fit = nice_floor(max_users_within(avail.bytes / at_once, d.orgs));
    let mut advice = Vec::new();
    if jobs_fit >= 1 {
        advice.push(format!("lower --jobs to at most {jobs_fit}"));
    }
    if users_fit >= 1 {
        advice.push(format!("lower the agents to at most {} with {at_once} jobs", d.from.fix(users_fit)));
    }
    if advice.is_empty() {
        advice.push(none_fits(d.orgs, avail.bytes));
    }
    bail!(
        "{at_once} jobs at once of {} need about {} of memory ({} per run: {how}); {has}: {}",
        d.from.subject(d.users),
        human(need),
        human(per_run),
        advice.join(", or ")
    );
}

/// Why not even a run without user agents fits in `avail` bytes.
fn none_fits(orgs: u64, avail: u64) -> String {
    if FIXED_BYTES >= avail {
        format!("a run needs more than its fixed {}", human(FIXED_BYTES))
    } else {
        format!("not even one user agent fits next to {orgs} organisation agents (lower `orgs.agents`)")
    }
}

/// Reads the available memory and checks `d` against it (nothing is checked where it cannot be read).
pub fn ensure(d: &Demand) -> Result<()> {
    match available()? {
        Some(a) => check(d, &a),
        None => Ok(()),
    }
}

/// The demand of `at_once` runs of a validated scenario loaded from `path` with `--agents flag` and `sets`.
pub fn scenario_demand(
    scenario: &crate::config::Scenario,
    path: Option<&Path>,
    flag: Option<u64>,
    sets: &[String],
    at_once: u64,
) -> Demand {
    let p = scenario.params();
    Demand { users: p.agents, orgs: p.orgs.agents, at_once, from: AgentsFrom::scenario(path, flag, sets) }
}

/// The demand of `at_once` runs of a sweep loaded from `path`: its largest run, i.e. the base scenario's
/// agent counts, or the largest value of `agents` (and of `orgs.agents`) where the design varies them.
pub fn sweep_demand(sweep: &Sweep, path: &Path, flag: Option<u64>, sets: &[String], at_once: u64) -> Demand {
    let varied_max = |key: &str, cap: u64| {
        sweep.file.parameters.iter().filter(|p| p.path.trim() == key).map(|p| parameter_max(p).min(cap)).max()
    };
    let file = path.display().to_string();
    let (users, from) = match varied_max("agents", MAX_AGENTS) {
        Some(m) => (m, AgentsFrom::Parameter(file)),
        None => {
            let from = if flag.is_some() || sets.iter().any(|s| is_agents_set(s)) {
                AgentsFrom::scenario(None, flag, sets)
            } else if sweep.file.set.iter().any(|s| is_agents_set(s)) {
                AgentsFrom::SweepSet(file)
            } else if sweep.file.scenario == "embedded:baseline" {
                AgentsFrom::Key("the embedded baseline".into())
            } else {
                AgentsFrom::Key(
                    path.parent().unwrap_or(Path::new(".")).join(&sweep.file.scenario).display().to_string(),
                )
            };
            (sweep.base.agents, from)
        }
    };
    let orgs = varied_max("orgs.agents", MAX_ORG_AGENTS).unwrap_or(sweep.base.orgs.agents);
    Demand { users, orgs, at_once, from }
}

/// The largest value a varied parameter takes (listed values, or the top of its range), as a count.
fn parameter_max(p: &ParameterFile) -> u64 {
    let count = |v: &toml::Value| match v {
        toml::Value::Integer(i) => (*i).max(0) as u64,
        toml::Value::Float(f) if f.is_finite() => f.max(0.0).ceil() as u64,
        _ => 0,
    };
    match (&p.values, p.max) {
        (Some(values), _) => values.iter().map(count).max().unwrap_or(0),
        (None, Some(max)) if max.is_finite() => max.max(0.0).ceil() as u64,
        _ => 0,
    }
}

/// Checks a sweep's demand. A real sweep is refused when it does not fit; a dry run (whose pilot holds one
/// run) only when a single run does not, and gets back its memory line, with a warning when the jobs
/// together would not fit.
pub fn check_sweep(d: &Demand, dry_run: bool) -> Result<String> {
    let avail = available()?;
    if let Some(a) = &avail {
        check(&Demand { at_once: if dry_run { 1 } else { d.at_once }, ..d.clone() }, a)?;
    }
    let mut text = d.describe(avail.as_ref());
    if let Some(Err(e)) = avail.as_ref().map(|a| check(d, a)) {
        text.push_str(&format!("warning: the sweep would be refused: {e}\n"));
    }
    Ok(text)
}

/// Rounds down to two significant digits (212,345,678 → 210,000,000), so that a suggested count is
/// readable and still fits.
pub fn nice_floor(n: u64) -> u64 {
    let mut unit = 1u64;
    while n / unit >= 100 {
        unit *= 10;
    }
    n / unit * unit
}

/// Bytes as "215 GB", "21.3 GB" or "35 MB" (decimal units).
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 100e9 {
        format!("{:.0} GB", b / 1e9)
    } else if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(bytes: u64) -> Available {
        Available { bytes, source: None }
    }

    #[test]
    fn reads_mem_available() {
        let text = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   20800000 kB\n";
        assert_eq!(mem_available(text), Some(20_800_000 * 1024));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn refuses_a_run_that_does_not_fit_and_names_the_largest_that_does() {
        let d = Demand { users: 1 << 31, orgs: 20_000, at_once: 1, from: AgentsFrom::Flag };
        let e = check(&d, &machine(21_300_000_000)).unwrap_err().to_string();
        assert!(e.starts_with("--agents 2147483648 needs about 215 GB of memory (100 bytes per user agent"), "{e}");
        assert!(e.contains("this machine has 21.3 GB available: use at most --agents 210000000"), "{e}");
        let fits = Demand { users: 210_000_000, ..d.clone() };
        assert!(check(&fits, &machine(21_300_000_000)).is_ok());
        let key = Demand { from: AgentsFrom::Key("big.toml".into()), ..d };
        let e = check(&key, &machine(21_300_000_000)).unwrap_err().to_string();
        assert!(e.starts_with("`agents = 2147483648` in big.toml needs"), "{e}");
    }

    #[test]
    fn refuses_jobs_that_together_do_not_fit() {
        let d = Demand { users: 1_000_000, orgs: 20_000, at_once: 8, from: AgentsFrom::Flag };
        // 134 MB per run; 8 jobs need 1.07 GB.
        let e = check(&d, &machine(500_000_000)).unwrap_err().to_string();
        assert!(e.contains("lower --jobs to at most 3"), "{e}");
        assert!(e.contains("or lower the agents to at most --agents 280000 with 8 jobs"), "{e}");
        assert!(check(&Demand { at_once: 3, ..d }, &machine(500_000_000)).is_ok());
    }

    #[test]
    fn nice_numbers() {
        assert_eq!(nice_floor(212_345_678), 210_000_000);
        assert_eq!(nice_floor(99), 99);
        assert_eq!(nice_floor(0), 0);
        assert_eq!(human(214_748_364_800), "215 GB");
        assert_eq!(human(21_300_000_000), "21.3 GB");
        assert_eq!(human(35_000_000), "35 MB");
        assert!(is_agents_set(" agents = 5") && !is_agents_set("orgs.agents=5"));
    }
}
