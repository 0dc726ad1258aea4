//! The command-line contract: exit codes and error messages that name the
//! file, line and key.

use std::process::Command;

use e2e::binary;

fn write_config(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("via6-e2e-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const GOOD: &str = "router-id: 192.0.2.2\nasn: 65002\nneighbors:\n  - address: fe80::1%eth0\n    remote-as: 65001\n";

#[test]
fn check_accepts_a_good_config() {
    let path = write_config("good.yaml", GOOD);
    let out = Command::new(binary("via6d"))
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (1 neighbors"));
}

#[test]
fn check_names_line_and_key_and_exits_2() {
    let path = write_config("typo.yaml", &GOOD.replace("remote-as", "remote-asn"));
    let out = Command::new(binary("via6d"))
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("typo.yaml:5:"), "{err}");
    assert!(err.contains("remote-asn"), "{err}");
}

#[test]
fn run_refuses_a_bad_config_with_exit_2() {
    let path = write_config("bad.yaml", &GOOD.replace("65002", "not-a-number"));
    let out = Command::new(binary("via6d"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml:2:"));
}

#[test]
fn bad_usage_exits_2() {
    let out = Command::new(binary("via6d"))
        .arg("--frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(binary("via6ctl"))
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn via6ctl_without_daemon_fails_clearly() {
    let out = Command::new(binary("via6ctl"))
        .args(["--socket", "/nonexistent/via6d.sock", "neighbors"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
}

#[test]
fn check_refuses_a_passive_neighbor_when_listening_is_off() {
    let text = format!("{GOOD}    passive: true\nlisten: none\n");
    let path = write_config("passive.yaml", &text);
    let out = Command::new(binary("via6d"))
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "passive.yaml:6: neighbors[0].passive: passive neighbor fe80::1%eth0 can never connect"
        ),
        "{err}"
    );
    // The same file without `listen: none` listens on [::]:179 and is fine.
    let path = write_config("passive-ok.yaml", &text.replace("listen: none\n", ""));
    let out = Command::new(binary("via6d"))
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("listening on [::]:179"));
}
