//! What ships in `config/`: every example passes `via6d check`, and the
//! systemd unit verifies and agrees with the binaries (capabilities,
//! control socket directory).

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::binary;

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
}

fn unit_text() -> String {
    let path = config_dir().join("via6d.service");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The value of `Key=` in the unit (the last one, as systemd reads it).
fn unit_value(text: &str, key: &str) -> String {
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("the unit has no {key}="))
        .to_string()
}

/// `via6d check FILE`: (exit code, stdout, stderr).
fn check(file: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(binary("via6d"))
        .arg("check")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every file in `config/` but the unit: a new example is checked
/// without anyone listing it here.
fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(config_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|e| e != "service"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_config_passes_check() {
    let files = examples();
    assert!(
        files.len() >= 4,
        "expected the examples in config/: {files:?}"
    );
    for f in &files {
        let (code, out, err) = check(f);
        assert_eq!(code, Some(0), "{}: {out}{err}", f.display());
        assert!(out.contains(": ok ("), "{}: {out}", f.display());
    }
}

#[test]
fn examples_keep_the_control_socket_where_the_unit_can_write() {
    let dir = format!("/run/{}/", unit_value(&unit_text(), "RuntimeDirectory"));
    for f in examples() {
        let (_, out, _) = check(&f);
        let socket = out
            .split("control socket ")
            .nth(1)
            .and_then(|s| s.strip_suffix(")\n"))
            .unwrap_or_else(|| panic!("{}: no control socket in {out:?}", f.display()));
        assert!(
            socket.starts_with(&dir),
            "{}: control socket {socket} is outside {dir}, which the unit cannot write",
            f.display()
        );
    }
}

#[test]
fn the_unit_grants_what_interface_peering_needs() {
    let text = unit_text();
    for key in ["CapabilityBoundingSet", "AmbientCapabilities"] {
        let caps = unit_value(&text, key);
        for cap in ["CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"] {
            assert!(
                caps.split_whitespace().any(|c| c == cap),
                "{key}={caps} lacks {cap}"
            );
        }
    }
    assert!(text.contains("ExecStartPre=/usr/local/bin/via6d check "));
}

#[test]
fn the_unit_verifies() {
    let found = Command::new("systemd-analyze").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "systemd-analyze is missing: install Debian's `systemd` package (scripts/test-all does)"
    );
    // verify insists that ExecStart= exists: point it at the built binary.
    let dir = std::env::temp_dir().join(format!("via6-e2e-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unit = dir.join("via6d.service");
    let via6d = binary("via6d");
    std::fs::write(
        &unit,
        unit_text().replace("/usr/local/bin/via6d", &via6d.to_string_lossy()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {err}");
    // Unknown keys and bad values are only warnings to systemd: none here.
    assert!(err.trim().is_empty(), "systemd-analyze verify: {err}");
}
