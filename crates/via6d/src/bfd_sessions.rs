//! BFD for BGP neighbours (RFC 5882): the `bfd:` key of a neighbour, the
//! task that keeps one BFD session per BGP session that asks for it
//! (interface peers included, once neighbour discovery has found them),
//! and the coupling: a BFD session going from Up to Down closes its BGP
//! session at once with Cease/10 (RFC 9384), so its routes leave the
//! kernel. A BFD session that never came Up does not hold BGP back.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::config::{Neighbor, RawConfig};

/// How often the sessions are matched against the BGP neighbours (new
/// peers from neighbour discovery, reloads).
const RECONCILE: Duration = Duration::from_secs(1);

/// `bfd: true`, `bfd: false` or `bfd: { min-tx: 300ms, min-rx: 300ms,
/// multiplier: 3, graceful: false }` (defaults 300 ms x 3, not graceful).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "serde_yaml::Value")]
pub struct BfdSetting(pub Option<BfdPeer>);

/// What a neighbour asks of BFD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BfdPeer {
    pub config: bfd::Config,
    /// A Down from a peer whose BFD shares fate with its control plane
    /// (C bit clear) may be that peer restarting: where graceful restart
    /// was negotiated, its routes then stay stale as for a restart
    /// (RFC 5882 §4.3.2). Off: every Down takes the routes out at once.
    pub graceful: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct BfdTimers {
    #[serde(default)]
    min_tx: Option<serde_yaml::Value>,
    #[serde(default)]
    min_rx: Option<serde_yaml::Value>,
    #[serde(default)]
    multiplier: Option<u8>,
    #[serde(default)]
    graceful: bool,
}

/// `300ms`, `1s`, or a number of milliseconds, as microseconds; 10 ms to
/// 60 s (a user-space sender cannot keep anything faster honest).
fn interval(key: &str, v: &serde_yaml::Value) -> Result<u32, String> {
    let ms = match v {
        serde_yaml::Value::Number(n) => n.as_u64(),
        serde_yaml::Value::String(s) => {
            let s = s.trim();
            if let Some(ms) = s.strip_suffix("ms") {
                ms.trim().parse().ok()
            } else if let Some(secs) = s.strip_suffix('s') {
                secs.trim().parse::<u64>().ok().map(|s| s * 1000)
            } else {
                s.parse().ok()
            }
        }
        _ => None,
    };
    match ms {
        Some(ms @ 10..=60_000) => Ok((ms * 1000) as u32),
        Some(ms) => Err(format!("{key}: {ms} ms is outside 10ms..60s")),
        None => Err(format!("{key}: {v:?} is not a duration such as 300ms")),
    }
}

impl TryFrom<serde_yaml::Value> for BfdSetting {
    type Error = String;
    fn try_from(v: serde_yaml::Value) -> Result<Self, String> {
        if let serde_yaml::Value::Bool(on) = v {
            return Ok(BfdSetting(on.then(BfdPeer::default)));
        }
        let t: BfdTimers = serde_yaml::from_value(v).map_err(|e| {
            format!("{e} (bfd is true, false or {{min-tx, min-rx, multiplier, graceful}})")
        })?;
        let d = bfd::Config::default();
        let desired_min_tx = t
            .min_tx
            .as_ref()
            .map_or(Ok(d.desired_min_tx), |v| interval("min-tx", v))?;
        let required_min_rx = t
            .min_rx
            .as_ref()
            .map_or(Ok(d.required_min_rx), |v| interval("min-rx", v))?;
        let detect_mult = match t.multiplier {
            None => d.detect_mult,
            Some(0) => return Err("multiplier: must be 1 to 255".into()),
            Some(m) => m,
        };
        Ok(BfdSetting(Some(BfdPeer {
            config: bfd::Config {
                desired_min_tx,
                required_min_rx,
                detect_mult,
            },
            graceful: t.graceful,
        })))
    }
}

/// What BFD the BGP session to `address` on `interface` gets, if the
/// configured neighbour it came from asks for BFD.
fn setting_for(
    neighbors: &[Neighbor],
    address: IpAddr,
    interface: Option<&str>,
) -> Option<BfdPeer> {
    neighbors.iter().find_map(|n| {
        let matches = match (&n.address, &n.interface, &n.interface_pattern) {
            (Some(a), _, _) => a.address == address && a.interface.as_deref() == interface,
            (None, Some(i), _) => interface == Some(i.0.as_str()),
            (None, None, Some(p)) => {
                interface.is_some_and(|i| bgp::config::interface_matches(&p.0, i))
            }
            (None, None, None) => false,
        };
        if matches {
            n.bfd.and_then(|b| b.0)
        } else {
            None
        }
    })
}

/// What one BFD session should be: its timers, and the source address
/// of its packets, the BGP session's own local address once it has one
/// (so the peer sees BFD from the address it peers BGP with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub config: bfd::Config,
    pub local: Option<IpAddr>,
}

/// One BFD session per BGP session whose neighbour has `bfd:` on, keyed
/// by address and interface. Interface peers appear once discovered.
pub fn wanted(
    raw: &RawConfig,
    sessions: &[bgp::NeighborStatus],
) -> BTreeMap<(IpAddr, Option<String>), Wanted> {
    sessions
        .iter()
        .filter(|s| !s.address.is_unspecified())
        .filter_map(|s| {
            let config = setting_for(&raw.neighbors, s.address, s.interface.as_deref())?.config;
            let local = s
                .local_address
                .map(|a| a.ip().to_canonical())
                .filter(|l| l.is_ipv6() == s.address.is_ipv6() && !l.is_unspecified());
            Some(((s.address, s.interface.clone()), Wanted { config, local }))
        })
        .collect()
}

/// Whether any neighbour asks for BFD (the BFD thread starts only then).
pub fn any(raw: &RawConfig) -> bool {
    raw.neighbors
        .iter()
        .any(|n| n.bfd.is_some_and(|b| b.0.is_some()))
}

/// The BFD thread, started the first time a neighbour asks for BFD;
/// shared with the control socket and the metrics.
pub type BfdCell = Arc<OnceLock<bfd::Bfd>>;

/// Keeps the BFD sessions in line with the BGP sessions and the config
/// (`config` follows reloads), and brings a BGP session down when its BFD
/// session goes Down.
pub async fn run(
    cell: BfdCell,
    speaker: bgp::SpeakerHandle,
    mut config: watch::Receiver<RawConfig>,
) {
    let mut tick = tokio::time::interval(RECONCILE);
    let mut changes: Option<mpsc::UnboundedReceiver<bfd::StateChange>> = None;
    let mut warned = false;
    loop {
        tokio::select! {
            c = next_change(&mut changes) => match c {
                Some(c) => {
                    let neighbors = config.borrow().neighbors.clone();
                    couple(&speaker, &neighbors, c).await
                }
                None => changes = None,
            },
            _ = tick.tick() => {
                let raw = config.borrow_and_update().clone();
                if cell.get().is_none() && any(&raw) {
                    match bfd::Bfd::start(bfd::sockets::CONTROL_PORT) {
                        Ok((b, rx)) => {
                            let _ = cell.set(b);
                            changes = Some(rx);
                            info!("BFD started");
                        }
                        Err(e) if !warned => {
                            warned = true;
                            warn!(error = %e, "BFD cannot start; retrying every second");
                        }
                        Err(_) => {}
                    }
                }
                if let Some(b) = cell.get() {
                    reconcile(b, &raw, &speaker).await;
                }
            }
        }
    }
}

async fn next_change(
    rx: &mut Option<mpsc::UnboundedReceiver<bfd::StateChange>>,
) -> Option<bfd::StateChange> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// RFC 5882 §4.2: Up to Down means the forwarding path failed, unless
/// the remote said AdminDown (§3.2: not a failure). A session that never
/// came Up fails nothing.
fn is_failure(c: &bfd::StateChange) -> bool {
    c.from == bfd::State::Up && c.to == bfd::State::Down && c.remote != bfd::State::AdminDown
}

/// RFC 5882 §4.3.2: a Down may be a restart only when the peer's BFD
/// shares fate with its control plane (C bit clear) and the neighbour
/// asks for it (`graceful: true`); graceful restart must still have been
/// negotiated, which the BGP session checks.
fn may_be_restart(neighbors: &[Neighbor], c: &bfd::StateChange) -> bool {
    !c.remote_control_plane_independent
        && setting_for(neighbors, c.peer, c.interface.as_deref()).is_some_and(|b| b.graceful)
}

async fn couple(speaker: &bgp::SpeakerHandle, neighbors: &[Neighbor], c: bfd::StateChange) {
    if !is_failure(&c) {
        return;
    }
    let restart = may_be_restart(neighbors, &c);
    warn!(peer = %c.peer, interface = ?c.interface, diag = %c.diag, restart, "BFD down: closing the BGP session (Cease/10)");
    if let Err(e) = speaker
        .bfd_down(c.peer, c.interface.as_deref(), restart)
        .await
    {
        warn!(peer = %c.peer, error = %e, "BFD down for no BGP session");
    }
}

/// Sessions nobody wants any more end; new ones start; a session whose
/// timers or source address changed is updated in place (timers by a
/// Poll sequence, RFC 5880 §6.8.3), so a reload that only retunes BFD
/// never takes a BGP session down.
async fn reconcile(bfd: &bfd::Bfd, raw: &RawConfig, speaker: &bgp::SpeakerHandle) {
    let want = wanted(raw, &speaker.neighbors().await);
    let Ok(have) = bfd.sessions().await else {
        return;
    };
    let key_of = |s: &bfd::SessionInfo| bfd::PeerKey {
        peer: s.peer,
        ifindex: s.interface.as_deref().and_then(ifindex).unwrap_or(0),
    };
    for s in &have {
        match want.get(&(s.peer, s.interface.clone())) {
            None => {
                let _ = bfd.remove(key_of(s)).await;
            }
            Some(w) if w.config != s.config || w.local != s.local => {
                if w.config != s.config {
                    info!(peer = %s.peer, interface = ?s.interface, "BFD timers changed: Poll sequence");
                }
                let _ = bfd.update(key_of(s), w.config, w.local).await;
            }
            Some(_) => {}
        }
    }
    for ((peer, interface), w) in want {
        if have
            .iter()
            .any(|s| s.peer == peer && s.interface == interface)
        {
            continue;
        }
        let spec = bfd::PeerSpec {
            peer,
            interface: interface.clone(),
            local: w.local,
            config: w.config,
        };
        match bfd.add(spec).await {
            Ok(_) => info!(%peer, ?interface, "BFD session started"),
            Err(e) => warn!(%peer, ?interface, error = %e, "BFD session not started"),
        }
    }
}

fn ifindex(name: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<BfdSetting, String> {
        serde_yaml::from_str::<BfdSetting>(yaml).map_err(|e| e.to_string())
    }

    const CONFIG: &str = "\
router-id: 192.0.2.2
asn: 65002
neighbors:
  - address: fe80::1%eth0
    remote-as: 65001
    bfd: true
  - interface: swp1
    remote-as: external
    bfd: { min-tx: 100ms, multiplier: 5, graceful: true }
  - interface-pattern: \"sw*\"
    remote-as: external
  - address: 2001:db8::1
    remote-as: 65003
    bfd: false
control-socket: /tmp/none.sock
";

    #[test]
    fn which_sessions_get_bfd() {
        let c = crate::config::parse(std::path::Path::new("t.yaml"), CONFIG)
            .unwrap_or_else(|e| panic!("{e}"));
        let n = &c.raw.neighbors;
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or_else(|e| panic!("{e}"));
        let d = BfdPeer::default();
        assert_eq!(setting_for(n, ip("fe80::1"), Some("eth0")), Some(d));
        assert_eq!(setting_for(n, ip("fe80::1"), Some("eth1")), None);
        // An interface peer, whatever address discovery found.
        let swp1 = setting_for(n, ip("fe80::99"), Some("swp1"));
        assert_eq!(
            swp1.map(|b| (b.config.desired_min_tx, b.config.detect_mult, b.graceful)),
            Some((100_000, 5, true))
        );
        assert_eq!(
            setting_for(n, ip("fe80::98"), Some("swp2")),
            None,
            "pattern without bfd"
        );
        assert_eq!(setting_for(n, ip("2001:db8::1"), None), None);
        assert!(any(&c.raw));
    }

    #[test]
    fn only_up_to_down_without_admin_down_is_a_failure() {
        use bfd::State::*;
        let change = |from, to, remote| bfd::StateChange {
            peer: IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            interface: None,
            from,
            to,
            diag: bfd::Diag::None,
            remote,
            remote_control_plane_independent: false,
            at: std::time::Instant::now(),
        };
        assert!(is_failure(&change(Up, Down, Down)));
        assert!(is_failure(&change(Up, Down, Up)));
        assert!(!is_failure(&change(Up, Down, AdminDown)));
        assert!(!is_failure(&change(Init, Down, Down)), "never Up");
        assert!(!is_failure(&change(Up, AdminDown, Up)), "our own AdminDown");
        assert!(!is_failure(&change(Down, Up, Up)));
    }

    #[test]
    fn bfd_key_forms() {
        assert_eq!(parse("true"), Ok(BfdSetting(Some(BfdPeer::default()))));
        assert_eq!(parse("false"), Ok(BfdSetting(None)));
        let c = parse("{min-tx: 100ms, min-rx: 1s, multiplier: 5}");
        assert_eq!(
            c,
            Ok(BfdSetting(Some(BfdPeer {
                config: bfd::Config {
                    desired_min_tx: 100_000,
                    required_min_rx: 1_000_000,
                    detect_mult: 5,
                },
                graceful: false,
            })))
        );
        assert_eq!(
            parse("{min-rx: 250}").map(|b| b
                .0
                .map(|b| (b.config.desired_min_tx, b.config.required_min_rx))),
            Ok(Some((300_000, 250_000)))
        );
        assert_eq!(
            parse("{graceful: true}").map(|b| b.0.map(|b| (b.config, b.graceful))),
            Ok(Some((bfd::Config::default(), true)))
        );
        for bad in [
            "{min-tx: 5ms}",
            "{min-tx: fast}",
            "{multiplier: 0}",
            "{interval: 1s}",
            "{graceful: maybe}",
            "3",
        ] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
    }

    /// RFC 5882 §4.3.2: only a peer whose BFD shares fate with its control
    /// plane (C bit clear), on a neighbour with `graceful: true`.
    #[test]
    fn a_down_may_be_a_restart_only_with_c_clear_and_graceful_on() {
        let c = crate::config::parse(std::path::Path::new("t.yaml"), CONFIG)
            .unwrap_or_else(|e| panic!("{e}"));
        let n = &c.raw.neighbors;
        let change = |peer: &str, interface: &str, cpi| bfd::StateChange {
            peer: peer.parse().unwrap_or_else(|e| panic!("{e}")),
            interface: Some(interface.into()),
            from: bfd::State::Up,
            to: bfd::State::Down,
            diag: bfd::Diag::ControlDetectionTimeExpired,
            remote: bfd::State::Down,
            remote_control_plane_independent: cpi,
            at: std::time::Instant::now(),
        };
        assert!(may_be_restart(n, &change("fe80::99", "swp1", false)));
        assert!(
            !may_be_restart(n, &change("fe80::99", "swp1", true)),
            "C set"
        );
        assert!(
            !may_be_restart(n, &change("fe80::1", "eth0", false)),
            "graceful off"
        );
    }
}
