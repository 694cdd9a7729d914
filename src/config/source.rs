//! Reading scenario files: `extends` chains, merging, `--set` overrides, and finding the line of a key path.
//!
//! A scenario may `extends = "other.toml"`: tables merge key by key, arrays of tables whose elements carry an
//! `id` (firms, events, training programmes) merge element by element on that id, and any other value is
//! replaced. Problems are reported with the file, the key path and the line of the file that set the value.

use super::{Problem, file::ScenarioFile, validate};
use std::path::{Path, PathBuf};

/// The baseline scenario, compiled into the binary (same bytes as `configs/baseline.toml`).
pub const EMBEDDED_BASELINE: &str = include_str!("../../configs/baseline.toml");
/// How the embedded baseline is named in messages and manifests.
pub const EMBEDDED_NAME: &str = "configs/baseline.toml (embedded)";

/// One file of an `extends` chain, kept for locating lines.
#[derive(Debug)]
pub struct SourceFile {
    pub display: String,
    pub text: String,
    doc: Option<toml_edit::Document<String>>,
}

/// The chain of files behind a scenario, most derived first, and their merged table.
#[derive(Debug)]
pub struct Sources {
    pub files: Vec<SourceFile>,
    pub merged: toml::Table,
}

/// One segment of a key path: `firms[2].api_price_usd_per_mtok` is Key, Index, Key.
#[derive(Clone, Debug, PartialEq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// The value at a `--set` key path of a scenario document (`firms.openai.brand`, `firms[2].brand`,
/// `orgs.population`), if there is one.
pub fn lookup<'a>(root: &'a toml::Value, path: &str) -> Option<&'a toml::Value> {
    let mut node = root;
    for seg in resolve_set_path(root, path)? {
        node = match seg {
            Seg::Key(k) => node.get(k.as_str())?,
            Seg::Index(i) => node.get(i)?,
        };
    }
    Some(node)
}

/// Parses `a.b[2].c` (also `a.b.2.c`) into segments.
pub fn parse_path(path: &str) -> Option<Vec<Seg>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        if part.is_empty() {
            return None;
        }
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            match name.parse::<usize>() {
                Ok(i) => out.push(Seg::Index(i)),
                Err(_) => out.push(Seg::Key(name.to_string())),
            }
        }
        while !rest.is_empty() {
            let close = rest.find(']')?;
            out.push(Seg::Index(rest[1..close].parse().ok()?));
            rest = &rest[close + 1..];
        }
    }
    Some(out)
}

/// Formats segments back as `a.b[2].c`.
pub fn format_path(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k)
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// The largest input file read (scenario, `extends`, sweep): 16 MiB.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// What kind of file system object `m` is, in words.
fn file_kind(m: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Whether an IO error is "too many levels of symbolic links" (ELOOP).
fn is_symlink_loop(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(40)
}

/// Reads an input file as text, only when it is a regular file of at most [`MAX_INPUT_BYTES`]: metadata
/// is checked first (a FIFO is never opened: opening one blocks), and the read stops one byte past the
/// limit in case the file grows meanwhile. `Err` is a sentence about the file, without its name.
pub fn read_input_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| {
        if is_symlink_loop(&e) { "is a symbolic link loop".to_string() } else { format!("cannot read the file: {e}") }
    })?;
    if !meta.is_file() {
        return Err(format!("is not a regular file ({})", file_kind(&meta)));
    }
    let too_big = |n: u64| {
        format!(
            "is {:.1} MiB; input files are limited to {} MiB",
            n as f64 / (1u64 << 20) as f64,
            MAX_INPUT_BYTES >> 20
        )
    };
    if meta.len() > MAX_INPUT_BYTES {
        return Err(too_big(meta.len()));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    String::from_utf8(bytes)
        .map_err(|e| format!("cannot read the file: not UTF-8 text (at byte {})", e.utf8_error().valid_up_to()))
}

/// Keys with no sensible default, missing from a merged scenario table: (path, why it is needed). The
/// table is the merge of the whole `extends` chain, so a key inherited from a parent is present.
pub fn missing_keys(merged: &toml::Value) -> Vec<(Vec<Seg>, &'static str)> {
    let mut out = Vec::new();
    let tables = |key: &str| -> Vec<(usize, &toml::Table)> {
        merged
            .get(key)
            .and_then(|v| v.as_array())
            .map(|a| a.iter().enumerate().filter_map(|(i, v)| v.as_table().map(|t| (i, t))).collect())
            .unwrap_or_default()
    };
    let need = |out: &mut Vec<(Vec<Seg>, &'static str)>, t: &toml::Table, at: Vec<Seg>, k: &str, why| {
        if !t.contains_key(k) {
            let mut segs = at;
            segs.push(Seg::Key(k.into()));
            out.push((segs, why));
        }
    };
    for (i, f) in tables("firms") {
        let at = || vec![Seg::Key("firms".into()), Seg::Index(i)];
        need(&mut out, f, at(), "id", "every firm needs an id");
        need(&mut out, f, at(), "launch", "every firm needs a launch date");
        // Arrays of tables inside a firm, with the keys each element needs.
        let nested: [(&str, &[(&str, &'static str)]); 2] = [
            (
                "training",
                &[
                    ("start", "every training programme needs a start date"),
                    ("months", "every training programme needs a duration in months"),
                    ("cost_usd", "every training programme needs a cost"),
                ],
            ),
            ("tiers", &[("name", "every tier needs a name"), ("release", "every tier needs a release date")]),
        ];
        for (array, keys) in nested {
            let Some(items) = f.get(array).and_then(|v| v.as_array()) else { continue };
            for (j, t) in items.iter().enumerate().filter_map(|(j, v)| v.as_table().map(|t| (j, t))) {
                for (k, why) in keys {
                    let mut segs = at();
                    segs.extend([Seg::Key(array.into()), Seg::Index(j)]);
                    need(&mut out, t, segs, k, why);
                }
            }
        }
    }
    for (i, e) in tables("events") {
        let at = || vec![Seg::Key("events".into()), Seg::Index(i)];
        need(&mut out, e, at(), "id", "every event needs an id");
        need(&mut out, e, at(), "date", "every event needs a date");
        need(&mut out, e, at(), "kind", "every event needs a kind");
    }
    out
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// A scenario given as text rather than a file (the library API, the Python package): a diff over the
/// embedded baseline unless it names `extends`, which is then resolved against `dir`.
#[derive(Clone, Debug)]
pub struct TextSource {
    pub text: String,
    /// How messages name it (e.g. `<string>`).
    pub name: String,
    /// Where an `extends` path starts from.
    pub dir: PathBuf,
}

impl Sources {
    /// Loads `path` (or the embedded baseline when `None`) and every file it extends.
    pub fn load(path: Option<&Path>) -> Result<Sources, Vec<Problem>> {
        Self::load_chain(path, None)
    }

    /// Loads a scenario given as text, and every file it extends (the embedded baseline when none).
    pub fn load_text(source: &TextSource) -> Result<Sources, Vec<Problem>> {
        Self::load_chain(None, Some(source))
    }

    fn load_chain(path: Option<&Path>, text_source: Option<&TextSource>) -> Result<Sources, Vec<Problem>> {
        let mut files = Vec::new();
        let mut tables = Vec::new();
        // (file, text of a source that is no file, its name).
        let mut next: Option<(Option<PathBuf>, String)> = match (path, text_source) {
            (_, Some(t)) => Some((None, t.text.clone())),
            (None, None) => Some((None, EMBEDDED_BASELINE.to_string())),
            (Some(p), None) => Some((Some(p.to_path_buf()), String::new())),
        };
        let mut seen: Vec<(Option<PathBuf>, String)> = Vec::new();
        while let Some((p, embedded_text)) = next.take() {
            // The given text comes first; what it extends, or the embedded baseline, after it.
            let is_text = files.is_empty() && text_source.is_some();
            let display = match (&p, text_source) {
                (Some(p), _) => p.display().to_string(),
                (None, Some(t)) if is_text => t.name.clone(),
                (None, _) => EMBEDDED_NAME.to_string(),
            };
            // A file met twice is a cycle: name the files that form it.
            let identity = p.as_ref().map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()));
            if let Some(first) = seen.iter().position(|(id, _)| id.is_some() && *id == identity) {
                let chain: Vec<&str> =
                    seen[first..].iter().map(|(_, d)| d.as_str()).chain([display.as_str()]).collect();
                let last = &seen[seen.len() - 1].1;
                let mut pr = Problem::in_file(last, format!("`extends` forms a cycle: {}", chain.join(" → ")));
                pr.path = Some("extends".into());
                pr.line = files
                    .last()
                    .and_then(|f: &SourceFile| f.line_of_path(&[Seg::Key("extends".into())], &toml::Table::new()));
                return Err(vec![pr]);
            }
            seen.push((identity, display.clone()));
            if files.len() >= 8 {
                return Err(vec![Problem::in_file(&display, "`extends` chain is longer than 8 files")]);
            }
            let text = match &p {
                None => embedded_text,
                Some(p) => read_input_file(p).map_err(|e| vec![Problem::in_file(&display, e)])?,
            };
            let mut table: toml::Table = match toml::from_str(&text) {
                Ok(t) => t,
                Err(e) => {
                    let line = e.span().map(|s| line_of(&text, s.start));
                    let msg = e.message().trim().to_string();
                    return Err(vec![Problem {
                        file: Some(display),
                        path: None,
                        line,
                        message: format!("malformed TOML: {msg}"),
                    }]);
                }
            };
            let doc = toml_edit::Document::parse(text.clone()).ok();
            let extends = table.remove("extends");
            files.push(SourceFile { display: display.clone(), text, doc });
            tables.push(table);
            if is_text && extends.is_none() {
                next = Some((None, EMBEDDED_BASELINE.to_string()));
            }
            if let Some(ext) = extends {
                let Some(ext) = ext.as_str() else {
                    let mut pr = Problem::in_file(&display, "`extends` must be a string (a path)");
                    pr.path = Some("extends".into());
                    return Err(vec![pr]);
                };
                let base_dir = match (&p, text_source) {
                    (None, Some(t)) if is_text => t.dir.clone(),
                    _ => p.as_ref().and_then(|p| p.parent()).map(Path::to_path_buf).unwrap_or_else(|| "configs".into()),
                };
                let target = base_dir.join(ext);
                let missing = match std::fs::metadata(&target) {
                    Ok(m) if !m.is_file() => Some(format!("is not a regular file ({})", file_kind(&m))),
                    Ok(_) => None,
                    Err(e) if is_symlink_loop(&e) => Some("is a symbolic link loop".into()),
                    Err(_) if std::fs::symlink_metadata(&target).is_ok() => {
                        Some("is a symbolic link to nothing".into())
                    }
                    Err(_) => Some("does not exist".into()),
                };
                if (p.is_some() || is_text)
                    && let Some(why) = missing
                {
                    let mut pr = Problem::in_file(
                        &display,
                        format!("`extends` names {} which {why}", validate::shorten(&target.display().to_string())),
                    );
                    pr.path = Some("extends".into());
                    pr.line = files
                        .last()
                        .and_then(|f: &SourceFile| f.line_of_path(&[Seg::Key("extends".into())], &toml::Table::new()));
                    return Err(vec![pr]);
                }
                next = Some((Some(target), String::new()));
            }
        }
        let mut merged = toml::Table::new();
        for t in tables.into_iter().rev() {
            merge_table(&mut merged, t);
        }
        Ok(Sources { files, merged })
    }

    /// Where a key path was set: the most derived file that has it, and its line.
    pub fn locate(&self, segs: &[Seg]) -> (Option<String>, Option<usize>) {
        for f in &self.files {
            if let Some(line) = f.line_of_path(segs, &self.merged) {
                return (Some(f.display.clone()), Some(line));
            }
        }
        // Fall back to the longest prefix that some file has (e.g. the table missing a key).
        for len in (1..segs.len()).rev() {
            for f in &self.files {
                if let Some(line) = f.line_of_path(&segs[..len], &self.merged) {
                    return (Some(f.display.clone()), Some(line));
                }
            }
        }
        (self.files.first().map(|f| f.display.clone()), None)
    }

    /// Attaches file and line to problems that have a key path.
    pub fn annotate(&self, problems: &mut [Problem]) {
        for p in problems.iter_mut() {
            if p.file.is_none() {
                if let Some(segs) = p.path.as_deref().and_then(parse_path) {
                    let (file, line) = self.locate(&segs);
                    p.file = file;
                    p.line = p.line.or(line);
                } else {
                    p.file = self.files.first().map(|f| f.display.clone());
                }
            }
        }
    }
}

impl SourceFile {
    /// The line where this file sets `segs`, translating array indices of the merged document to ids.
    fn line_of_path(&self, segs: &[Seg], merged: &toml::Table) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let mut node = Node::Table(doc.as_table());
        let mut merged_node: Option<&toml::Value> = None;
        let mut merged_table = Some(merged);
        for seg in segs {
            let (next, next_merged) = match seg {
                Seg::Key(k) => {
                    let m = match (merged_node, merged_table) {
                        (Some(v), _) => v.get(k.as_str()),
                        (None, Some(t)) => t.get(k.as_str()),
                        _ => None,
                    };
                    (node.key(k)?, m)
                }
                Seg::Index(i) => {
                    let m = merged_node.and_then(|v| v.get(*i));
                    let id = m.and_then(|v| v.get("id")).and_then(|v| v.as_str());
                    (node.index(*i, id)?, m)
                }
            };
            node = next;
            merged_node = next_merged;
            merged_table = None;
        }
        node.span().map(|s| line_of(&self.text, s.start))
    }
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a toml_edit::Table),
    Item(&'a toml_edit::Item),
    Value(&'a toml_edit::Value),
}

impl<'a> Node<'a> {
    fn key(self, k: &str) -> Option<Node<'a>> {
        match self {
            Node::Table(t) => t.get(k).map(Node::Item),
            Node::Item(toml_edit::Item::Table(t)) => t.get(k).map(Node::Item),
            Node::Item(toml_edit::Item::Value(toml_edit::Value::InlineTable(t)))
            | Node::Value(toml_edit::Value::InlineTable(t)) => t.get(k).map(Node::Value),
            _ => None,
        }
    }

    /// Element `i` of an array; when the merged element has an `id`, the element with that id instead.
    fn index(self, i: usize, id: Option<&str>) -> Option<Node<'a>> {
        match self {
            Node::Item(toml_edit::Item::ArrayOfTables(a)) => match id {
                Some(id) => a.iter().find(|t| t.get("id").and_then(|v| v.as_str()) == Some(id)).map(Node::Table),
                None => a.get(i).map(Node::Table),
            },
            Node::Item(toml_edit::Item::Value(toml_edit::Value::Array(a)))
            | Node::Value(toml_edit::Value::Array(a)) => match id {
                Some(id) => a
                    .iter()
                    .find(|v| v.as_inline_table().and_then(|t| t.get("id")).and_then(|v| v.as_str()) == Some(id))
                    .map(Node::Value),
                None => a.get(i).map(Node::Value),
            },
            _ => None,
        }
    }

    fn span(self) -> Option<std::ops::Range<usize>> {
        match self {
            Node::Table(t) => t.span(),
            Node::Item(i) => i.span(),
            Node::Value(v) => v.span(),
        }
    }
}

fn element_id(v: &toml::Value) -> Option<&str> {
    v.get("id").and_then(|x| x.as_str())
}

/// Merges `overlay` into `base`: tables recursively, arrays of tables with ids element by element.
pub fn merge_table(base: &mut toml::Table, overlay: toml::Table) {
    for (k, v) in overlay {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_table(b, o),
            (Some(toml::Value::Array(b)), toml::Value::Array(o))
                if !o.is_empty()
                    && o.iter().all(|x| element_id(x).is_some())
                    && b.iter().all(|x| element_id(x).is_some()) =>
            {
                for item in o {
                    let id = element_id(&item).unwrap().to_string();
                    match b.iter_mut().find(|x| element_id(x) == Some(id.as_str())) {
                        Some(toml::Value::Table(bt)) => {
                            if let toml::Value::Table(ot) = item {
                                merge_table(bt, ot)
                            }
                        }
                        _ => b.push(item),
                    }
                }
            }
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Resolves a `--set` path against a fully populated value: array elements may be named by index
/// (`firms[0]`, `firms.0`) or by id (`firms.openai`). A key absent from `root` is accepted when the schema
/// has it (an optional key such as `firms[1].chat_launch`). Returns the canonical segments, or `None`.
pub fn resolve_set_path(root: &toml::Value, raw: &str) -> Option<Vec<Seg>> {
    let schema = schema_example();
    let segs = parse_path(raw)?;
    let mut out = Vec::new();
    let (mut node, mut shape) = (Some(root), &schema);
    for seg in segs {
        match (shape, seg) {
            (toml::Value::Table(st), Seg::Key(k)) => {
                shape = st.get(&k)?;
                node = node.and_then(|n| n.get(&k));
                out.push(Seg::Key(k));
            }
            (toml::Value::Array(sa), seg) => {
                shape = sa.first()?;
                let a = node?.as_array()?;
                let i = match seg {
                    Seg::Index(i) => i,
                    Seg::Key(id) => a.iter().position(|x| element_id(x) == Some(id.as_str()))?,
                };
                node = Some(a.get(i)?);
                out.push(Seg::Index(i));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Sets the value at canonical `segs` (from [`resolve_set_path`]), creating absent optional tables.
pub fn set_at(root: &mut toml::Value, segs: &[Seg], value: toml::Value) {
    let mut node = root;
    for seg in segs {
        node = match (node, seg) {
            (toml::Value::Table(t), Seg::Key(k)) => {
                t.entry(k.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()))
            }
            (toml::Value::Array(a), Seg::Index(i)) => &mut a[*i],
            _ => unreachable!("set_at follows a path resolved by resolve_set_path"),
        };
    }
    *node = value;
}

/// Like [`set_at`], but a table value is merged into a table already there (as `extends` merges), so that
/// the keys it leaves out keep their values instead of falling back to the defaults.
pub fn merge_at(root: &mut toml::Value, segs: &[Seg], value: toml::Value) {
    let mut node = &mut *root;
    for seg in segs {
        let next = match (node, seg) {
            (toml::Value::Table(t), Seg::Key(k)) => t.get_mut(k),
            (toml::Value::Array(a), Seg::Index(i)) => a.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return set_at(root, segs, value),
        }
    }
    match (node, value) {
        (toml::Value::Table(base), toml::Value::Table(overlay)) => merge_table(base, overlay),
        (node, value) => *node = value,
    }
}

/// Parses the right-hand side of `--set key=value` as a TOML value (numbers, booleans, dates, arrays,
/// quoted strings); anything that is not valid TOML is taken as a bare string.
pub fn parse_set_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

/// Keys present in `value` but not in `schema` (a fully populated example), with their paths.
pub fn unknown_keys(value: &toml::Value, schema: &toml::Value, prefix: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match (value, schema) {
        (toml::Value::Table(t), toml::Value::Table(s)) => {
            for (k, v) in t {
                prefix.push(Seg::Key(k.clone()));
                match s.get(k) {
                    None => out.push(prefix.clone()),
                    Some(sv) => unknown_keys(v, sv, prefix, out),
                }
                prefix.pop();
            }
        }
        (toml::Value::Array(a), toml::Value::Array(s)) if !s.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                prefix.push(Seg::Index(i));
                unknown_keys(v, &s[0], prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

/// A scenario with every optional part present, used as the schema for unknown-key detection.
pub fn schema_example() -> toml::Value {
    use super::file::*;
    let mut s = ScenarioFile { record_every: Some(crate::model::calendar::Period::Day), ..Default::default() };
    s.firms = vec![FirmFile {
        chat_launch: Some(DateValue::default()),
        catch_up: Some(CatchUpFile::default()),
        training: vec![TrainingFile::default()],
        tiers: vec![TierFile::default()],
        ..Default::default()
    }];
    s.events = vec![EventFile {
        firm: Some(String::new()),
        amount_usd: Some(0.0),
        compute_share: Some(0.0),
        quality_jump_elo: Some(0.0),
        sub_price_usd_per_month: Some(0.0),
        api_price_usd_per_mtok: Some(0.0),
        seat_price_usd_per_month: Some(0.0),
        free_tier: Some(true),
        strength: Some(0.0),
        api_price_factor: Some(0.0),
        org_trust_add: Some(0.0),
        self_hostable: Some(true),
        key: Some(String::new()),
        value: Some(toml::Value::Float(0.0)),
        ..Default::default()
    }];
    toml::Value::try_from(&s).expect("the schema example serialises")
}

/// Converts a serde_path_to_error path into segments.
pub fn serde_path_segments(path: &serde_path_to_error::Path) -> Vec<Seg> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(Seg::Index(*index)),
            Segment::Map { key } => Some(Seg::Key(key.clone())),
            Segment::Enum { variant } => Some(Seg::Key(variant.clone())),
            Segment::Unknown => None,
        })
        .collect()
}

/// Deserialises a merged table into a [`ScenarioFile`], or the first structural problem with its path.
pub fn deserialize(value: toml::Value) -> Result<ScenarioFile, (Vec<Seg>, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let segs = serde_path_segments(e.path());
        let msg = e.into_inner().message().trim().to_string();
        (segs, msg)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_both_ways() {
        let segs = parse_path("firms[2].api_price_usd_per_mtok").unwrap();
        assert_eq!(segs, vec![Seg::Key("firms".into()), Seg::Index(2), Seg::Key("api_price_usd_per_mtok".into())]);
        assert_eq!(format_path(&segs), "firms[2].api_price_usd_per_mtok");
        assert_eq!(
            parse_path("firms.2.x").unwrap(),
            segs[..2].iter().cloned().chain([Seg::Key("x".into())]).collect::<Vec<_>>()
        );
        assert!(parse_path("a..b").is_none());
    }

    #[test]
    fn merge_by_id_and_replace_scalars() {
        let mut base: toml::Table = toml::from_str("x = 1\n[[firms]]\nid='a'\np=1\n[[firms]]\nid='b'\np=2\n").unwrap();
        let over: toml::Table = toml::from_str("x = 2\n[[firms]]\nid='b'\np=3\n[[firms]]\nid='c'\np=4\n").unwrap();
        merge_table(&mut base, over);
        assert_eq!(base["x"].as_integer(), Some(2));
        let firms = base["firms"].as_array().unwrap();
        assert_eq!(firms.len(), 3);
        assert_eq!(firms[1]["p"].as_integer(), Some(3));
        assert_eq!(firms[2]["id"].as_str(), Some("c"));
    }

    #[test]
    fn set_paths_resolve_ids() {
        let v: toml::Value = toml::from_str("[[firms]]\nid='a'\nbrand=1.0\n[[firms]]\nid='b'\nbrand=2.0\n").unwrap();
        assert_eq!(format_path(&resolve_set_path(&v, "firms.b.brand").unwrap()), "firms[1].brand");
        assert!(resolve_set_path(&v, "firms.z.brand").is_none());
        assert!(resolve_set_path(&v, "firms[0].q").is_none());
        // Optional keys absent from the value exist in the schema.
        assert_eq!(
            format_path(&resolve_set_path(&v, "firms.a.catch_up.tau_months").unwrap()),
            "firms[0].catch_up.tau_months"
        );
        let mut w = v.clone();
        set_at(&mut w, &resolve_set_path(&v, "firms.a.catch_up.tau_months").unwrap(), toml::Value::Float(3.0));
        assert_eq!(w["firms"][0]["catch_up"]["tau_months"].as_float(), Some(3.0));
        assert_eq!(parse_set_value("2.5").as_float(), Some(2.5));
        assert_eq!(parse_set_value("true").as_bool(), Some(true));
        assert_eq!(parse_set_value("week").as_str(), Some("week"));
    }
}
