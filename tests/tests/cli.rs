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

/// Runs `bin` with `args`: (exit code, stdout, stderr).
fn run(bin: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(binary(bin))
        .args(args)
        .env_remove("VIA6_SOCKET")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_subcommand_has_help() {
    let cases: &[(&str, &[&str], &str)] = &[
        ("via6d", &["--help"], "check"),
        ("via6d", &["check", "--help"], "Validate"),
        ("via6d", &["man", "--help"], "manual"),
        ("via6ctl", &["--help"], "neighbors"),
        ("via6ctl", &["neighbors", "--help"], "Sessions"),
        ("via6ctl", &["status", "--help"], "warnings"),
        ("via6ctl", &["routes", "--help"], "--limit"),
        ("via6ctl", &["fib", "--help"], "kernel"),
        ("via6ctl", &["neighbor", "--help"], "refresh"),
        ("via6ctl", &["mrt", "stats", "--help"], "MRT"),
        ("via6ctl", &["completions", "--help"], "fish"),
        ("via6ctl", &["man", "--help"], "manual"),
    ];
    for (bin, args, want) in cases {
        let (code, out, err) = run(bin, args);
        assert_eq!(code, Some(0), "{bin} {args:?}: {err}");
        assert!(out.contains(want), "{bin} {args:?} lacks {want:?}: {out}");
    }
    let (code, out, _) = run("via6d", &["--version"]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("via6d "), "{out}");
}

#[test]
fn usage_errors_exit_2_and_say_why() {
    let cases: &[(&str, &[&str], &str)] = &[
        ("via6d", &[], "Usage"),
        ("via6d", &["check"], "<FILE>"),
        ("via6d", &["--config"], "--config"),
        ("via6ctl", &[], "Usage"),
        ("via6ctl", &["routes", "nope"], "\"nope\" is not a prefix"),
        ("via6ctl", &["routes", "--limit", "x"], "--limit"),
        (
            "via6ctl",
            &["routes", "--all", "--limit", "5"],
            "cannot be used",
        ),
        (
            "via6ctl",
            &["neighbor", "fe80::zz%eth0", "reset"],
            "is not an IP address",
        ),
        ("via6ctl", &["neighbor", "fe80::1%eth0", "bounce"], "bounce"),
        ("via6ctl", &["completions", "tcsh"], "tcsh"),
        ("via6ctl", &["mrt", "stats"], "<FILE>"),
    ];
    for (bin, args, want) in cases {
        let (code, out, err) = run(bin, args);
        assert_eq!(code, Some(2), "{bin} {args:?}: {out}{err}");
        assert!(
            err.contains(want) || out.contains(want),
            "{bin} {args:?} lacks {want:?}: {out}{err}"
        );
    }
}

#[test]
fn the_old_spellings_still_work() {
    let sock = "/nonexistent/via6d.sock";
    for args in [
        vec!["--socket", sock, "--json", "neighbours"],
        vec![
            &format!("--socket={sock}"),
            "-j",
            "routes",
            "10.0.0.0/8",
            "--all",
        ],
        vec!["-s", sock, "routes", "--limit", "5"],
        vec!["--socket", sock, "neighbour", "fe80::1%eth0", "refresh"],
        vec!["fib", "--socket", sock],
    ] {
        let args: Vec<&str> = args.iter().map(|s| &**s).collect();
        let (code, _, err) = run("via6ctl", &args);
        // Parsed: only the missing daemon fails it.
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains("cannot connect"), "{args:?}: {err}");
    }
    let (code, _, _) = run("via6d", &[&format!("--config={}", "/nonexistent.yaml")]);
    assert_eq!(code, Some(2));
    let (code, _, _) = run("via6d", &["-c", "/nonexistent.yaml"]);
    assert_eq!(code, Some(2));
}

#[test]
fn via6d_and_via6ctl_agree_on_the_control_socket() {
    // A config without `control-socket:` binds the compiled-in default;
    // via6ctl without --socket or $VIA6_SOCKET asks the same path.
    let path = write_config("default-socket.yaml", GOOD);
    let (code, out, err) = run("via6d", &["check", &path.to_string_lossy()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("control socket /run/via6d/via6d.sock"),
        "{out}"
    );
    let (code, _, err) = run("via6ctl", &["neighbors"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("control socket /run/via6d/via6d.sock: cannot connect"),
        "{err}"
    );
}

#[test]
fn completions_and_man_page() {
    for (shell, want) in [
        ("bash", "complete -F _via6ctl"),
        ("zsh", "#compdef via6ctl"),
        ("fish", "complete -c via6ctl"),
    ] {
        let (code, out, err) = run("via6ctl", &["completions", shell]);
        assert_eq!(code, Some(0), "{shell}: {err}");
        assert!(out.contains(want), "{shell}: {out}");
        assert!(
            out.contains("neighbors") && out.contains("socket"),
            "{shell}"
        );
        for cmd in ["announce", "withdraw", "watch", "community"] {
            assert!(out.contains(cmd), "{shell}: no {cmd}");
        }
    }
    let (code, out, _) = run("via6ctl", &["man"]);
    assert_eq!(code, Some(0));
    assert!(out.contains(".TH via6ctl 1"), "{out}");
    assert!(
        out.contains("completions") && out.contains("VIA6_SOCKET"),
        "{out}"
    );
    // via6d's page is of section 8 (system administration), where the
    // Debian package puts it.
    let (code, out, err) = run("via6d", &["man"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(".TH via6d 8"), "{out}");
    assert!(
        out.contains("check") && out.contains("\\-\\-config"),
        "{out}"
    );
}
