//! Damaged MRT files built from the shared data set: cut plain streams, cut
//! gzip files and a corrupted record. The error must name the offset of the
//! bad record, and the counts of the records before it must equal what
//! `bgpdump -m` prints for the same damaged file (bgpdump also stops there).

use std::io::Read;
use std::path::{Path, PathBuf};

mod common;
use std::process::Command;

use flate2::read::MultiGzDecoder;
use wire::mrt::{stats, stats_partial, MrtError, MrtReader, MrtStats};

const UPDATES: &str = "updates.20160811.1600.gz";

fn data_file(name: &str) -> PathBuf {
    let path = common::mrt_dir().join(name);
    assert!(
        path.is_file(),
        "MRT data file missing: {} (VIA6_MRT_DATA names the directory)",
        path.display()
    );
    path
}

fn gunzip(path: &Path) -> Vec<u8> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    MultiGzDecoder::new(file)
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    out
}

/// A file in the temp directory, removed when dropped (also on panic).
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, bytes: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!("via6-mrt-{}-{tag}", std::process::id()));
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Start offsets of the records of an MRT stream, walking the length fields.
fn record_starts(bytes: &[u8]) -> Vec<u64> {
    let mut starts = Vec::new();
    let mut at = 0usize;
    while let Some(len) = bytes.get(at + 8..at + 12) {
        starts.push(at as u64);
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        at += 12 + len;
    }
    starts
}

fn bgpdump_counts(path: &Path) -> MrtStats {
    let out = Command::new("bgpdump")
        .arg("-m")
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run bgpdump ({e}); install the Debian package `bgpdump`")
        });
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

fn without_records(s: MrtStats) -> MrtStats {
    MrtStats { records: 0, ..s }
}

#[test]
fn plain_file_reads_like_the_gzip_one() {
    let gz = data_file(UPDATES);
    let plain = TempFile::new("plain.mrt", &gunzip(&gz));
    let a = stats(&gz).unwrap_or_else(|e| panic!("{e}"));
    let b = stats(&plain.0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a, b);
    assert_eq!(a.records as usize, record_starts(&gunzip(&gz)).len());
}

#[test]
fn cut_plain_stream_reports_the_cut_record() {
    let bytes = gunzip(&data_file(UPDATES));
    let starts = record_starts(&bytes);
    // Cut 5 bytes into the body of a record in the middle of the file.
    let victim = starts.len() / 2;
    let at = starts[victim];
    let cut = TempFile::new("cut.mrt", &bytes[..at as usize + 17]);

    let (partial, err) = stats_partial(&cut.0);
    match err {
        Some(MrtError::Truncated {
            offset, available, ..
        }) => {
            assert_eq!(offset, at);
            assert_eq!(available, 17);
        }
        other => panic!("expected a truncated record at {at}, got {other:?}"),
    }
    assert_eq!(partial.records as usize, victim);
    assert_eq!(without_records(partial), bgpdump_counts(&cut.0));
    assert!(stats(&cut.0).is_err());
}

#[test]
fn cut_gzip_file_counts_what_was_decompressed() {
    let gz = data_file(UPDATES);
    let compressed = std::fs::read(&gz).unwrap_or_else(|e| panic!("{e}"));
    let cut = TempFile::new("cut.gz", &compressed[..compressed.len() / 2]);
    let full = stats(&gz).unwrap_or_else(|e| panic!("{e}"));

    let (partial, err) = stats_partial(&cut.0);
    let err = err.unwrap_or_else(|| panic!("a cut gzip file must not read cleanly"));
    let offset = err.offset().unwrap_or_else(|| panic!("no offset in {err}"));
    assert!(err.to_string().contains(&offset.to_string()), "{err}");
    // The error is about the first record not read, so it starts exactly
    // where the counted records end.
    let starts = record_starts(&gunzip(&gz));
    assert_eq!(starts.get(partial.records as usize), Some(&offset));
    assert!(partial.records > 0 && partial.records < full.records);
    assert_eq!(without_records(partial), bgpdump_counts(&cut.0));
}

#[test]
fn corrupt_record_stops_stats_and_reading_continues() {
    let mut bytes = gunzip(&data_file(UPDATES));
    let starts = record_starts(&bytes);
    let victim = starts.len() / 3;
    let at = starts[victim] as usize;
    // Address family of the BGP4MP_MESSAGE_AS4 record (12 + 4 + 4 + 2): 7.
    bytes[at + 22] = 0;
    bytes[at + 23] = 7;
    let file = TempFile::new("corrupt.mrt", &bytes);

    let (partial, err) = stats_partial(&file.0);
    match &err {
        Some(MrtError::Corrupt {
            offset,
            mrt_type: 16,
            reason,
            ..
        }) => {
            assert_eq!(*offset, at as u64);
            assert!(reason.contains("address family 7"), "{reason}");
        }
        other => panic!("expected a corrupt record at {at}, got {other:?}"),
    }
    assert_eq!(partial.records as usize, victim);

    // The iterator itself goes on past a record whose framing is intact.
    let reader = MrtReader::open_gz(&file.0).unwrap_or_else(|e| panic!("{e}"));
    let (ok, bad) = reader.fold((0usize, 0usize), |(ok, bad), r| match r {
        Ok(_) => (ok + 1, bad),
        Err(_) => (ok, bad + 1),
    });
    assert_eq!((ok, bad), (starts.len() - 1, 1));
}

#[test]
fn missing_file_is_an_open_error() {
    let (s, err) = stats_partial(Path::new("/nonexistent/via6/updates.gz"));
    assert!(matches!(err, Some(MrtError::Open { .. })), "{err:?}");
    assert_eq!(s, MrtStats::default());
}
