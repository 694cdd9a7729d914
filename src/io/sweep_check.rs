//! Verifying a sweep folder before its rows are trusted (`--resume`, `merge`, `compare`).
//!
//! A sweep commits each run by appending, in this order, its annual rows, its summary rows, its
//! `runs.csv` row and finally its line of `index.csv`: the run id, the number of annual and summary rows
//! and a CRC-32 of the run's bytes in each file (and of its trace files when it keeps a trace). A run is
//! committed once its index line is complete. Verification reads every file once, groups well-formed rows
//! by run id and checks each committed run against its index line, so a deleted, truncated, edited,
//! duplicated or reordered row is found and named by file and line. What follows the last committed run
//! may only be the rows of the one run being written when the process stopped (a torn tail): that is cut
//! off and the run done again.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// The CSV files of a sweep in commit order: annual, summary, runs, then the index.
pub const SWEEP_FILES: [&str; 4] = ["annual.csv", "summary.csv", "runs.csv", "index.csv"];
/// The header of `index.csv`.
pub const INDEX_HEADER: &str = "run_id,annual_rows,annual_crc32,summary_rows,summary_crc32,runs_crc32,trace_crc32\n";

/// The run ids a folder holds, in order: `offset + k × stride` for k in 0..count (a shard K/N of a sweep
/// of `total` runs has offset K and stride N).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdSeq {
    pub offset: u64,
    pub stride: u64,
    pub count: u64,
}

impl IdSeq {
    /// The runs of shard `index`/`count` (`None`: unsharded) of a sweep of `total` runs.
    pub fn of(total: u64, shard: Option<(u64, u64)>) -> IdSeq {
        let (offset, stride) = shard.unwrap_or((0, 1));
        let count = if total > offset { (total - offset).div_ceil(stride) } else { 0 };
        IdSeq { offset, stride, count }
    }
    pub fn id(&self, k: u64) -> u64 {
        self.offset + k * self.stride
    }
    /// The position of run `id` in the sequence, if it belongs to it.
    pub fn position(&self, id: u64) -> Option<u64> {
        let k = id.checked_sub(self.offset)? / self.stride;
        (id >= self.offset && (id - self.offset).is_multiple_of(self.stride) && k < self.count).then_some(k)
    }
}

/// One run's line of `index.csv`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexEntry {
    pub run_id: u64,
    pub annual_rows: u64,
    pub annual_crc: u32,
    pub summary_rows: u64,
    pub summary_crc: u32,
    pub runs_crc: u32,
    /// CRC-32 of `traces/run-<id>/trace.csv` then `market.csv`, for runs that keep a trace.
    pub trace_crc: Option<u32>,
}

impl IndexEntry {
    /// The entry of a run whose rows are these bytes.
    pub fn of(run_id: u64, annual: &str, summary: &str, runs_line: &str, trace_crc: Option<u32>) -> IndexEntry {
        IndexEntry {
            run_id,
            annual_rows: annual.bytes().filter(|&b| b == b'\n').count() as u64,
            annual_crc: crc32fast::hash(annual.as_bytes()),
            summary_rows: summary.bytes().filter(|&b| b == b'\n').count() as u64,
            summary_crc: crc32fast::hash(summary.as_bytes()),
            runs_crc: crc32fast::hash(runs_line.as_bytes()),
            trace_crc,
        }
    }
    /// The line of `index.csv`, ending in `\n`.
    pub fn line(&self) -> String {
        format!(
            "{},{},{:08x},{},{:08x},{:08x},{}\n",
            self.run_id,
            self.annual_rows,
            self.annual_crc,
            self.summary_rows,
            self.summary_crc,
            self.runs_crc,
            self.trace_crc.map(|c| format!("{c:08x}")).unwrap_or_default()
        )
    }
    fn parse(line: &str) -> Option<IndexEntry> {
        let f: Vec<&str> = line.strip_suffix('\n')?.split(',').collect();
        if f.len() != 7 {
            return None;
        }
        let hex = |s: &str| (s.len() == 8).then(|| u32::from_str_radix(s, 16).ok()).flatten();
        let entry = IndexEntry {
            run_id: f[0].parse().ok()?,
            annual_rows: f[1].parse().ok()?,
            annual_crc: hex(f[2])?,
            summary_rows: f[3].parse().ok()?,
            summary_crc: hex(f[4])?,
            runs_crc: hex(f[5])?,
            trace_crc: if f[6].is_empty() { None } else { Some(hex(f[6])?) },
        };
        // Only the canonical form is accepted, so that an edited line cannot pass.
        (entry.line() == line).then_some(entry)
    }
}

/// What a sweep folder's manifest says about its runs.
pub struct Recorded {
    pub ids: IdSeq,
    /// Runs of the whole sweep.
    pub total: u64,
    pub traces: crate::experiment::runner::TraceMode,
    /// The headers of annual.csv, summary.csv and runs.csv that the recorded sweep spec and base scenario
    /// imply: `merge` and `compare` check the files' headers against them.
    pub headers: [String; 3],
}

/// Reads the runs a sweep, shard or merged folder holds from its manifest.
pub fn recorded(dir: &Path, manifest: &serde_json::Value) -> Result<Recorded> {
    let bad = |what: &str| anyhow::anyhow!("{}: its manifest.json {what}", dir.display());
    let total = manifest["total_runs"].as_u64().ok_or_else(|| bad("has no total_runs"))?;
    if total > crate::experiment::spec::MAX_RUNS {
        return Err(bad(&format!("says {total} runs, more than a sweep may have")));
    }
    let shard = match &manifest["shard"] {
        serde_json::Value::Null => None,
        s => match (s["index"].as_u64(), s["count"].as_u64()) {
            (Some(i), Some(n)) if i < n && n <= total.max(1) => Some((i, n)),
            _ => return Err(bad(&format!("has an impossible shard {s}"))),
        },
    };
    let file: crate::experiment::spec::SweepFile = serde_json::from_value(manifest["sweep_spec"].clone())
        .map_err(|e| bad(&format!("has no readable sweep_spec ({e})")))?;
    let base: crate::config::file::ScenarioFile = toml::from_str(manifest["base_scenario"].as_str().unwrap_or(""))
        .map_err(|e| bad(&format!("has no readable base_scenario ({})", cut(&e.to_string()))))?;
    let sweep = crate::experiment::spec::Sweep::new(file, dir.display().to_string(), base);
    if sweep.n_runs() != total {
        return Err(bad(&format!("says {total} runs, its sweep_spec {}", sweep.n_runs())));
    }
    let headers = crate::io::sweep_out::headers(&sweep);
    let traces = manifest["traces"]
        .as_str()
        .unwrap_or("none")
        .parse()
        .map_err(|e: String| anyhow::anyhow!("{}: manifest.json: traces: {e}", dir.display()))?;
    Ok(Recorded { ids: IdSeq::of(total, shard), total, traces, headers })
}

/// Field `col` of a one-line CSV record (e.g. the `status` of a runs.csv row).
pub fn field(line: &str, col: usize) -> Option<String> {
    let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(line.as_bytes());
    r.records().next()?.ok()?.get(col).map(str::to_string)
}

/// The files of a run's trace folder, in the order their checksum covers them.
pub const TRACE_FILES: [&str; 3] = ["trace.csv", "market.csv", "decisions.csv"];

/// CRC-32 of a run's trace files ([`TRACE_FILES`]), as the index records it: each file's length, then its
/// bytes (the lengths keep bytes moved from one file to another from passing).
pub fn trace_crc(files: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for f in files {
        h.update(&(f.len() as u64).to_le_bytes());
        h.update(f);
    }
    h.finalize()
}

/// Reads a run's trace files from its folder `d`.
pub fn read_trace_files(d: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    TRACE_FILES.iter().map(|n| std::fs::read(d.join(n))).collect()
}

/// The checksum of the trace files read by [`read_trace_files`].
pub fn trace_files_crc(files: &[Vec<u8>]) -> u32 {
    trace_crc(&files.iter().map(Vec::as_slice).collect::<Vec<_>>())
}

/// Where a run's trace lives.
pub fn trace_dir(dir: &Path, run_id: u64) -> PathBuf {
    dir.join("traces").join(format!("run-{run_id:06}"))
}

/// A line of a sweep CSV, classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete record with the header's number of fields, starting with a run id.
    Row(u64),
    /// A complete line that is not such a record.
    Malformed(String),
    /// The file's last line, without its newline (a write cut short).
    Torn,
}

/// Number of fields of a one-line CSV record (RFC 4180 quoting), or `None` if its quotes do not close.
fn field_count(line: &str) -> Option<usize> {
    if !line.contains('"') {
        return Some(line.split(',').count());
    }
    let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(line.as_bytes());
    let mut rec = csv::ByteRecord::new();
    match r.read_byte_record(&mut rec) {
        Ok(true) => {
            let mut more = csv::ByteRecord::new();
            match r.read_byte_record(&mut more) {
                Ok(false) => Some(rec.len()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Classifies one line (with its `\n`, if any) of a file whose header has `fields` fields.
pub fn classify(line: &str, fields: usize) -> Line {
    let Some(body) = line.strip_suffix('\n') else {
        return Line::Torn;
    };
    let id = body.split(',').next().and_then(|x| {
        (!x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()) && (x == "0" || !x.starts_with('0')))
            .then(|| x.parse::<u64>().ok())
            .flatten()
    });
    let Some(id) = id else {
        return Line::Malformed("does not start with a run id".into());
    };
    match field_count(body) {
        Some(n) if n == fields => Line::Row(id),
        Some(n) => Line::Malformed(format!("has {n} fields, the header has {fields}")),
        None => Line::Malformed("has an unclosed quote".into()),
    }
}

/// Reads a file line by line (lines keep their `\n`), with their numbers and byte offsets.
struct Lines {
    reader: BufReader<File>,
    path: PathBuf,
    number: usize,
    offset: u64,
}

impl Lines {
    fn open(path: &Path) -> Result<Option<Lines>> {
        match File::open(path) {
            Ok(f) => Ok(Some(Lines {
                reader: BufReader::with_capacity(1 << 16, f),
                path: path.to_path_buf(),
                number: 0,
                offset: 0,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    /// The next line as (number, offset, text); text that is not UTF-8 is replaced lossily.
    fn next_line(&mut self) -> Result<Option<(usize, u64, String)>> {
        let mut buf = Vec::new();
        let n =
            self.reader.read_until(b'\n', &mut buf).with_context(|| format!("cannot read {}", self.path.display()))?;
        if n == 0 {
            return Ok(None);
        }
        self.number += 1;
        let at = self.offset;
        self.offset += n as u64;
        Ok(Some((self.number, at, String::from_utf8_lossy(&buf).into_owned())))
    }
}

/// What a file holds for one run.
#[derive(Clone, Debug, Default)]
struct RunRows {
    rows: u64,
    crc: crc32fast::Hasher,
    first_line: usize,
    last_line: usize,
}

/// The outcome of verifying a sweep folder.
#[derive(Clone, Debug, Default)]
pub struct Check {
    /// Runs committed: the number of positions k (of the folder's id sequence) up to the last index entry.
    pub committed: u64,
    /// Runs with rows in some file, committed or not (≥ `committed`): what a repair must restore.
    pub extent: u64,
    /// Positions k < `extent` whose rows are not exactly what was committed (ascending).
    pub damaged: Vec<u64>,
    /// Every problem found, as `file:line: what` (empty: the folder is intact up to `committed`).
    pub problems: Vec<String>,
    /// Byte length of each of [`SWEEP_FILES`] up to the end of the last committed run: what `--resume`
    /// keeps when the only problem is a torn tail.
    pub keep: [u64; 4],
    /// Whether bytes follow the last committed run in some file (the run in flight at a crash).
    pub torn_tail: bool,
    /// Committed runs whose status is not `ok`.
    pub failed: u64,
    /// Whether any file has a line after its header: if not, there is nothing to lose.
    pub rows_seen: bool,
    /// Folders under `traces/` that no index entry accounts for (a repair removes them).
    pub stray_traces: Vec<PathBuf>,
}

impl Check {
    /// The problems as one message, at most `max` of them listed.
    pub fn describe(&self, dir: &Path, max: usize) -> String {
        let mut s = String::new();
        for p in self.problems.iter().take(max) {
            s.push_str(&format!("\n  {}", p));
        }
        if self.problems.len() > max {
            s.push_str(&format!("\n  … and {} more", self.problems.len() - max));
        }
        format!(
            "{} is damaged ({} problem{}):{s}",
            dir.display(),
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )
    }
}

/// What verification needs to know about the folder.
pub struct Layout<'a> {
    /// The expected headers of annual.csv, summary.csv and runs.csv (each ending in `\n`); `None` takes
    /// the files' own headers (`merge` and `compare`, which have no sweep file).
    pub headers: Option<[&'a str; 3]>,
    pub ids: IdSeq,
    /// Whether run `id` keeps a trace.
    pub traced: &'a (dyn Fn(u64) -> bool + Sync),
}

/// Verifies the sweep files of `dir`. `Err` only for a file that cannot be read at all.
pub fn check(dir: &Path, layout: &Layout) -> Result<Check> {
    let mut c = Check::default();
    let name = |i: usize| SWEEP_FILES[i];
    // 1. The index: which runs are committed, and what each one's rows must be.
    let mut entries: BTreeMap<u64, IndexEntry> = BTreeMap::new();
    let mut index_end = INDEX_HEADER.len() as u64;
    let index_path = dir.join(name(3));
    match Lines::open(&index_path)? {
        None => c.problems.push(format!("{}: missing", name(3))),
        Some(mut lines) => {
            let mut last_k: Option<u64> = None;
            let mut header_ok = false;
            while let Some((n, at, line)) = lines.next_line()? {
                c.rows_seen |= n > 1;
                if n == 1 {
                    header_ok = line == INDEX_HEADER;
                    if !header_ok {
                        c.problems.push(format!("{}:1: not the header of an index ({:?})", name(3), cut(&line)));
                    }
                    continue;
                }
                if !line.ends_with('\n') {
                    c.torn_tail = true;
                    break;
                }
                match IndexEntry::parse(&line).and_then(|e| layout.ids.position(e.run_id).map(|k| (k, e))) {
                    Some((k, e)) if last_k.is_none_or(|l| k > l) => {
                        last_k = Some(k);
                        entries.insert(k, e);
                        index_end = at + line.len() as u64;
                    }
                    Some((_, e)) => c.problems.push(format!("{}:{n}: run {} is out of order", name(3), e.run_id)),
                    None => c.problems.push(format!("{}:{n}: malformed index line {:?}", name(3), cut(&line))),
                }
            }
            if !header_ok && lines.number == 0 {
                c.problems.push(format!("{}: empty (no header)", name(3)));
            }
        }
    }
    c.committed = entries.keys().next_back().map_or(0, |k| k + 1);
    c.keep[3] = index_end;
    let mut damaged = std::collections::BTreeSet::new();
    for k in 0..c.committed {
        if !entries.contains_key(&k) {
            c.problems.push(format!("{}: no entry for run {}", name(3), layout.ids.id(k)));
            damaged.insert(k);
        }
    }

    // 2. The data files: rows grouped by run, checked against the index.
    let mut failed = std::collections::BTreeSet::new();
    let mut extent = c.committed;
    for f in 0..3 {
        let path = dir.join(name(f));
        let Some(mut lines) = Lines::open(&path)? else {
            c.problems.push(format!("{}: missing", name(f)));
            damaged.extend(0..c.committed);
            continue;
        };
        let mut runs: BTreeMap<u64, RunRows> = BTreeMap::new();
        let mut fields = 0;
        let mut last_k: Option<u64> = None;
        let mut keep = 0u64;
        // Problems in lines after the last committed run are only reported if they are not a torn tail.
        let mut tail_problems: Vec<String> = Vec::new();
        while let Some((n, at, line)) = lines.next_line()? {
            if n == 1 {
                let own = line.strip_suffix('\n').unwrap_or(&line);
                fields = field_count(own).unwrap_or(0);
                keep = line.len() as u64;
                if let Some(h) = layout.headers
                    && line != h[f]
                {
                    c.problems.push(format!("{}:1: the header differs from this sweep's columns", name(f)));
                    fields = field_count(h[f].trim_end_matches('\n')).unwrap_or(0);
                }
                continue;
            }
            match classify(&line, fields) {
                Line::Torn => {
                    c.torn_tail = true;
                    tail_problems.push(format!("{}:{n}: the last line is incomplete", name(f)));
                }
                Line::Malformed(why) => tail_problems.push(format!("{}:{n}: {why}: {:?}", name(f), cut(&line))),
                Line::Row(id) => match layout.ids.position(id) {
                    None => {
                        tail_problems.push(format!("{}:{n}: run {id} does not belong to this sweep's runs", name(f)))
                    }
                    Some(k) => {
                        if last_k.is_some_and(|l| k < l) {
                            tail_problems.push(format!(
                                "{}:{n}: a row of run {id} after rows of run {}",
                                name(f),
                                layout.ids.id(last_k.unwrap())
                            ));
                            damaged.insert(k);
                            damaged.insert(last_k.unwrap());
                        }
                        last_k = Some(last_k.map_or(k, |l| l.max(k)));
                        let r = runs.entry(k).or_default();
                        if r.rows == 0 {
                            r.first_line = n;
                        }
                        r.rows += 1;
                        r.last_line = n;
                        r.crc.update(line.as_bytes());
                        extent = extent.max(k + 1);
                        if k < c.committed {
                            // Everything before a committed run's row is committed too: its problems count.
                            c.problems.append(&mut tail_problems);
                            keep = at + line.len() as u64;
                        }
                    }
                },
            }
        }
        if lines.number == 0 {
            c.problems.push(format!("{}: empty (no header)", name(f)));
        }
        c.keep[f] = keep;
        // After the last committed run: at most the rows of the next run, cut short.
        let beyond: Vec<u64> = runs.range(c.committed..).map(|(k, _)| *k).collect();
        if beyond.len() > 1 || beyond.first().is_some_and(|&k| k != c.committed) {
            let ids: Vec<u64> = beyond.iter().map(|&k| layout.ids.id(k)).collect();
            c.problems.push(format!(
                "{}: rows of runs {} follow the last committed run, which only the run in flight at a crash may leave",
                name(f),
                crate::io::merge::ranges(&ids)
            ));
            damaged.extend(beyond.iter().copied());
        }
        if !tail_problems.is_empty() || !beyond.is_empty() {
            c.torn_tail = true;
        }
        c.rows_seen |= lines.number > 1;
        // After the last committed run, a write cut short (the last line) is expected; anything else is damage.
        c.problems.extend(tail_problems.into_iter().filter(|p| !p.ends_with("the last line is incomplete")));
        for (&k, e) in &entries {
            let got = runs.get(&k).cloned().unwrap_or_default();
            let (rows, crc) = match f {
                0 => (e.annual_rows, e.annual_crc),
                1 => (e.summary_rows, e.summary_crc),
                _ => (1, e.runs_crc),
            };
            let id = layout.ids.id(k);
            let at = if got.rows == 0 {
                String::new()
            } else if got.first_line == got.last_line {
                format!(":{}", got.first_line)
            } else {
                format!(":{}-{}", got.first_line, got.last_line)
            };
            if got.rows != rows {
                c.problems.push(format!(
                    "{}{at}: run {id} has {} row{}, the index records {rows}",
                    name(f),
                    got.rows,
                    if got.rows == 1 { "" } else { "s" }
                ));
                damaged.insert(k);
            } else if got.crc.clone().finalize() != crc {
                c.problems.push(format!(
                    "{}{at}: the rows of run {id} differ from what was written (the checksum index.csv holds for them)",
                    name(f)
                ));
                damaged.insert(k);
            }
        }
        if f == 2 {
            failed = failed_runs(&path, &entries, layout, &damaged)?;
            c.failed = failed.len() as u64;
        }
    }

    // 3. Traces of committed runs that keep one.
    for (&k, e) in &entries {
        let id = layout.ids.id(k);
        let want = (layout.traced)(id);
        match (want, e.trace_crc) {
            // A run that did not finish has no trace to keep.
            (false, None) => {}
            (true, None) if failed.contains(&k) => {}
            (false, Some(_)) | (true, None) => {
                c.problems.push(format!("{}: run {id}'s trace entry does not match --traces", name(3)));
                damaged.insert(k);
            }
            (true, Some(crc)) => {
                let d = trace_dir(dir, id);
                match read_trace_files(&d) {
                    Ok(files) if trace_files_crc(&files) == crc => {}
                    Ok(_) => {
                        c.problems.push(format!(
                            "{}: the trace of run {id} differs from what was written (checksum)",
                            d.display()
                        ));
                        damaged.insert(k);
                    }
                    _ => {
                        c.problems.push(format!("{}: the trace of run {id} is missing", d.display()));
                        damaged.insert(k);
                    }
                }
            }
        }
    }
    // Trace folders the index does not account for (a run that keeps none, or not of this sweep).
    if let Ok(list) = std::fs::read_dir(dir.join("traces")) {
        let mut names: Vec<String> = list.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        for n in names.iter().filter(|n| !n.starts_with('.')) {
            let k = n
                .strip_prefix("run-")
                .filter(|x| x.len() >= 6 && x.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|x| x.parse::<u64>().ok())
                .filter(|id| trace_dir(dir, *id).ends_with(n))
                .and_then(|id| layout.ids.position(id).map(|k| (id, k)));
            // A run that keeps a trace may have one, unless the index records that it has none (it failed);
            // a damaged or uncommitted run's trace is replaced when the run is done again.
            let expected = match k {
                Some((id, k)) => (layout.traced)(id) && entries.get(&k).is_none_or(|e| e.trace_crc.is_some()),
                None => false,
            };
            if !expected {
                c.problems.push(format!("traces/{n}: a trace the index does not record"));
                c.stray_traces.push(dir.join("traces").join(n));
            }
        }
    }
    c.extent = extent.max(c.committed);
    if c.extent > c.committed + 1 {
        c.problems.push(format!(
            "{}: {} runs are committed (the last entry is run {}), but the other files hold rows of runs up to {}",
            name(3),
            entries.len(),
            c.committed.checked_sub(1).map_or("none".into(), |k| layout.ids.id(k).to_string()),
            layout.ids.id(c.extent - 1)
        ));
    }
    // Rows after the last committed run were never verified: a repair does those runs again too.
    damaged.extend(c.committed..c.extent);
    c.damaged = damaged.into_iter().filter(|&k| k < c.extent).collect();
    Ok(c)
}

/// Committed, undamaged runs of runs.csv whose status is not `ok` (their positions).
fn failed_runs(
    path: &Path,
    entries: &BTreeMap<u64, IndexEntry>,
    layout: &Layout,
    damaged: &std::collections::BTreeSet<u64>,
) -> Result<std::collections::BTreeSet<u64>> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let Some(status) = r.headers().ok().and_then(|h| h.iter().position(|x| x == "status")) else {
        return Ok(Default::default());
    };
    let mut n = std::collections::BTreeSet::new();
    for rec in r.records().flatten() {
        let k = rec.get(0).and_then(|x| x.parse().ok()).and_then(|id| layout.ids.position(id));
        if let Some(k) = k
            && entries.contains_key(&k)
            && !damaged.contains(&k)
            && rec.get(status) != Some("ok")
        {
            n.insert(k);
        }
    }
    Ok(n)
}

/// A line or message as echoed in a problem: without its newline, at most 200 characters.
fn cut(s: &str) -> String {
    crate::config::validate::shorten(s.trim_end_matches('\n'))
}

/// Reads the rows of chosen runs back from a sweep CSV, in order, skipping everything else (malformed
/// lines, rows of damaged runs). Used to copy verified runs when a folder is repaired or merged.
pub struct RowReader {
    lines: Lines,
    fields: usize,
    ids: IdSeq,
    peeked: Option<(u64, String)>,
    pub header: String,
}

impl RowReader {
    /// Opens a file; `fields` is the number of fields of its rows (default: its header's).
    pub fn open(path: &Path, ids: IdSeq, fields: Option<usize>) -> Result<RowReader> {
        let mut lines = Lines::open(path)?.with_context(|| format!("{} is missing", path.display()))?;
        let header = lines.next_line()?.map(|(_, _, l)| l).unwrap_or_default();
        let fields = fields.unwrap_or_else(|| field_count(header.trim_end_matches('\n')).unwrap_or(0));
        Ok(RowReader { lines, fields, ids, peeked: None, header })
    }
    /// Appends the well-formed rows of run `id` (which must be asked for in increasing order) to `out`.
    pub fn take(&mut self, id: u64, out: &mut String) -> Result<()> {
        let want = self.ids.position(id);
        loop {
            if self.peeked.is_none() {
                let Some((_, _, line)) = self.lines.next_line()? else { return Ok(()) };
                if let Line::Row(rid) = classify(&line, self.fields) {
                    self.peeked = Some((rid, line));
                }
                continue;
            }
            let (rid, _) = self.peeked.as_ref().unwrap();
            let k = self.ids.position(*rid);
            match (k, want) {
                (Some(k), Some(w)) if k == w => out.push_str(&self.peeked.take().unwrap().1),
                (Some(k), Some(w)) if k > w => return Ok(()),
                _ => {
                    self.peeked = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_classified() {
        assert_eq!(classify("3,a,b\n", 3), Line::Row(3));
        assert_eq!(classify("3,\"a,x\",b\n", 3), Line::Row(3));
        assert_eq!(classify("3,a\n", 3), Line::Malformed("has 2 fields, the header has 3".into()));
        assert!(matches!(classify("#3,a,b\n", 3), Line::Malformed(_)));
        assert!(matches!(classify("03,a,b\n", 3), Line::Malformed(_)));
        assert!(matches!(classify("3,\"a,b\n", 3), Line::Malformed(_)));
        assert_eq!(classify("3,a,b", 3), Line::Torn);
    }

    #[test]
    fn index_lines_round_trip_and_reject_edits() {
        let e = IndexEntry::of(7, "7,a\n7,b\n", "7,s\n", "7,r\n", Some(5));
        let line = e.line();
        assert_eq!(IndexEntry::parse(&line), Some(e.clone()));
        assert_eq!(e.annual_rows, 2);
        // Not canonical: upper-case hex, a missing newline, a padded number.
        let f = IndexEntry { run_id: 1, runs_crc: 0xabcd_ef01, ..Default::default() };
        assert!(IndexEntry::parse(&f.line()).is_some());
        assert!(IndexEntry::parse(&f.line().replace("abcdef01", "ABCDEF01")).is_none());
        assert!(IndexEntry::parse(line.trim_end()).is_none());
        assert!(IndexEntry::parse(&line.replacen("7,", "07,", 1)).is_none());
    }

    #[test]
    fn id_sequences_locate_shard_runs() {
        let s = IdSeq { offset: 1, stride: 3, count: 3 };
        assert_eq!((s.id(0), s.id(2)), (1, 7));
        assert_eq!(s.position(4), Some(1));
        assert_eq!(s.position(5), None);
        assert_eq!(s.position(0), None);
        assert_eq!(s.position(10), None);
    }
}
