//! Discovery on every interface a filter selects (`swp*`), as interfaces
//! come and go: the peers found, as one map from interface name to the
//! peer's link-local address.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::{Discovery, NdConfig};

/// Interface name -> the peer's link-local address on it.
pub type Peers = BTreeMap<String, Ipv6Addr>;

/// How often the interface list is read again.
pub const RESCAN: Duration = Duration::from_secs(2);

/// Runs a [`Discovery`] on each interface whose name passes `select`,
/// starting and stopping them as interfaces appear and disappear.
#[derive(Debug)]
pub struct InterfaceWatch {
    peers: watch::Receiver<Peers>,
    task: JoinHandle<()>,
}

impl Drop for InterfaceWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The interfaces of the calling thread's network namespace: (index,
/// name).
pub fn interfaces() -> Vec<(u32, String)> {
    match nix::net::if_::if_nameindex() {
        Ok(list) => list
            .iter()
            .map(|i| (i.index(), i.name().to_string_lossy().into_owned()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Whether an interface can carry traffic: administratively up and
/// running (carrier), from SIOCGIFFLAGS on a socket of the calling
/// thread's network namespace (sysfs would show the namespace it was
/// mounted in). A missing interface, or a name that cannot be one, is
/// down.
pub fn link_is_up(name: &str) -> bool {
    let Ok(sock) = Socket::new(Domain::IPV6, Type::DGRAM, None) else {
        return false;
    };
    let want = libc::IFF_UP | libc::IFF_RUNNING;
    crate::sys::interface_flags(&sock, name).is_ok_and(|flags| flags & want == want)
}

impl InterfaceWatch {
    /// Starts watching. Must be called inside a tokio runtime.
    pub fn start<F>(select: F, cfg: NdConfig) -> InterfaceWatch
    where
        F: Fn(&str) -> bool + Send + Sync + 'static,
    {
        let (tx, rx) = watch::channel(Peers::new());
        let task = tokio::spawn(run(Arc::new(select), cfg, tx));
        InterfaceWatch { peers: rx, task }
    }

    /// The peers found so far; changes whenever one is found, changes its
    /// address, or its interface goes away.
    pub fn peers(&self) -> watch::Receiver<Peers> {
        self.peers.clone()
    }
}

struct Running {
    ifindex: u32,
    discovery: Discovery,
    peer: watch::Receiver<Option<Ipv6Addr>>,
}

async fn run<F>(select: Arc<F>, cfg: NdConfig, tx: watch::Sender<Peers>)
where
    F: Fn(&str) -> bool + Send + Sync + 'static,
{
    let mut running: BTreeMap<String, Running> = BTreeMap::new();
    let mut rescan = tokio::time::interval(RESCAN);
    loop {
        // Wake on the rescan tick or on any running discovery's news.
        let changed = {
            let mut waits: Vec<_> = running
                .values_mut()
                .map(|r| Box::pin(r.peer.changed()))
                .collect();
            tokio::select! {
                _ = rescan.tick() => false,
                _ = futures_any(&mut waits), if !waits.is_empty() => true,
            }
        };
        if !changed {
            let now: BTreeMap<String, u32> = interfaces()
                .into_iter()
                .filter(|(_, n)| select(n))
                .map(|(i, n)| (n, i))
                .collect();
            running.retain(|name, r| {
                let keep = now.get(name) == Some(&r.ifindex);
                if !keep {
                    info!(ifname = %name, "interface gone; neighbour discovery stopped");
                }
                keep
            });
            for (name, ifindex) in now {
                if running.contains_key(&name) {
                    continue;
                }
                match Discovery::start_with(&name, cfg) {
                    Ok(d) => {
                        let peer = d.peer();
                        running.insert(
                            name,
                            Running {
                                ifindex,
                                discovery: d,
                                peer,
                            },
                        );
                    }
                    Err(e) => warn!(ifname = %name, error = %e, "neighbour discovery not started"),
                }
            }
        }
        let peers: Peers = running
            .iter()
            .filter_map(|(n, r)| (*r.peer.borrow()).map(|a| (n.clone(), a)))
            .collect();
        debug_assert!(running.values().all(|r| r.discovery.ifindex() == r.ifindex));
        tx.send_if_modified(|old| {
            if *old == peers {
                false
            } else {
                *old = peers;
                true
            }
        });
    }
}

/// Resolves when any of `futs` does (a tiny `select_all` without the
/// futures crate).
async fn futures_any<F: std::future::Future + Unpin>(futs: &mut [F]) {
    std::future::poll_fn(|cx| {
        for f in futs.iter_mut() {
            if std::pin::Pin::new(f).poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed() {
        let all = interfaces();
        assert!(all.iter().any(|(i, n)| *i == 1 && n == "lo"), "{all:?}");
    }

    #[test]
    fn link_state_from_interface_flags() {
        assert!(link_is_up("lo"));
        assert!(!link_is_up("no-such-if0"));
        assert!(!link_is_up("bad\0name"));
        assert!(!link_is_up("a-name-longer-than-ifnamsiz"));
        assert!(!link_is_up(""));
    }
}
