//! Determinism: the same scenario and seed give byte-identical CSVs whatever the thread count; another
//! seed gives other results.

use super::support::*;

#[test]
fn same_seed_same_bytes_for_one_and_two_threads() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    run_tiny(a.path(), &["--threads", "1"]);
    run_tiny(b.path(), &["--threads", "2"]);
    run_tiny(c.path(), &["--threads", "2"]);
    for f in CSVS {
        assert_eq!(read(a.path(), f), read(b.path(), f), "{f} differs between 1 and 2 threads");
        assert_eq!(read(b.path(), f), read(c.path(), f), "{f} differs between two identical runs");
    }
}

#[test]
fn another_seed_gives_other_results() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    run_tiny(a.path(), &[]);
    run_tiny(b.path(), &["--seed", "8"]);
    assert_ne!(read(a.path(), "trace.csv"), read(b.path(), "trace.csv"));
    assert_ne!(read(a.path(), "summary.csv"), read(b.path(), "summary.csv"));
}
