//! The data plane: packets through the routes the daemons installed, not
//! only the routes themselves. `ping` from a given source address (so the
//! reply needs the route back as well), and ICMP echo counters per
//! namespace to see which host a packet reached.

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::lab::{Host, Lab};

/// Budget for the first ping across a fresh route: routes are already in
/// the kernels when scenarios ping, so this covers neighbour discovery
/// and a loaded machine, not convergence.
pub const PING_WAIT: Duration = Duration::from_secs(20);

/// One `ping -c 1 -W 1 -I SRC DST` from `host` (family from `dst`).
/// Success is ping's exit status 0 (a reply came back), not its text.
pub fn ping_once(lab: &Lab, host: &Host, src: &str, dst: &str) -> Result<bool> {
    let fam = if dst.contains(':') { "-6" } else { "-4" };
    lab.exec(
        host,
        &["ping", fam, "-n", "-c", "1", "-W", "1", "-I", src, dst],
    )
    .map(|_| true)
    .map_err(|e| {
        Error::Check(format!(
            "ping {fam} from {} ({src}) to {dst}: {e}",
            host.name
        ))
    })
}

/// Waits until a ping from `src` on `host` to `dst` is answered.
pub fn wait_ping(lab: &Lab, host: &Host, src: &str, dst: &str) -> Result<()> {
    let fam = if dst.contains(':') { "-6" } else { "-4" };
    lab.wait_until(
        PING_WAIT,
        &format!("ping {fam} from {} ({src}) to {dst}", host.name),
        || ping_once(lab, host, src, dst),
    )
}

/// Echo requests `host` has received so far (`Icmp: InEchos` in
/// `/proc/net/snmp`, or `Icmp6InEchos` in `/proc/net/snmp6` for IPv6):
/// per network namespace, so it counts exactly the pings that reached
/// this host.
pub fn echo_requests_in(lab: &Lab, host: &Host, ipv6: bool) -> Result<u64> {
    if ipv6 {
        let t = lab.exec(host, &["cat", "/proc/net/snmp6"])?;
        return t
            .lines()
            .find_map(|l| l.strip_prefix("Icmp6InEchos"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| parse_err("/proc/net/snmp6", "no Icmp6InEchos"));
    }
    let t = lab.exec(host, &["cat", "/proc/net/snmp"])?;
    snmp_value(&t, "Icmp", "InEchos").ok_or_else(|| parse_err("/proc/net/snmp", "no Icmp InEchos"))
}

/// IPv4 packets `host` has forwarded so far (`Ip: ForwDatagrams` in its
/// own `/proc/net/snmp`): on a router that only forwards test traffic,
/// which router a ping crossed.
pub fn forwarded(lab: &Lab, host: &Host) -> Result<u64> {
    let t = lab.exec(host, &["cat", "/proc/net/snmp"])?;
    snmp_value(&t, "Ip", "ForwDatagrams")
        .ok_or_else(|| parse_err("/proc/net/snmp", "no Ip ForwDatagrams"))
}

/// The nftables table a [`Silencer`] adds: every packet in, out and
/// through dropped, ahead of any other hook (priority -400).
const SILENCE: &str = "\
table inet via6_silence {
  chain input { type filter hook input priority -400; policy drop; }
  chain output { type filter hook output priority -400; policy drop; }
  chain forward { type filter hook forward priority -400; policy drop; }
}
";

/// A router about to go silent: it will stop receiving, sending and
/// forwarding anything (BGP, BFD, neighbour discovery, transit traffic)
/// while its links keep their carrier, so its neighbours see nothing at
/// the link layer. `nft -f -` runs in its namespace already, the table
/// written to it; `nft` applies a file in one transaction at its end, so
/// the block costs closing a pipe and a commit, not starting a program
/// (`ip netns exec nft` took up to 170 ms on a busy machine). Needs
/// `nft` (Debian: nftables); its absence fails loudly.
pub struct Silencer {
    child: Child,
    host: String,
}

impl Silencer {
    /// Starts `nft -f -` inside `host` and hands it the table.
    pub fn prepare(lab: &Lab, host: &Host) -> Result<Silencer> {
        let mut child = lab
            .command(host, &["nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(format!("spawn nft in {}", host.name), e))?;
        let written = child
            .stdin
            .as_mut()
            .map(|w| w.write_all(SILENCE.as_bytes()));
        let s = Silencer {
            child,
            host: host.name.clone(),
        };
        match written {
            Some(Ok(())) => Ok(s),
            Some(Err(e)) => Err(s.failed(format!("write to nft: {e}"))),
            None => Err(s.failed("nft has no input".into())),
        }
    }

    /// Closes nft's input: the table goes in. Returns once nft has
    /// committed it and exited.
    pub fn silence(mut self) -> Result<()> {
        drop(self.child.stdin.take());
        match self.child.wait() {
            Ok(st) if st.success() => Ok(()),
            Ok(st) => Err(self.failed(st.to_string())),
            Err(e) => Err(Error::io(format!("wait for nft in {}", self.host), e)),
        }
    }

    fn failed(mut self, status: String) -> Error {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        if stderr.contains("exec of \"nft\" failed") {
            return Error::Prerequisite(
                "`nft` not found (Debian: apt-get install nftables)".into(),
            );
        }
        Error::Command {
            cmd: format!("ip netns exec {} nft -f -", self.host),
            status,
            stderr,
        }
    }
}

impl Drop for Silencer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_err(cmd: &str, reason: &str) -> Error {
    Error::Parse {
        cmd: format!("cat {cmd}"),
        reason: reason.into(),
    }
}

/// `/proc/net/snmp` holds pairs of lines, `Icmp: Name1 Name2 ...` then
/// `Icmp: 1 2 ...`: the value under `field` in the second line.
fn snmp_value(text: &str, group: &str, field: &str) -> Option<u64> {
    let prefix = format!("{group}:");
    let mut rows = text.lines().filter(|l| l.starts_with(&prefix));
    let names = rows.next()?;
    let values = rows.next()?;
    let idx = names.split_whitespace().position(|n| n == field)?;
    values.split_whitespace().nth(idx)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::snmp_value;

    #[test]
    fn snmp_field_by_name() {
        let t = "Ip: Forwarding DefaultTTL\nIp: 1 64\nIcmp: InMsgs InErrors InEchos\nIcmp: 9 0 4\n";
        assert_eq!(snmp_value(t, "Icmp", "InEchos"), Some(4));
        assert_eq!(snmp_value(t, "Ip", "DefaultTTL"), Some(64));
        assert_eq!(snmp_value(t, "Icmp", "OutEchos"), None);
    }
}
