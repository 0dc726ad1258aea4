//! BIRD 2 (2.0.12 as Debian ships it): config rendering, start/stop, and
//! reading its view through `birdc`.
//!
//! 2.0.12 facts this module encodes (found by running it in a lab):
//! - a link-local neighbour needs its interface: `neighbor fe80::1 as N;`
//!   alone is a parse error ("Link-local addresses require defined
//!   interface"); we write both `fe80::1%eth0` and `interface "eth0";`;
//! - `extended next hop on;` is a per-channel option and belongs in the
//!   `ipv4 { }` channel of an IPv6 session (RFC 8950 §3);
//! - BIRD sends a link-local-only next hop as `[::, LL]` (32 bytes) and
//!   shows it as `BGP.next_hop: :: fe80::2`;
//! - each BIRD gets its own control socket (`-s`) and pid file (`-P`), so
//!   no private `/run` is needed.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;

use crate::error::{Error, Result};
use crate::exec;
use crate::lab::{Daemon, DaemonKind, Host, Lab};

/// One address family channel of a BGP protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirdChannel {
    /// `extended next hop on;` (RFC 8950): only meaningful in `ipv4`.
    pub extended_next_hop: bool,
    /// Body of `import ...;`, e.g. `all`, `none`, `where net ~ [...]`.
    pub import: String,
    /// Body of `export ...;`.
    pub export: String,
    /// Extra lines inside the channel block.
    pub extra: String,
}

impl Default for BirdChannel {
    fn default() -> Self {
        BirdChannel {
            extended_next_hop: false,
            import: "all".into(),
            export: "all".into(),
            extra: String::new(),
        }
    }
}

impl BirdChannel {
    /// `import all; export all; extended next hop on;`
    pub fn ipv4_extended() -> Self {
        BirdChannel {
            extended_next_hop: true,
            ..Self::default()
        }
    }
}

/// One BGP protocol (session) of a BIRD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirdPeer {
    /// Protocol name (`birdc show protocols all NAME`).
    pub name: String,
    /// Neighbour address without scope: `fe80::2`, `2001:db8::2`.
    pub neighbor: String,
    /// Interface for a link-local neighbour (rendered as `%if` and
    /// `interface "if";`).
    pub interface: Option<String>,
    pub remote_as: u32,
    /// Defaults to the BIRD's own ASN.
    pub local_as: Option<u32>,
    pub ipv4: Option<BirdChannel>,
    pub ipv6: Option<BirdChannel>,
    /// Seconds; short so a dead peer is noticed quickly (RFC 4271 §4.2
    /// allows >= 3).
    pub hold_time: u16,
    pub passive: bool,
    /// Destination TCP port, if not 179.
    pub port: Option<u16>,
    /// Extra lines inside the protocol block.
    pub extra: String,
}

impl BirdPeer {
    /// A link-local-only session on `ifname` with IPv4 (extended next hop)
    /// and IPv6 channels, both importing and exporting everything.
    pub fn link_local(name: &str, neighbor: &str, ifname: &str, remote_as: u32) -> Self {
        BirdPeer {
            name: name.into(),
            neighbor: neighbor.into(),
            interface: Some(ifname.into()),
            remote_as,
            local_as: None,
            ipv4: Some(BirdChannel::ipv4_extended()),
            ipv6: Some(BirdChannel::default()),
            hold_time: 9,
            passive: false,
            port: None,
            extra: String::new(),
        }
    }
}

/// A whole BIRD configuration: device, kernel (both families, exporting
/// into the namespace's main table), static announcements and BGP peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirdConfig {
    pub router_id: Ipv4Addr,
    pub asn: u32,
    /// Prefixes announced through `protocol static static4` (blackhole).
    pub static_v4: Vec<String>,
    /// Prefixes announced through `protocol static static6` (blackhole).
    pub static_v6: Vec<String>,
    pub peers: Vec<BirdPeer>,
    /// Appended verbatim at the end.
    pub extra: String,
}

impl BirdConfig {
    pub fn new(router_id: Ipv4Addr, asn: u32) -> Self {
        BirdConfig {
            router_id,
            asn,
            static_v4: Vec::new(),
            static_v6: Vec::new(),
            peers: Vec::new(),
            extra: String::new(),
        }
    }

    /// The config text. Kernel protocols export everything except the
    /// static blackholes (those only exist to be announced), so the
    /// kernel table shows exactly what BIRD learned over BGP.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "log stderr all;");
        let _ = writeln!(s, "router id {};", self.router_id);
        let _ = writeln!(s, "protocol device {{ scan time 2; }}");
        for (proto, fam) in [("kernel4", "ipv4"), ("kernel6", "ipv6")] {
            let _ = writeln!(
                s,
                "protocol kernel {proto} {{\n  scan time 2;\n  {fam} {{ import none; export where source != RTS_STATIC; }};\n}}"
            );
        }
        for (proto, fam, list) in [
            ("static4", "ipv4", &self.static_v4),
            ("static6", "ipv6", &self.static_v6),
        ] {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(s, "protocol static {proto} {{\n  {fam};");
            for p in list {
                let _ = writeln!(s, "  route {p} blackhole;");
            }
            let _ = writeln!(s, "}}");
        }
        for p in &self.peers {
            let _ = writeln!(s, "protocol bgp {} {{", p.name);
            let _ = writeln!(s, "  local as {};", p.local_as.unwrap_or(self.asn));
            let scoped = match &p.interface {
                Some(ifn) if p.neighbor.to_ascii_lowercase().starts_with("fe80:") => {
                    format!("{}%{}", p.neighbor, ifn)
                }
                _ => p.neighbor.clone(),
            };
            let port = p.port.map(|n| format!(" port {n}")).unwrap_or_default();
            let _ = writeln!(s, "  neighbor {scoped}{port} as {};", p.remote_as);
            if let Some(ifn) = &p.interface {
                let _ = writeln!(s, "  interface \"{ifn}\";");
            }
            let _ = writeln!(s, "  debug {{ states, events }};");
            let _ = writeln!(s, "  hold time {};", p.hold_time);
            let _ = writeln!(s, "  keepalive time {};", (p.hold_time / 3).max(1));
            let _ = writeln!(s, "  connect delay time 1;");
            let _ = writeln!(s, "  connect retry time 2;");
            let _ = writeln!(s, "  error wait time 1, 4;");
            if p.passive {
                let _ = writeln!(s, "  passive on;");
            }
            for (fam, ch) in [("ipv4", &p.ipv4), ("ipv6", &p.ipv6)] {
                let Some(ch) = ch else { continue };
                let _ = writeln!(s, "  {fam} {{");
                let _ = writeln!(s, "    import {};", ch.import);
                let _ = writeln!(s, "    export {};", ch.export);
                if ch.extended_next_hop {
                    let _ = writeln!(s, "    extended next hop on;");
                }
                if !ch.extra.is_empty() {
                    let _ = writeln!(s, "    {}", ch.extra);
                }
                let _ = writeln!(s, "  }};");
            }
            if !p.extra.is_empty() {
                let _ = writeln!(s, "  {}", p.extra);
            }
            let _ = writeln!(s, "}}");
        }
        s.push_str(&self.extra);
        s
    }
}

/// A running BIRD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bird {
    pub daemon: Daemon,
    pub conf: PathBuf,
}

/// The part of a `birdc` answer after the `BIRD x.y.z ready.` banner.
fn strip_banner(out: &str) -> String {
    out.lines()
        .filter(|l| !(l.starts_with("BIRD ") && l.trim_end().ends_with("ready.")))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Bird {
    /// Writes the config, checks it with `bird -p`, starts BIRD in the
    /// foreground inside `host` and waits until its control socket answers.
    pub fn start(lab: &Lab, host: &Host, name: &str, cfg: &BirdConfig) -> Result<Bird> {
        Bird::start_with_args(lab, host, name, cfg, &[])
    }

    /// [`Bird::start`] with extra command-line arguments, e.g. `-R`
    /// (graceful restart recovery after a restart).
    pub fn start_with_args(
        lab: &Lab,
        host: &Host,
        name: &str,
        cfg: &BirdConfig,
        extra: &[&str],
    ) -> Result<Bird> {
        let conf = lab.dir().join(format!("{name}.conf"));
        std::fs::write(&conf, cfg.render())
            .map_err(|e| Error::io(format!("write {}", conf.display()), e))?;
        let conf_s = conf.to_string_lossy().into_owned();
        exec::run_args(&["bird", "-p", "-c", &conf_s])?;
        let sock = lab.dir().join(format!("{name}.ctl"));
        let _ = std::fs::remove_file(&sock);
        let pidfile = lab.dir().join(format!("{name}.pid"));
        let sock_s = sock.to_string_lossy().into_owned();
        let pid_s = pidfile.to_string_lossy().into_owned();
        let mut args = vec!["bird", "-f", "-c", &conf_s, "-s", &sock_s, "-P", &pid_s];
        args.extend_from_slice(extra);
        let daemon = lab.spawn_daemon(host, name, DaemonKind::Bird, sock.clone(), &args)?;
        let bird = Bird { daemon, conf };
        lab.wait_until(
            crate::wait::DAEMON_START,
            &format!("BIRD {name} control socket"),
            || {
                bird.birdc("show status")
                    .map(|s| s.contains("Daemon is up"))
            },
        )?;
        Ok(bird)
    }

    /// Runs a `birdc` command (words separated by spaces) and returns the
    /// answer without the banner.
    pub fn birdc(&self, command: &str) -> Result<String> {
        let mut cmd = Command::new("birdc");
        cmd.arg("-s").arg(&self.daemon.socket);
        cmd.args(command.split_whitespace());
        exec::run(&mut cmd).map(|s| strip_banner(&s))
    }

    /// `show protocols all NAME`.
    pub fn protocol(&self, name: &str) -> Result<String> {
        self.birdc(&format!("show protocols all {name}"))
    }

    /// The `BGP state:` of a protocol (`Established`, `Active`, ...).
    pub fn bgp_state(&self, name: &str) -> Result<String> {
        let text = self.protocol(name)?;
        text.lines()
            .find_map(|l| l.trim().strip_prefix("BGP state:"))
            .map(|v| v.trim().to_string())
            .ok_or_else(|| Error::Parse {
                cmd: format!("birdc show protocols all {name}"),
                reason: format!("no `BGP state:` line in:\n{text}"),
            })
    }

    /// Whether protocol `name` is Established.
    pub fn established(&self, name: &str) -> Result<bool> {
        Ok(self.bgp_state(name)? == "Established")
    }

    /// The lines of `show protocols all NAME` between `Neighbor
    /// capabilities` and the next section: what the peer offered.
    pub fn neighbor_capabilities(&self, name: &str) -> Result<String> {
        section(&self.protocol(name)?, "Neighbor capabilities")
    }

    /// What BIRD offered to the peer.
    pub fn local_capabilities(&self, name: &str) -> Result<String> {
        section(&self.protocol(name)?, "Local capabilities")
    }

    /// The `Channel ipv4` / `Channel ipv6` block of a protocol.
    pub fn channel(&self, name: &str, family: &str) -> Result<String> {
        section(&self.protocol(name)?, &format!("Channel {family}"))
    }

    /// `show route PREFIX all` (exact prefix); empty if BIRD has no route.
    pub fn route(&self, prefix: &str) -> Result<String> {
        let mut cmd = Command::new("birdc");
        cmd.arg("-s")
            .arg(&self.daemon.socket)
            .args(["show", "route", prefix, "all"]);
        let line = exec::describe(&cmd);
        let out = exec::output_within(&mut cmd, exec::COMMAND_TIMEOUT)?;
        let text = strip_banner(&String::from_utf8_lossy(&out.stdout));
        // birdc exits 1 on "Network not found" (BIRD reply code 8001).
        if text.contains("Network not found") {
            return Ok(String::new());
        }
        if !out.status.success() {
            return Err(Error::Command {
                cmd: line,
                status: out.status.to_string(),
                stderr: format!("{text}{}", String::from_utf8_lossy(&out.stderr)),
            });
        }
        Ok(text)
    }
}

/// The indented block following a header line `title` (lines indented
/// deeper than the header).
fn section(text: &str, title: &str) -> Result<String> {
    let mut lines = text.lines();
    let header = lines
        .by_ref()
        .find(|l| l.trim() == title)
        .ok_or_else(|| Error::Parse {
            cmd: "birdc show protocols all".into(),
            reason: format!("no `{title}` section in:\n{text}"),
        })?;
    let indent = header.len() - header.trim_start().len();
    let body: Vec<&str> = lines
        .take_while(|l| l.len() - l.trim_start().len() > indent || l.trim().is_empty())
        .collect();
    Ok(body.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_peer_renders_scope_interface_and_ext_nh_in_ipv4() {
        let mut c = BirdConfig::new(Ipv4Addr::new(10, 0, 0, 1), 65001);
        c.static_v4.push("10.1.0.0/24".into());
        c.peers
            .push(BirdPeer::link_local("via6", "fe80::2", "eth0", 65002));
        let s = c.render();
        assert!(s.contains("neighbor fe80::2%eth0 as 65002;"), "{s}");
        assert!(s.contains("interface \"eth0\";"), "{s}");
        let v4 = s.split("ipv4 {").nth(2).unwrap_or_default();
        assert!(v4.contains("extended next hop on;"), "{s}");
        assert!(s.contains("route 10.1.0.0/24 blackhole;"), "{s}");
    }

    #[test]
    fn section_reads_nested_block() {
        let t = "x\n    Neighbor capabilities\n      Multiprotocol\n      Extended next hop\n        IPv6 nexthop: ipv4\n    Session: external\n";
        let s = section(t, "Neighbor capabilities").unwrap_or_default();
        assert!(s.contains("IPv6 nexthop: ipv4"));
        assert!(!s.contains("Session"));
    }
}
