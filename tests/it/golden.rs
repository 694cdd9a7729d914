//! Golden files: the tiny scenario's CSVs are committed under tests/golden/tiny/. After an intended change
//! of behaviour, regenerate them with `UPDATE_GOLDEN=1 cargo test golden` (that run fails on purpose, so
//! the variable is never left on) and review the diff.

use super::support::*;

#[test]
fn tiny_scenario_matches_golden_files() {
    let dir = tempfile::tempdir().unwrap();
    run_tiny(dir.path(), &["--threads", "2"]);
    let golden = root().join("tests/golden/tiny");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(&golden).unwrap();
        for f in CSVS {
            std::fs::write(golden.join(f), read(dir.path(), f)).unwrap();
        }
        panic!("golden files updated in {}; rerun without UPDATE_GOLDEN", golden.display());
    }
    for f in CSVS {
        let want = read(&golden, f);
        let got = read(dir.path(), f);
        if want != got {
            let (w, g) = (String::from_utf8_lossy(&want), String::from_utf8_lossy(&got));
            let first = w.lines().zip(g.lines()).position(|(a, b)| a != b).unwrap_or(0);
            panic!(
                "{f} differs from the golden file (first at line {}):\n  want: {}\n  got:  {}",
                first + 1,
                w.lines().nth(first).unwrap_or(""),
                g.lines().nth(first).unwrap_or("")
            );
        }
    }
}
