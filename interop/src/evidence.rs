//! What a failed scenario prints: every host's kernel routes and
//! addresses, every BIRD's protocols and routes, every via6d's neighbours,
//! routes and FIB, and the tail of each daemon's log.

use std::fmt::Write as _;
use std::process::Command;

use crate::exec;
use crate::lab::{DaemonKind, Lab};

/// Lines of each daemon log kept in the evidence.
const LOG_TAIL: usize = 120;

fn show(out: &mut String, title: &str, r: crate::Result<String>) {
    let _ = writeln!(out, "--- {title}");
    match r {
        Ok(s) => {
            let _ = writeln!(out, "{}", s.trim_end());
        }
        Err(e) => {
            let _ = writeln!(out, "(failed: {e})");
        }
    }
}

fn tail(path: &std::path::Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            let lines: Vec<&str> = s.lines().collect();
            let from = lines.len().saturating_sub(n);
            lines.get(from..).map(|l| l.join("\n")).unwrap_or_default()
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Collects the evidence of a lab as text.
pub fn collect(lab: &Lab) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "==== lab {} ({}), run dir {} ====",
        lab.id(),
        lab.scenario(),
        lab.dir().display()
    );
    for h in lab.hosts() {
        let _ = writeln!(out, "=== host {} (netns {})", h.name, h.ns);
        show(&mut out, "ip -br addr", lab.ip(&h, &["-br", "addr"]));
        show(&mut out, "ip -4 route", lab.ip(&h, &["-4", "route"]));
        show(&mut out, "ip -6 route", lab.ip(&h, &["-6", "route"]));
    }
    for d in lab.daemons() {
        let running = if lab.is_running(&d) {
            "running"
        } else {
            "exited"
        };
        let _ = writeln!(
            out,
            "=== daemon {} on {} (pid {}, {running})",
            d.name, d.host.name, d.pid
        );
        match d.kind {
            DaemonKind::Bird => {
                for c in ["show protocols all", "show route all"] {
                    let mut cmd = Command::new("birdc");
                    cmd.arg("-s").arg(&d.socket).args(c.split_whitespace());
                    show(&mut out, &format!("birdc {c}"), exec::run(&mut cmd));
                }
            }
            DaemonKind::Via6d => {
                let ctl = crate::via6::binaries().map(|b| b.via6ctl);
                for c in ["neighbors", "routes", "fib"] {
                    let r = ctl
                        .as_ref()
                        .map_err(|e| crate::Error::Check(e.to_string()))
                        .and_then(|ctl| {
                            let mut cmd = Command::new(ctl);
                            cmd.arg("--socket").arg(&d.socket).args(["--json", c]);
                            exec::run(&mut cmd)
                        });
                    show(&mut out, &format!("via6ctl --json {c}"), r);
                }
            }
            DaemonKind::Other => {}
        }
        show(
            &mut out,
            &format!("log {} (last {LOG_TAIL} lines)", d.log.display()),
            Ok(tail(&d.log, LOG_TAIL)),
        );
    }
    out
}
