//! Parquet copies of the CSV tables (`--format parquet`, the Python package): the same columns in the same
//! order, typed — counts, ids, ticks and years as int64, money (every `*_usd` column, US dollars) and other
//! quantities as float64, dates as date32, yes/no columns as bool, names and reasons as UTF-8 strings, an
//! empty CSV field as null. A Parquet file is always made from the CSV bytes of the same table, so the two
//! hold equal values and the Parquet bytes are as deterministic as the CSV bytes: row groups of whole runs
//! (a sweep's tables hold many runs; see [`GROUP_ROWS`]), Snappy compression, `created_by = "llm-market"`,
//! no time stamps.
//! The type of a column comes from its name ([`column_type`]); only a sweep's parameter columns (between
//! `seed` and `status` in runs.csv) are typed from their values (every number as float64).

use anyhow::{Context, Result, bail};
use arrow_array::builder::{BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use std::io::{Read, Write};
use std::sync::Arc;

pub use crate::experiment::runner::Format;

/// The Arrow type of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    Int,
    Float,
    Bool,
    Date,
    Text,
}

impl ColumnType {
    fn arrow(self) -> DataType {
        match self {
            ColumnType::Int => DataType::Int64,
            ColumnType::Float => DataType::Float64,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Date => DataType::Date32,
            ColumnType::Text => DataType::Utf8,
        }
    }
}

/// Columns holding counts, ids, ticks and years (a runs.csv column `<firm>_<name>` too).
const INT_COLUMNS: [&str; 28] = [
    "run_id",
    "point_id",
    "replicate",
    "seed",
    "tick",
    "year",
    "users",
    "api_orgs",
    "seats",
    "queries",
    "tokens",
    "visits",
    "gpus",
    "gpus_on_order",
    "tokens_demanded",
    "tokens_served",
    "tokens_rationed",
    "waitlist",
    "rationed_users",
    "population",
    "non_users",
    "orgs_adopted",
    "orgs_banning_chat",
    "peak_users",
    "end_users",
    "avg_users",
    "end_paying_users",
    "first_year",
];
/// Columns holding names, reasons and messages.
const TEXT_COLUMNS: [&str; 8] = ["firm", "kind", "decision", "reason", "figures", "exit_reason", "status", "error"];
/// Yes/no columns.
const BOOL_COLUMNS: [&str; 3] = ["alive", "bankrupt", "alive_at_year_end"];

/// The type of an output column, from its name; every column the tool writes has one
/// (`io::parquet::tests` and `tests/it/parquet.rs` check the tables of a run and a sweep).
pub fn column_type(name: &str) -> ColumnType {
    let is = |list: &[&str]| list.iter().any(|c| name == *c || name.ends_with(&format!("_{c}")));
    if name == "date" || name.ends_with("_date") {
        ColumnType::Date
    } else if name.ends_with("_usd") || name.contains("_usd_") {
        ColumnType::Float
    } else if is(&TEXT_COLUMNS) {
        ColumnType::Text
    } else if is(&BOOL_COLUMNS) || name.contains("bankrupt_by_") {
        ColumnType::Bool
    } else if is(&INT_COLUMNS) {
        ColumnType::Int
    } else {
        ColumnType::Float
    }
}

/// The type that fits every value of a parameter column: float (every number, so that a parameter has one
/// type whatever values a design or a shard gives it), bool, date, else text (float when empty).
fn infer(values: &[&str]) -> ColumnType {
    let all = |f: &dyn Fn(&str) -> bool| values.iter().filter(|v| !v.is_empty()).all(|v| f(v));
    if values.iter().all(|v| v.is_empty()) || all(&|v| v.parse::<f64>().is_ok()) {
        ColumnType::Float
    } else if all(&|v| v == "true" || v == "false") {
        ColumnType::Bool
    } else if all(&|v| NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok()) {
        ColumnType::Date
    } else {
        ColumnType::Text
    }
}

/// The types of a table's columns: by name, except runs.csv's parameter columns (between `seed` and
/// `status`), typed from `values` (every row's fields).
fn schema_of(header: &[String], params: &std::ops::Range<usize>, param_types: &[ColumnType]) -> Vec<ColumnType> {
    header
        .iter()
        .enumerate()
        .map(|(i, name)| if params.contains(&i) { param_types[i - params.start] } else { column_type(name) })
        .collect()
}

/// The parameter columns of a runs.csv header: strictly between `seed` and `status` (empty elsewhere).
fn parameter_range(header: &[String]) -> std::ops::Range<usize> {
    let seed = header.iter().position(|h| h == "seed");
    let status = header.iter().position(|h| h == "status");
    match (seed, status) {
        (Some(a), Some(b)) if a < b => a + 1..b,
        _ => 0..0,
    }
}

enum Builder {
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Text(StringBuilder),
}

impl Builder {
    fn new(t: ColumnType) -> Builder {
        match t {
            ColumnType::Int => Builder::Int(Int64Builder::new()),
            ColumnType::Float => Builder::Float(Float64Builder::new()),
            ColumnType::Bool => Builder::Bool(BooleanBuilder::new()),
            ColumnType::Date => Builder::Date(Date32Builder::new()),
            ColumnType::Text => Builder::Text(StringBuilder::new()),
        }
    }

    fn push(&mut self, v: &str) -> Result<(), String> {
        let bad = |what: &str| format!("{v:?} is not {what}");
        if v.is_empty() {
            match self {
                Builder::Int(b) => b.append_null(),
                Builder::Float(b) => b.append_null(),
                Builder::Bool(b) => b.append_null(),
                Builder::Date(b) => b.append_null(),
                Builder::Text(b) => b.append_null(),
            }
            return Ok(());
        }
        match self {
            Builder::Int(b) => b.append_value(v.parse().map_err(|_| bad("an integer"))?),
            Builder::Float(b) => b.append_value(v.parse().map_err(|_| bad("a number"))?),
            Builder::Bool(b) => b.append_value(match v {
                "true" => true,
                "false" => false,
                _ => return Err(bad("true or false")),
            }),
            Builder::Date(b) => {
                let d = NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| bad("a date (YYYY-MM-DD)"))?;
                let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
                b.append_value((d - epoch).num_days() as i32)
            }
            Builder::Text(b) => b.append_value(v),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Text(b) => Arc::new(b.finish()),
        }
    }
}

/// Rows per record batch (the batches of a row group).
const BATCH_ROWS: usize = 65_536;
/// A row group ends at the first run boundary after this many rows: whole runs in every group, and few
/// groups for a sweep of many short runs (a group per run would make the footer of a 10^5-run sweep huge).
pub const GROUP_ROWS: usize = 65_536;

/// Writes the CSV table that `open` reads (it is read twice: once to type parameter columns, once to
/// convert) as Parquet to `out`, and returns `out` with the number of rows. A row group holds whole runs
/// (consecutive rows with the same `run_id`): a new one starts at the first run boundary after
/// [`GROUP_ROWS`] rows, so the groups depend only on the table, not on how it was computed. `name` names
/// the table in messages.
pub fn csv_to_parquet<'a, W: Write + Send>(
    name: &str,
    open: &dyn Fn() -> Result<Box<dyn Read + 'a>>,
    out: W,
) -> Result<(W, u64)> {
    csv_to_parquet_grouped(name, open, out, GROUP_ROWS)
}

fn csv_to_parquet_grouped<'a, W: Write + Send>(
    name: &str,
    open: &dyn Fn() -> Result<Box<dyn Read + 'a>>,
    out: W,
    group_rows: usize,
) -> Result<(W, u64)> {
    let header: Vec<String> = {
        let mut r = csv::Reader::from_reader(open()?);
        r.headers().with_context(|| format!("cannot read the header of {name}"))?.iter().map(String::from).collect()
    };
    let params = parameter_range(&header);
    let param_types = if params.is_empty() {
        Vec::new()
    } else {
        let mut values: Vec<Vec<String>> = vec![Vec::new(); params.len()];
        for rec in csv::Reader::from_reader(open()?).into_records() {
            let rec = rec.with_context(|| format!("cannot read {name}"))?;
            for (k, i) in params.clone().enumerate() {
                values[k].push(rec.get(i).unwrap_or("").to_string());
            }
        }
        values.iter().map(|v| infer(&v.iter().map(String::as_str).collect::<Vec<_>>())).collect()
    };
    let types = schema_of(&header, &params, &param_types);
    let schema = Arc::new(Schema::new(
        header.iter().zip(&types).map(|(h, t)| Field::new(h, t.arrow(), true)).collect::<Vec<_>>(),
    ));
    let props = WriterProperties::builder()
        .set_created_by("llm-market".into())
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(None)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .build();
    let mut writer = ArrowWriter::try_new(out, schema.clone(), Some(props))?;
    let run_col = header.iter().position(|h| h == "run_id");
    let mut builders: Vec<Builder> = types.iter().map(|t| Builder::new(*t)).collect();
    let (mut in_batch, mut in_group, mut rows, mut current_run) = (0usize, 0usize, 0u64, None::<String>);
    let write_batch = |builders: &mut Vec<Builder>, writer: &mut ArrowWriter<W>| -> Result<()> {
        let columns: Vec<ArrayRef> = builders.iter_mut().map(Builder::finish).collect();
        writer.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
        Ok(())
    };
    for (line, rec) in csv::Reader::from_reader(open()?).into_records().enumerate() {
        let rec = rec.with_context(|| format!("cannot read {name}"))?;
        let run = run_col.and_then(|i| rec.get(i)).map(String::from);
        if in_group >= group_rows && run != current_run {
            if in_batch > 0 {
                write_batch(&mut builders, &mut writer)?;
            }
            writer.flush()?;
            (in_batch, in_group) = (0, 0);
        } else if in_batch >= BATCH_ROWS {
            write_batch(&mut builders, &mut writer)?;
            in_batch = 0;
        }
        current_run = run;
        if rec.len() != header.len() {
            bail!("{name} line {}: {} fields, the header has {}", line + 2, rec.len(), header.len());
        }
        for (i, (b, v)) in builders.iter_mut().zip(rec.iter()).enumerate() {
            b.push(v).map_err(|e| anyhow::anyhow!("{name} line {}, column {}: {e}", line + 2, header[i]))?;
        }
        in_batch += 1;
        in_group += 1;
        rows += 1;
    }
    if in_batch > 0 {
        write_batch(&mut builders, &mut writer)?;
    }
    Ok((writer.into_inner()?, rows))
}

/// [`csv_to_parquet`] of CSV bytes in memory.
pub fn csv_bytes_to_parquet(name: &str, csv: &[u8]) -> Result<Vec<u8>> {
    Ok(csv_to_parquet(name, &|| Ok(Box::new(csv)), Vec::new())?.0)
}

/// [`csv_to_parquet`] of a CSV file into a Parquet file beside it (`x.csv` → `x.parquet`), written
/// atomically; returns the new file's path and rows.
pub fn convert_file(csv: &std::path::Path) -> Result<(std::path::PathBuf, u64)> {
    let target = csv.with_extension("parquet");
    let open = || -> Result<Box<dyn Read>> {
        let f = std::fs::File::open(csv).with_context(|| format!("cannot read {}", csv.display()))?;
        Ok(Box::new(std::io::BufReader::with_capacity(1 << 20, f)))
    };
    let (bytes, rows) = csv_to_parquet(&csv.display().to_string(), &open, Vec::new())?;
    super::sweep_out::write_atomic(&target, bytes)?;
    Ok((target, rows))
}

/// Writes the Parquet copies of a sweep folder's tables (runs, annual, summary) and of every kept trace
/// (`traces/run-<id>/`), each from its CSV file, which stays: the CSV files are the sweep's journal (what
/// `--resume`, `--repair`, `merge` and `compare` verify), the Parquet files are derived from them once every
/// run is committed, and written again, to the same bytes, by a later `--resume` or `merge`. Returns the
/// table files written (relative to `dir`).
pub fn convert_sweep_folder(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    use super::sweep_check::{SWEEP_FILES, TRACE_FILES};
    let mut written = Vec::new();
    for name in SWEEP_FILES.iter().filter(|n| **n != "index.csv") {
        written.push(convert_file(&dir.join(name))?.0);
    }
    if let Ok(list) = std::fs::read_dir(dir.join("traces")) {
        let mut runs: Vec<std::path::PathBuf> =
            list.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("run-")).map(|e| e.path()).collect();
        runs.sort();
        for run in runs {
            for name in TRACE_FILES {
                written.push(convert_file(&run.join(name))?.0);
            }
        }
    }
    Ok(written.into_iter().map(|p| p.strip_prefix(dir).map(|p| p.to_path_buf()).unwrap_or(p)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_typed_by_name() {
        assert_eq!(column_type("date"), ColumnType::Date);
        assert_eq!(column_type("openai_exit_date"), ColumnType::Date);
        assert_eq!(column_type("cash_usd"), ColumnType::Float);
        assert_eq!(column_type("price_api_usd_per_mtok"), ColumnType::Float);
        assert_eq!(column_type("openai_end_users"), ColumnType::Int);
        assert_eq!(column_type("year_revenue_1B_first_year"), ColumnType::Int);
        assert_eq!(column_type("openai_bankrupt"), ColumnType::Bool);
        assert_eq!(column_type("exit_reason"), ColumnType::Text);
        assert_eq!(column_type("end_hhi"), ColumnType::Float);
        assert_eq!(column_type("utilisation"), ColumnType::Float);
    }

    #[test]
    fn parameters_are_typed_by_their_values() {
        assert_eq!(infer(&["1", "", "3"]), ColumnType::Float);
        assert_eq!(infer(&["1", "2.5"]), ColumnType::Float);
        assert_eq!(infer(&["true", "false"]), ColumnType::Bool);
        assert_eq!(infer(&["2024-01-31"]), ColumnType::Date);
        assert_eq!(infer(&["scripted", "decided"]), ColumnType::Text);
        assert_eq!(infer(&["", ""]), ColumnType::Float);
    }

    #[test]
    fn a_table_round_trips_with_whole_runs_in_each_row_group() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let csv = "run_id,point_id,replicate,seed,firms.a.mode,x,status,error,a_end_users,a_exit_date,a_bankrupt\n\
                   0,0,0,7,scripted,1.5,ok,,10,,false\n\
                   0,0,0,7,scripted,2,ok,,11,2024-01-02,true\n\
                   1,0,1,8,decided,3,failed,boom,,,\n";
        // Groups of at least one row end at run boundaries: runs 0 (2 rows) and 1 apart.
        let (bytes, _) = csv_to_parquet_grouped("runs.csv", &|| Ok(Box::new(csv.as_bytes())), Vec::new(), 1).unwrap();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        let reader = SerializedFileReader::new(file).unwrap();
        let meta = reader.metadata();
        assert_eq!(meta.num_row_groups(), 2, "whole runs in each row group");
        assert_eq!(meta.file_metadata().num_rows(), 3);
        assert_eq!(meta.file_metadata().created_by(), Some("llm-market"));
        let schema = parquet::arrow::parquet_to_arrow_schema(meta.file_metadata().schema_descr(), None).unwrap();
        let types: Vec<_> = schema.fields().iter().map(|f| f.data_type().clone()).collect();
        use DataType::*;
        assert_eq!(types, vec![Int64, Int64, Int64, Int64, Utf8, Float64, Utf8, Utf8, Int64, Date32, Boolean]);
        let again = csv_to_parquet_grouped("runs.csv", &|| Ok(Box::new(csv.as_bytes())), Vec::new(), 1).unwrap().0;
        assert_eq!(again, bytes, "the same bytes again");
        // With the default group size the three rows are one group.
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&csv_bytes_to_parquet("runs.csv", csv.as_bytes()).unwrap()).unwrap();
        assert_eq!(SerializedFileReader::new(file).unwrap().metadata().num_row_groups(), 1);
        let bad = "run_id,users\n0,1.5\n";
        let e = csv_bytes_to_parquet("trace.csv", bad.as_bytes()).unwrap_err().to_string();
        assert_eq!(e, "trace.csv line 2, column users: \"1.5\" is not an integer");
    }
}
