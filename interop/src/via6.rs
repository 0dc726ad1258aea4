//! via6d under test: finding (and building) its binaries, rendering its
//! YAML config (the keys documented in the README, "Configuration"),
//! starting it inside a host and reading its view through `via6ctl --json`.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::exec;
use crate::lab::{Daemon, DaemonKind, Host, Lab};

/// Paths of the two binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    pub via6d: PathBuf,
    pub via6ctl: PathBuf,
}

/// The outcome of the one build per test process (errors as text, so a
/// broken build is reported once, not recompiled by every scenario).
static BUILT: Mutex<Option<std::result::Result<Binaries, String>>> = Mutex::new(None);

fn workspace_root() -> PathBuf {
    // interop/ sits directly under the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `VIA6D_BIN` / `VIA6CTL_BIN` if set; otherwise `target/debug/...` of the
/// workspace (or `$CARGO_TARGET_DIR`), built once per test process with
/// `cargo build -p via6d` so a scenario never runs a stale daemon.
pub fn binaries() -> Result<Binaries> {
    let mut cache = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(done) = cache.as_ref() {
        return done
            .clone()
            .map_err(|e| Error::Prerequisite(format!("via6d binaries: {e}")));
    }
    let result = find_or_build();
    *cache = Some(result.as_ref().map(Clone::clone).map_err(|e| e.to_string()));
    result
}

fn find_or_build() -> Result<Binaries> {
    let env_d = std::env::var_os("VIA6D_BIN").map(PathBuf::from);
    let env_c = std::env::var_os("VIA6CTL_BIN").map(PathBuf::from);
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bins = Binaries {
        via6d: env_d
            .clone()
            .unwrap_or_else(|| target.join("debug").join("via6d")),
        via6ctl: env_c
            .clone()
            .unwrap_or_else(|| target.join("debug").join("via6ctl")),
    };
    if env_d.is_none() || env_c.is_none() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&root)
            .args(["build", "-p", "via6d", "--bins"]);
        let line = exec::describe(&cmd);
        let out = exec::output_within(&mut cmd, Duration::from_secs(1200))?;
        if !out.status.success() {
            return Err(Error::Command {
                cmd: line,
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
    }
    for p in [&bins.via6d, &bins.via6ctl] {
        if !p.is_file() {
            return Err(Error::Prerequisite(format!(
                "{} does not exist",
                p.display()
            )));
        }
    }
    Ok(bins)
}

/// One `neighbors:` entry. `None` fields are left out (daemon default).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Via6Neighbor {
    /// `fe80::1%eth0` or `2001:db8::1`.
    pub address: String,
    pub remote_as: u32,
    pub families: Option<Vec<String>>,
    pub extended_next_hop: Option<bool>,
    pub passive: Option<bool>,
    pub hold_time: Option<u16>,
    pub import: Option<String>,
    pub export: Option<String>,
    /// Extra YAML lines of this entry, e.g. `port: 1790` (indented by the
    /// renderer).
    pub extra: Vec<String>,
}

impl Via6Neighbor {
    /// A neighbour importing and exporting everything (eBGP denies by
    /// default per RFC 8212, so scenarios say what they want), hold 9 s.
    pub fn open(address: &str, remote_as: u32) -> Self {
        Via6Neighbor {
            address: address.into(),
            remote_as,
            hold_time: Some(9),
            import: Some("accept-all".into()),
            export: Some("accept-all".into()),
            ..Self::default()
        }
    }
}

/// A via6d config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via6Config {
    pub router_id: Ipv4Addr,
    pub asn: u32,
    pub neighbors: Vec<Via6Neighbor>,
    pub originate_v4: Vec<String>,
    pub originate_v6: Vec<String>,
    pub fib_enabled: bool,
    pub source_address: Option<Ipv4Addr>,
    /// `max-paths:` (ECMP width); `None` = daemon default (1).
    pub max_paths: Option<usize>,
    /// `log: { level: ... }`.
    pub log_level: String,
    /// Top-level YAML appended verbatim (e.g. `policies:`).
    pub extra: String,
}

impl Via6Config {
    pub fn new(router_id: Ipv4Addr, asn: u32) -> Self {
        Via6Config {
            router_id,
            asn,
            neighbors: Vec::new(),
            originate_v4: Vec::new(),
            originate_v6: Vec::new(),
            fib_enabled: true,
            source_address: None,
            max_paths: None,
            log_level: "info".into(),
            extra: String::new(),
        }
    }

    /// YAML per the user contract; `socket` is the per-run control socket.
    pub fn render(&self, socket: &Path) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "router-id: {}", self.router_id);
        let _ = writeln!(s, "asn: {}", self.asn);
        let _ = writeln!(s, "listen: {{ address: \"::\", port: 179 }}");
        let _ = writeln!(s, "neighbors:");
        for n in &self.neighbors {
            let _ = writeln!(s, "  - address: \"{}\"", n.address);
            let _ = writeln!(s, "    remote-as: {}", n.remote_as);
            if let Some(f) = &n.families {
                let _ = writeln!(s, "    families: [{}]", f.join(", "));
            }
            if let Some(v) = n.extended_next_hop {
                let _ = writeln!(s, "    extended-next-hop: {v}");
            }
            if let Some(v) = n.passive {
                let _ = writeln!(s, "    passive: {v}");
            }
            if let Some(v) = n.hold_time {
                let _ = writeln!(s, "    hold-time: {v}");
            }
            if let Some(v) = &n.import {
                let _ = writeln!(s, "    import: {v}");
            }
            if let Some(v) = &n.export {
                let _ = writeln!(s, "    export: {v}");
            }
            for l in &n.extra {
                let _ = writeln!(s, "    {l}");
            }
        }
        if self.neighbors.is_empty() {
            s.push_str("  []\n");
        }
        let _ = writeln!(s, "originate:");
        let _ = writeln!(s, "  ipv4: [{}]", self.originate_v4.join(", "));
        let _ = writeln!(s, "  ipv6: [{}]", self.originate_v6.join(", "));
        let _ = writeln!(s, "fib:");
        let _ = writeln!(s, "  enabled: {}", self.fib_enabled);
        if let Some(a) = self.source_address {
            let _ = writeln!(s, "  source-address: {a}");
        }
        let _ = writeln!(s, "  table: main");
        let _ = writeln!(s, "  protocol: bgp");
        let _ = writeln!(s, "control-socket: {}", socket.display());
        if let Some(n) = self.max_paths {
            let _ = writeln!(s, "max-paths: {n}");
        }
        let _ = writeln!(s, "log: {{ level: \"{}\" }}", self.log_level);
        s.push_str(&self.extra);
        s
    }
}

/// A running via6d.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via6d {
    pub daemon: Daemon,
    pub conf: PathBuf,
    pub via6ctl: PathBuf,
}

impl Via6d {
    /// Builds the binaries if needed, writes the config, checks it with
    /// `via6d check`, starts `via6d --config FILE` inside `host` and waits
    /// until `via6ctl neighbors` answers.
    pub fn start(lab: &Lab, host: &Host, name: &str, cfg: &Via6Config) -> Result<Via6d> {
        Self::start_yaml(lab, host, name, &cfg.render(&Self::socket_for(lab, name)))
    }

    /// The control socket a via6d called `name` uses in `lab`; a config
    /// given to [`Via6d::start_yaml`] must name it as `control-socket`.
    pub fn socket_for(lab: &Lab, name: &str) -> PathBuf {
        lab.dir().join(format!("{name}.sock"))
    }

    /// Like [`Via6d::start`], with the config text as it is.
    pub fn start_yaml(lab: &Lab, host: &Host, name: &str, yaml: &str) -> Result<Via6d> {
        let bins = binaries()?;
        let sock = Self::socket_for(lab, name);
        let _ = std::fs::remove_file(&sock);
        let conf = lab.dir().join(format!("{name}.yaml"));
        std::fs::write(&conf, yaml)
            .map_err(|e| Error::io(format!("write {}", conf.display()), e))?;
        let bin = bins.via6d.to_string_lossy().into_owned();
        let conf_s = conf.to_string_lossy().into_owned();
        exec::run_args(&[&bin, "check", &conf_s])?;
        let daemon = lab.spawn_daemon(
            host,
            name,
            DaemonKind::Via6d,
            sock,
            &[&bin, "--config", &conf_s],
        )?;
        let v = Via6d {
            daemon,
            conf,
            via6ctl: bins.via6ctl,
        };
        lab.wait_until(
            crate::wait::DAEMON_START,
            &format!("via6d {name} control socket"),
            || {
                if !lab.is_running(&v.daemon) {
                    return Err(Error::Check(format!("via6d {name} exited")));
                }
                v.ctl(&["neighbors"]).map(|_| true)
            },
        )?;
        Ok(v)
    }

    /// `via6ctl --socket SOCK ARGS...`, stdout on success.
    pub fn ctl(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new(&self.via6ctl);
        cmd.arg("--socket").arg(&self.daemon.socket).args(args);
        exec::run(&mut cmd)
    }

    /// `via6ctl --socket SOCK --json ARGS...`, parsed.
    pub fn ctl_json(&self, args: &[&str]) -> Result<Value> {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let text = self.ctl(&full)?;
        serde_json::from_str(&text).map_err(|e| Error::Parse {
            cmd: format!("via6ctl --json {}", args.join(" ")),
            reason: format!("{e}: {text}"),
        })
    }
}

/// The JSON objects in `v` that describe `key`: an object with a string
/// field equal to `key` (e.g. `"prefix": "10.0.0.0/24"`, `"address":
/// "fe80::1%eth0"`), or the value stored under `key` in a map keyed by it.
/// This keeps assertions independent of field names the daemon picks.
pub fn json_entries<'a>(v: &'a Value, key: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    collect_entries(v, key, &mut out);
    out
}

fn collect_entries<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(map) => {
            let direct = map
                .values()
                .any(|x| x.as_str().is_some_and(|s| same_key(s, key)));
            if direct {
                out.push(v);
                return;
            }
            for (k, x) in map {
                if same_key(k, key) {
                    out.push(x);
                } else {
                    collect_entries(x, key, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|x| collect_entries(x, key, out)),
        _ => {}
    }
}

/// Equal, ignoring ASCII case, and treating `a.b.c.d` as `a.b.c.d/32`.
fn same_key(s: &str, key: &str) -> bool {
    s.eq_ignore_ascii_case(key)
        || (key.ends_with("/32") && s.eq_ignore_ascii_case(key.trim_end_matches("/32")))
        || (s.ends_with("/32") && key.eq_ignore_ascii_case(s.trim_end_matches("/32")))
}

/// Whether `entry` (one object from [`json_entries`]) mentions every
/// needle somewhere in its text, case-insensitively.
pub fn json_mentions(entry: &Value, needles: &[&str]) -> bool {
    let text = entry.to_string().to_ascii_lowercase();
    needles
        .iter()
        .all(|n| text.contains(&n.to_ascii_lowercase()))
}

/// Whether some entry for `key` mentions every needle.
pub fn has_entry(v: &Value, key: &str, needles: &[&str]) -> bool {
    json_entries(v, key)
        .iter()
        .any(|e| json_mentions(e, needles))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_found_by_field_or_map_key() {
        let v: Value = serde_json::json!({"routes": [
            {"prefix": "10.1.0.0/24", "next_hop": {"global": null, "link_local": "fe80::1"}, "interface": "eth0"},
            {"prefix": "10.2.0.0/24", "next_hop": {"link_local": "fe80::9"}}
        ], "by_key": {"10.3.0.0/24": {"via": "fe80::3"}}});
        assert!(has_entry(&v, "10.1.0.0/24", &["fe80::1", "eth0"]));
        assert!(!has_entry(&v, "10.2.0.0/24", &["fe80::1"]));
        assert!(has_entry(&v, "10.3.0.0/24", &["fe80::3"]));
        assert!(json_entries(&v, "10.4.0.0/24").is_empty());
    }

    #[test]
    fn config_renders_contract_fields() {
        let mut c = Via6Config::new(Ipv4Addr::new(192, 0, 2, 2), 4200000002);
        c.neighbors.push(Via6Neighbor::open("fe80::1%eth0", 65001));
        c.originate_v4.push("198.51.100.0/24".into());
        let s = c.render(Path::new("/tmp/x.sock"));
        for want in [
            "asn: 4200000002",
            "  - address: \"fe80::1%eth0\"",
            "    remote-as: 65001",
            "  ipv4: [198.51.100.0/24]",
            "control-socket: /tmp/x.sock",
        ] {
            assert!(s.contains(want), "missing {want:?} in\n{s}");
        }
    }
}
