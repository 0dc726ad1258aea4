//! `wire::mrt::stats` must count exactly what Debian's `bgpdump -m` prints
//! (one line per A, W, STATE and B) on every file of the shared MRT data
//! set. Needs the `bgpdump` package (CI installs it) and the data set in
//! `../shared/data/mrt` next to the project, or in `$VIA6_MRT_DATA`.
//!
//! Run with `--release --nocapture` to see per-file counts and timings.

use std::path::{Path, PathBuf};

mod common;
use std::process::Command;
use std::time::Instant;

use wire::mrt::{stats, MrtStats};

/// Counts of `bgpdump -m FILE` output lines by their third field.
fn bgpdump_counts(path: &Path) -> MrtStats {
    let out = Command::new("bgpdump")
        .arg("-m")
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run bgpdump ({e}); install the Debian package `bgpdump`")
        });
    assert!(
        out.status.success(),
        "bgpdump -m {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut s = MrtStats::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        match line.split('|').nth(2) {
            Some("A") => s.announced += 1,
            Some("W") => s.withdrawn += 1,
            Some("STATE") => s.state_changes += 1,
            Some("B") => s.rib_entries += 1,
            other => panic!("unexpected bgpdump line kind {other:?}: {line}"),
        }
    }
    s
}

#[test]
fn stats_equal_bgpdump_on_every_shared_file() {
    let dir = common::mrt_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("MRT data set missing at {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no MRT files in {}", dir.display());

    let mut mismatches = Vec::new();
    for path in &files {
        let expected = bgpdump_counts(path);
        let started = Instant::now();
        let got = stats(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let elapsed = started.elapsed();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        eprintln!(
            "{name}: {} in {:.1} ms",
            got.to_json(),
            elapsed.as_secs_f64() * 1e3
        );
        let ours = MrtStats { records: 0, ..got };
        if ours != expected {
            mismatches.push(format!("{name}: ours {ours:?}, bgpdump {expected:?}"));
        }
        assert!(got.records > 0, "{name}: no records read");
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
