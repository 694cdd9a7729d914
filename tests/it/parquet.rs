//! Parquet outputs (`--format parquet`): the same columns and values as the CSV of the same run, typed;
//! byte-identical for any thread count; a sweep's row groups hold whole runs, and a sweep, its shards
//! merged, and a sweep run with another job count give the same Parquet bytes; `--force` keeps them.

use super::support::*;
use arrow_array::{Array, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, cast::AsArray};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::Path;

/// The batches of a Parquet file, its number of row groups and its schema (from the file's metadata, so
/// that an empty table has one too).
fn read_parquet_schema(path: &Path) -> (Vec<RecordBatch>, usize, arrow_schema::SchemaRef) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let groups = builder.metadata().num_row_groups();
    let schema = builder.schema().clone();
    let batches = builder.build().unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    (batches, groups, schema)
}

/// The batches of a Parquet file and its number of row groups.
fn read_parquet(path: &Path) -> (Vec<RecordBatch>, usize) {
    let (batches, groups, _) = read_parquet_schema(path);
    (batches, groups)
}

/// A Parquet value as the CSV writes it, for comparison (floats are compared as numbers by the caller).
fn cell(col: &dyn Array, i: usize) -> Option<String> {
    if col.is_null(i) {
        return None;
    }
    Some(match col.data_type() {
        DataType::Int64 => col.as_any().downcast_ref::<Int64Array>().unwrap().value(i).to_string(),
        DataType::Float64 => col.as_any().downcast_ref::<Float64Array>().unwrap().value(i).to_string(),
        DataType::Boolean => col.as_any().downcast_ref::<BooleanArray>().unwrap().value(i).to_string(),
        DataType::Date32 => col.as_any().downcast_ref::<Date32Array>().unwrap().value_as_date(i).unwrap().to_string(),
        DataType::Utf8 => col.as_string::<i32>().value(i).to_string(),
        other => panic!("unexpected type {other}"),
    })
}

/// Asserts that a Parquet file holds the CSV file's header, rows and values; returns its row groups.
fn assert_same_table(csv: &Path, parquet: &Path) -> usize {
    let mut reader = csv::Reader::from_path(csv).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let (batches, groups, schema) = read_parquet_schema(parquet);
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, header, "{}: columns", parquet.display());
    let mut k = 0;
    for b in &batches {
        for i in 0..b.num_rows() {
            for (c, name) in header.iter().enumerate() {
                let col = b.column(c);
                let want = &rows[k][c];
                let got = cell(col.as_ref(), i);
                let same = match (&got, col.data_type()) {
                    (None, _) => want.is_empty(),
                    (Some(g), DataType::Float64) => g.parse::<f64>().unwrap() == want.parse::<f64>().unwrap(),
                    (Some(g), _) => g == want,
                };
                assert!(same, "{} row {k} column {name}: Parquet {got:?}, CSV {want:?}", parquet.display());
            }
            k += 1;
        }
    }
    assert_eq!(k, rows.len(), "{}: rows", parquet.display());
    groups
}

#[test]
fn a_parquet_run_holds_the_values_of_the_csv_run() {
    let csv_dir = tempfile::tempdir().unwrap();
    let pq = tempfile::tempdir().unwrap();
    let pq2 = tempfile::tempdir().unwrap();
    // 12,000 users: three batches, so that 2 threads really split the pass.
    run_tiny(csv_dir.path(), &["--threads", "1", "--agents", "12000"]);
    run_tiny(pq.path(), &["--threads", "1", "--agents", "12000", "--format", "parquet"]);
    run_tiny(pq2.path(), &["--threads", "2", "--agents", "12000", "--format", "parquet"]);
    for f in CSVS {
        let p = f.replace(".csv", ".parquet");
        assert!(!pq.path().join(f).exists(), "a Parquet run writes no {f}");
        let groups = assert_same_table(&csv_dir.path().join(f), &pq.path().join(&p));
        assert!(groups <= 1, "{p}: one short run, one row group (got {groups})");
        assert_eq!(read(pq.path(), &p), read(pq2.path(), &p), "{p} differs between 1 and 2 threads");
    }
    // The manifest records the Parquet files' rows and checksums.
    let m: serde_json::Value = serde_json::from_slice(&read(pq.path(), "manifest.json")).unwrap();
    assert_eq!(m["format"], "parquet");
    let trace_rows = csv::Reader::from_path(csv_dir.path().join("trace.csv")).unwrap().records().count();
    assert_eq!(m["checksums"]["trace.parquet"]["rows"], trace_rows as u64);
    // Dates are dates, money is float64, counts are int64.
    let (batches, _) = read_parquet(&pq.path().join("trace.parquet"));
    let schema = batches[0].schema();
    assert_eq!(schema.field_with_name("date").unwrap().data_type(), &DataType::Date32);
    assert_eq!(schema.field_with_name("cash_usd").unwrap().data_type(), &DataType::Float64);
    assert_eq!(schema.field_with_name("users").unwrap().data_type(), &DataType::Int64);
    assert_eq!(schema.field_with_name("alive").unwrap().data_type(), &DataType::Boolean);
    // compare reads CSV folders and says so about a Parquet one.
    let o = llm(&["compare", pq.path().to_str().unwrap(), "--out", pq2.path().join("cmp").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--format parquet"), "{}", stderr(&o));
}

#[test]
fn a_parquet_sweep_has_whole_runs_in_row_groups_and_the_same_bytes_when_sharded_and_merged() {
    let base = tempfile::tempdir().unwrap();
    let sweep = root().join("tests/data/sweep_tiny.toml");
    let sweep = sweep.to_str().unwrap();
    let dir = |name: &str| base.path().join(name).to_str().unwrap().to_string();
    let ok = |o: std::process::Output| assert!(o.status.success(), "{}", stderr(&o));
    ok(llm(&["sweep", sweep, "--out", &dir("whole"), "--jobs", "2", "--traces", "sample:2", "--format", "parquet"]));
    ok(llm(&["sweep", sweep, "--out", &dir("one"), "--jobs", "1", "--traces", "sample:2", "--format", "parquet"]));
    for k in 0..2 {
        let shard = format!("{k}/2");
        ok(llm(&["sweep", sweep, "--out", &dir(&format!("s{k}")), "--shard", &shard, "--traces", "sample:2"]));
    }
    ok(llm(&["merge", &dir("s0"), &dir("s1"), "--out", &dir("merged"), "--format", "parquet"]));
    let whole = base.path().join("whole");
    for t in ["runs", "annual", "summary"] {
        let groups = assert_same_table(&whole.join(format!("{t}.csv")), &whole.join(format!("{t}.parquet")));
        assert_eq!(groups, 1, "{t}.parquet: 8 short runs in one row group (src/io/parquet.rs has the boundary test)");
        let p = format!("{t}.parquet");
        assert_eq!(read(&whole, &p), read(&base.path().join("one"), &p), "{p}: jobs 2 vs 1");
        assert_eq!(read(&whole, &p), read(&base.path().join("merged"), &p), "{p}: merged shards");
    }
    // The parameter columns of runs.parquet are typed from their values.
    let (batches, _) = read_parquet(&whole.join("runs.parquet"));
    let schema = batches[0].schema();
    assert_eq!(schema.field_with_name("firms.lab.brand").unwrap().data_type(), &DataType::Float64);
    assert_eq!(schema.field_with_name("status").unwrap().data_type(), &DataType::Utf8);
    // Kept traces get Parquet copies too, equal to their CSVs.
    let traces: Vec<_> = std::fs::read_dir(whole.join("traces")).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(traces.len(), 2);
    for t in &traces {
        for f in ["trace", "market", "decisions"] {
            assert_same_table(&t.join(format!("{f}.csv")), &t.join(format!("{f}.parquet")));
        }
    }
    // The sweep's CSV journal still verifies: a resume of the finished sweep changes nothing; a resume in
    // another format is refused, and --force moves the Parquet files aside with the rest.
    let before = read(&whole, "runs.parquet");
    ok(llm(&["sweep", sweep, "--out", &dir("whole"), "--resume", "--traces", "sample:2", "--format", "parquet"]));
    assert_eq!(read(&whole, "runs.parquet"), before);
    let o = llm(&["sweep", sweep, "--out", &dir("whole"), "--resume", "--traces", "sample:2"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--format (parquet → csv)"), "{}", stderr(&o));
    ok(llm(&["sweep", sweep, "--out", &dir("whole"), "--force", "--traces", "sample:2"]));
    assert!(!whole.join("runs.parquet").exists(), "a CSV sweep with --force leaves no stale Parquet file");
    let backup =
        std::fs::read_dir(&whole).unwrap().flatten().find(|e| e.file_name().to_string_lossy().starts_with("backup-"));
    assert_eq!(read(&backup.expect("a backup folder").path(), "runs.parquet"), before, "moved aside, not lost");
}
