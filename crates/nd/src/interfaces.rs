//! Discovery on every interface a filter selects (`swp*`), as interfaces
//! come and go: the peers found, as one map from interface name to the
//! peer's link-local address.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::Duration;

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
    let mut out = Vec::new();
    // SAFETY: if_nameindex returns an array terminated by a zero entry,
    // freed below with if_freenameindex.
    let head = unsafe { libc::if_nameindex() };
    if head.is_null() {
        return out;
    }
    let mut cur = head;
    loop {
        // SAFETY: `cur` stays within the array up to its terminator.
        let e = unsafe { &*cur };
        if e.if_index == 0 || e.if_name.is_null() {
            break;
        }
        // SAFETY: if_name is a NUL-terminated string owned by the array.
        let name = unsafe { std::ffi::CStr::from_ptr(e.if_name) };
        out.push((e.if_index, name.to_string_lossy().into_owned()));
        // SAFETY: the terminator has not been reached, so the next entry
        // exists.
        cur = unsafe { cur.add(1) };
    }
    // SAFETY: `head` came from if_nameindex and is freed once.
    unsafe { libc::if_freenameindex(head) };
    out
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
}
