//! Packet captures inside a host: tcpdump writes a pcap file, the
//! scenario reads it with [`crate::pcap`] (not tcpdump's text, which
//! changes between releases).

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::lab::{Daemon, DaemonKind, Host, Lab};
use crate::pcap::{self, Segment};

/// A running tcpdump and the file it writes.
pub struct Capture {
    pub daemon: Daemon,
    pub file: PathBuf,
}

impl Capture {
    /// Starts `tcpdump -i IFNAME -U -w FILE FILTER...` inside `host` and
    /// waits until it is capturing, so no packet sent after this returns
    /// is missed. `--immediate-mode` hands each packet to tcpdump at once
    /// (not when a kernel ring block fills) and `-U` writes it at once,
    /// so the file can be read while tcpdump runs.
    pub fn start(lab: &Lab, host: &Host, ifname: &str, filter: &[&str]) -> Result<Capture> {
        let name = format!("tcpdump-{}-{ifname}", host.name);
        let file = lab.dir().join(format!("{}-{ifname}.pcap", host.name));
        let f = file.to_string_lossy().into_owned();
        let mut args = vec![
            "tcpdump",
            "-i",
            ifname,
            "--immediate-mode",
            "-U",
            "-n",
            "-s",
            "0",
            "-Z",
            "root",
            "-w",
            &f,
        ];
        args.extend_from_slice(filter);
        let daemon = lab.spawn_daemon(host, &name, DaemonKind::Other, file.clone(), &args)?;
        // tcpdump says `listening on IF` once the capture is open.
        lab.wait_until(
            crate::wait::DAEMON_START,
            &format!("{name} capturing"),
            || {
                if !lab.is_running(&daemon) {
                    return Err(Error::Check(format!("{name} exited")));
                }
                let log = std::fs::read_to_string(&daemon.log)
                    .map_err(|e| Error::io(format!("read {}", daemon.log.display()), e))?;
                Ok(log.contains("listening on"))
            },
        )?;
        Ok(Capture { daemon, file })
    }

    /// The TCP segments captured so far.
    pub fn segments(&self) -> Result<Vec<Segment>> {
        pcap::read(&self.file)
    }
}

/// A one-line summary of segments for messages: `src>dst flags hlim md5`.
pub fn summary(segs: &[Segment]) -> String {
    let mut out: Vec<String> = segs
        .iter()
        .take(40)
        .map(|s| {
            format!(
                "{}.{}>{}.{} f={:#04x} hl={}{}",
                s.src,
                s.sport,
                s.dst,
                s.dport,
                s.flags,
                s.hop_limit,
                if s.md5 { " md5" } else { "" }
            )
        })
        .collect();
    if segs.len() > 40 {
        out.push(format!("... {} more", segs.len() - 40));
    }
    out.join("; ")
}
