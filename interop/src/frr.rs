//! FRR 8.4 (Debian's `frr`): bgpd with zebra, one pair per host, config
//! rendering and reading FRR's view through `vtysh`.
//!
//! 8.4 facts this module encodes (found by running it in a lab):
//! - the daemons refuse to start as root unless root is in the `frrvty`
//!   group (`privs_init: user(root) is not part of vty group`); they run as
//!   the `frr` user (`-u frr -g frr`), so each FRR gets a world-writable
//!   directory of its own for sockets and pid files;
//! - `-z PATH` gives zebra and bgpd a private zebra API socket,
//!   `--vty_socket DIR` private vty sockets (`vtysh --vty_socket DIR`
//!   reaches them), `-P 0` turns the TCP vty off: no `/run/frr`, no
//!   pathspace (`-N`) needed, and FRRs in parallel namespaces do not meet;
//! - zebra installs BGP routes as `proto bgp metric 20`, an IPv4 route with
//!   a link-local next hop as `via inet6 fe80::.. dev eth0`;
//! - `neighbor IFNAME interface remote-as external` (BGP unnumbered) learns
//!   the peer's link-local address from Router Advertisements, and turns
//!   extended next hop (RFC 8950) on by itself; an address neighbour needs
//!   `capability extended-nexthop`;
//! - `network` statements need `no bgp network import-check` when nothing
//!   in zebra covers the prefix.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::exec;
use crate::lab::{Daemon, DaemonKind, Host, Lab};

/// Where the `frr` package puts its daemons.
pub const FRR_LIB: &str = "/usr/lib/frr";

/// Who FRR's session is with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrrNeighbor {
    /// `neighbor fe80::2 interface eth0` (or a global address, no
    /// interface).
    Address {
        addr: String,
        interface: Option<String>,
    },
    /// `neighbor eth0 interface`: BGP unnumbered.
    Interface(String),
}

impl FrrNeighbor {
    /// The word FRR uses for this neighbour in its config and `show`
    /// output (`fe80::2` or `eth0`).
    pub fn key(&self) -> &str {
        match self {
            FrrNeighbor::Address { addr, .. } => addr,
            FrrNeighbor::Interface(i) => i,
        }
    }
}

/// `remote-as` of an FRR neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrrRemoteAs {
    Number(u32),
    External,
    Internal,
}

impl std::fmt::Display for FrrRemoteAs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrrRemoteAs::Number(n) => write!(f, "{n}"),
            FrrRemoteAs::External => f.write_str("external"),
            FrrRemoteAs::Internal => f.write_str("internal"),
        }
    }
}

/// One BGP neighbour of an FRR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrrPeer {
    pub neighbor: FrrNeighbor,
    pub remote_as: FrrRemoteAs,
    /// Activate IPv6 unicast too (IPv4 unicast is on by default).
    pub ipv6: bool,
}

impl FrrPeer {
    /// BGP unnumbered on `ifname`.
    pub fn unnumbered(ifname: &str, remote_as: FrrRemoteAs) -> Self {
        FrrPeer {
            neighbor: FrrNeighbor::Interface(ifname.into()),
            remote_as,
            ipv6: true,
        }
    }

    /// A link-local address neighbour on `ifname`.
    pub fn link_local(addr: &str, ifname: &str, remote_as: u32) -> Self {
        FrrPeer {
            neighbor: FrrNeighbor::Address {
                addr: addr.into(),
                interface: Some(ifname.into()),
            },
            remote_as: FrrRemoteAs::Number(remote_as),
            ipv6: true,
        }
    }
}

/// A whole FRR configuration (one file for zebra and bgpd).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrrConfig {
    pub router_id: Ipv4Addr,
    pub asn: u32,
    pub networks_v4: Vec<String>,
    pub networks_v6: Vec<String>,
    pub peers: Vec<FrrPeer>,
    /// `maximum-paths N` in both families (eBGP multipath).
    pub max_paths: Option<u8>,
    /// `bgp bestpath as-path multipath-relax`.
    pub multipath_relax: bool,
    /// Lines appended inside `router bgp`.
    pub extra: String,
}

impl FrrConfig {
    pub fn new(router_id: Ipv4Addr, asn: u32) -> Self {
        FrrConfig {
            router_id,
            asn,
            networks_v4: Vec::new(),
            networks_v6: Vec::new(),
            peers: Vec::new(),
            max_paths: None,
            multipath_relax: false,
            extra: String::new(),
        }
    }

    /// The config text: datacenter defaults, 3/9 s timers, no RFC 8212
    /// default deny (scenarios say what they want).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "frr defaults datacenter");
        let _ = writeln!(s, "hostname frr{}", self.router_id);
        let _ = writeln!(s, "log stdout informational");
        let _ = writeln!(s, "router bgp {}", self.asn);
        let _ = writeln!(s, " bgp router-id {}", self.router_id);
        let _ = writeln!(s, " no bgp ebgp-requires-policy");
        let _ = writeln!(s, " no bgp network import-check");
        let _ = writeln!(s, " timers bgp 3 9");
        if self.multipath_relax {
            let _ = writeln!(s, " bgp bestpath as-path multipath-relax");
        }
        for p in &self.peers {
            let key = p.neighbor.key();
            match &p.neighbor {
                FrrNeighbor::Interface(i) => {
                    let _ = writeln!(s, " neighbor {i} interface remote-as {}", p.remote_as);
                }
                FrrNeighbor::Address { addr, interface } => {
                    let _ = writeln!(s, " neighbor {addr} remote-as {}", p.remote_as);
                    if let Some(i) = interface {
                        let _ = writeln!(s, " neighbor {addr} interface {i}");
                    }
                    let _ = writeln!(s, " neighbor {addr} capability extended-nexthop");
                }
            }
            let _ = writeln!(s, " neighbor {key} timers connect 2");
            let _ = writeln!(s, " neighbor {key} advertisement-interval 0");
        }
        s.push_str(&self.extra);
        for (fam, nets, v6) in [
            ("ipv4", &self.networks_v4, false),
            ("ipv6", &self.networks_v6, true),
        ] {
            let _ = writeln!(s, " address-family {fam} unicast");
            for n in nets {
                let _ = writeln!(s, "  network {n}");
            }
            if let Some(m) = self.max_paths {
                let _ = writeln!(s, "  maximum-paths {m}");
            }
            for p in &self.peers {
                let key = p.neighbor.key();
                if !v6 || p.ipv6 {
                    let _ = writeln!(s, "  neighbor {key} activate");
                }
            }
            let _ = writeln!(s, " exit-address-family");
        }
        s
    }
}

/// A running FRR: zebra and bgpd in one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frr {
    pub zebra: Daemon,
    pub bgpd: Daemon,
    pub conf: PathBuf,
    /// Sockets and pid files (owned by the `frr` user).
    pub dir: PathBuf,
    host: Host,
    name: String,
}

/// Fails unless the FRR daemons and `vtysh` are installed.
pub fn check_prerequisites() -> Result<()> {
    for p in [
        format!("{FRR_LIB}/zebra"),
        format!("{FRR_LIB}/bgpd"),
        "/usr/bin/vtysh".into(),
    ] {
        if !std::path::Path::new(&p).is_file() {
            return Err(Error::Prerequisite(format!(
                "{p} not found (Debian: apt-get install frr)"
            )));
        }
    }
    Ok(())
}

impl Frr {
    /// Writes the config, checks it with `bgpd -C`, starts zebra then bgpd
    /// inside `host` and waits until `vtysh` reaches both.
    pub fn start(lab: &Lab, host: &Host, name: &str, cfg: &FrrConfig) -> Result<Frr> {
        use std::os::unix::fs::PermissionsExt;
        check_prerequisites()?;
        let dir = lab.dir().join(format!("{name}.frr"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| Error::io(format!("chmod {}", dir.display()), e))?;
        let conf = dir.join("frr.conf");
        std::fs::write(&conf, cfg.render())
            .map_err(|e| Error::io(format!("write {}", conf.display()), e))?;
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io(format!("chmod {}", conf.display()), e))?;
        let d = dir.to_string_lossy().into_owned();
        let conf_s = conf.to_string_lossy().into_owned();
        let zsock = format!("{d}/zserv.api");
        let common = |daemon: &str| -> Vec<String> {
            [
                format!("{FRR_LIB}/{daemon}"),
                "-u".into(),
                "frr".into(),
                "-g".into(),
                "frr".into(),
                "-P".into(),
                "0".into(),
                "-z".into(),
                zsock.clone(),
                "--vty_socket".into(),
                d.clone(),
                "-i".into(),
                format!("{d}/{daemon}.pid"),
                "--log".into(),
                "stdout".into(),
            ]
            .into()
        };
        let mut check = common("bgpd");
        check.extend(["-C".into(), "-f".into(), conf_s.clone()]);
        let check: Vec<&str> = check.iter().map(String::as_str).collect();
        exec::run_args(&check)?;

        let mut z = common("zebra");
        z.extend(["-f".into(), "/dev/null".into()]);
        let z: Vec<&str> = z.iter().map(String::as_str).collect();
        let zebra = lab.spawn_daemon(
            host,
            &format!("{name}-zebra"),
            DaemonKind::Other,
            dir.join("zebra.vty"),
            &z,
        )?;
        let frr_probe = |daemon: &str| {
            let mut cmd = Command::new("vtysh");
            cmd.args(["--vty_socket", &d, "-d", daemon, "-c", "show version"]);
            exec::run(&mut cmd).map(|_| true)
        };
        lab.wait_until(
            crate::wait::DAEMON_START,
            &format!("FRR {name}: zebra vty"),
            || frr_probe("zebra"),
        )?;
        let mut b = common("bgpd");
        b.extend(["-f".into(), conf_s]);
        let b: Vec<&str> = b.iter().map(String::as_str).collect();
        let bgpd = lab.spawn_daemon(
            host,
            &format!("{name}-bgpd"),
            DaemonKind::Other,
            dir.join("bgpd.vty"),
            &b,
        )?;
        let frr = Frr {
            zebra,
            bgpd,
            conf,
            dir,
            host: host.clone(),
            name: name.to_string(),
        };
        lab.wait_until(
            crate::wait::DAEMON_START,
            &format!("FRR {name}: bgpd vty"),
            || frr_probe("bgpd"),
        )?;
        Ok(frr)
    }

    /// Starts bgpd again (after [`Lab::kill`] of `self.bgpd`) with the same
    /// config; zebra kept running.
    pub fn restart_bgpd(&mut self, lab: &Lab) -> Result<()> {
        let d = self.dir.to_string_lossy().into_owned();
        let conf_s = self.conf.to_string_lossy().into_owned();
        let bgpd = format!("{FRR_LIB}/bgpd");
        let zsock = format!("{d}/zserv.api");
        let pid = format!("{d}/bgpd.pid");
        self.bgpd = lab.spawn_daemon(
            &self.host,
            &format!("{}-bgpd", self.name),
            DaemonKind::Other,
            self.dir.join("bgpd.vty"),
            &[
                &bgpd,
                "-u",
                "frr",
                "-g",
                "frr",
                "-P",
                "0",
                "-z",
                &zsock,
                "--vty_socket",
                &d,
                "-i",
                &pid,
                "--log",
                "stdout",
                "-f",
                &conf_s,
            ],
        )?;
        lab.wait_until(
            crate::wait::DAEMON_START,
            &format!("FRR {}: bgpd vty after restart", self.name),
            || self.vtysh("show bgp summary").map(|_| true),
        )
    }

    /// `vtysh -c COMMAND` against this FRR.
    pub fn vtysh(&self, command: &str) -> Result<String> {
        let mut cmd = Command::new("vtysh");
        cmd.arg("--vty_socket").arg(&self.dir).args(["-c", command]);
        exec::run(&mut cmd)
    }

    /// `vtysh -c "COMMAND json"`, parsed.
    pub fn vtysh_json(&self, command: &str) -> Result<Value> {
        let text = self.vtysh(&format!("{command} json"))?;
        serde_json::from_str(&text).map_err(|e| Error::Parse {
            cmd: format!("vtysh -c '{command} json'"),
            reason: format!("{e}: {text}"),
        })
    }

    /// FRR's `show bgp neighbors KEY json` entry (`KEY` is an address or,
    /// for an unnumbered neighbour, the interface).
    pub fn neighbor(&self, key: &str) -> Result<Value> {
        let j = self.vtysh_json(&format!("show bgp neighbors {key}"))?;
        j.get(key)
            .cloned()
            .ok_or_else(|| Error::Check(format!("FRR {}: no neighbour {key} in {j}", self.name)))
    }

    /// The `bgpState` of a neighbour.
    pub fn bgp_state(&self, key: &str) -> Result<String> {
        let n = self.neighbor(key)?;
        Ok(n.get("bgpState")
            .and_then(Value::as_str)
            .unwrap_or("(none)")
            .to_string())
    }

    /// Ok(true) when the session with `key` is Established, else an error
    /// saying the state (for [`Lab::wait_until`]).
    pub fn established(&self, key: &str) -> Result<bool> {
        let s = self.bgp_state(key)?;
        if s == "Established" {
            return Ok(true);
        }
        Err(Error::Check(format!(
            "FRR {} neighbour {key}: {s}",
            self.name
        )))
    }

    /// `show bgp ipv4|ipv6 unicast PREFIX` as text; empty when FRR has no
    /// such route.
    pub fn route(&self, prefix: &str) -> Result<String> {
        let fam = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let t = self.vtysh(&format!("show bgp {fam} unicast {prefix}"))?;
        if t.contains("Network not in table") {
            return Ok(String::new());
        }
        Ok(t)
    }

    /// Text for a failure message: summary, neighbours, routes, zebra's
    /// view.
    pub fn evidence(&self) -> String {
        let mut out = String::new();
        for c in [
            "show bgp summary",
            "show bgp neighbors",
            "show bgp ipv4 unicast",
            "show bgp ipv6 unicast",
            "show ip route",
            "show interface brief",
        ] {
            let _ = writeln!(out, "--- FRR {}: vtysh -c '{c}'", self.name);
            match self.vtysh(c) {
                Ok(s) => out.push_str(&s),
                Err(e) => {
                    let _ = writeln!(out, "(failed: {e})");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unnumbered_and_address_neighbours_render() {
        let mut c = FrrConfig::new(Ipv4Addr::new(10, 255, 0, 1), 65001);
        c.networks_v4.push("10.1.0.0/24".into());
        c.peers
            .push(FrrPeer::unnumbered("eth0", FrrRemoteAs::External));
        c.peers.push(FrrPeer::link_local("fe80::2", "eth1", 65002));
        c.max_paths = Some(2);
        let s = c.render();
        for want in [
            " neighbor eth0 interface remote-as external\n",
            " neighbor fe80::2 remote-as 65002\n neighbor fe80::2 interface eth1\n",
            " neighbor fe80::2 capability extended-nexthop\n",
            "  network 10.1.0.0/24\n",
            "  maximum-paths 2\n",
            "  neighbor eth0 activate\n",
        ] {
            assert!(s.contains(want), "missing {want:?} in\n{s}");
        }
        let v6 = s
            .split(" address-family ipv6 unicast")
            .nth(1)
            .unwrap_or_default();
        assert!(v6.contains("neighbor fe80::2 activate"), "{s}");
    }
}
