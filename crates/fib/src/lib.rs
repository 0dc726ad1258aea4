//! FIB sync: turns route changes into Linux kernel routes over rtnetlink.
//!
//! This is the only code in via6 that talks to netlink. One owner thread
//! holds the sockets and the planner (all per-route state, no I/O, so its
//! decisions are tested without root); [`Fib`] is a cheap handle that
//! sends it commands over a bounded channel.
//!
//! Invariants:
//! - A route is created with `NLM_F_EXCL`, so the kernel refuses rather
//!   than overwrites a route with the same (table, prefix, tos, metric) key;
//!   replace (`NLM_F_REPLACE`, which ignores the protocol) is only sent for
//!   routes we installed or found with our protocol at start.
//! - Deletes carry our protocol, so the kernel never matches a foreign route.
//! - Routes of our protocol found at start are kept untouched when still
//!   wanted, and removed only after [`Fib::initial_sync_done`] or the stale
//!   timeout, so a restart does not interrupt traffic.
//!
//! See README.md for the write path (packed batches, one ACK per batch, a
//! sender thread, spread-out write order) and measured figures.

mod exec;
mod hopsets;
mod nexthops;
mod nl;
mod owner;
mod plan;
mod routes;
mod sender;
mod sys;

/// The netlink codec, open only for the measurements of
/// `examples/nl_codec.rs` (README.md, "Why hand-built where it is"); not
/// an API.
#[doc(hidden)]
pub mod codec {
    pub use crate::nl::{
        parse_route, parse_route_raw, put_route, put_route_typed, KernelRoute, Messages, MsgBuf,
        RouteOp, RouteParams,
    };
}

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

/// FIB settings (`fib:` in the daemon config).
#[derive(Clone, Debug)]
pub struct FibConfig {
    /// Kernel routing table (254 is `main`).
    pub table: u32,
    /// Route protocol stamped on our routes; ownership is judged by it
    /// (186 is `bgp` in /etc/iproute2/rt_protos).
    pub protocol: u8,
    /// Route metric (priority). IPv6 metric 0 is stored by the kernel as 1024.
    pub metric: u32,
    /// `RTA_PREFSRC` for IPv4 routes; added as a /32 on `lo` when the host
    /// does not have it, which lets an IPv6-only host source IPv4 at all.
    pub source_address: Option<Ipv4Addr>,
    /// Remove stale routes of our protocol this long after start even if
    /// [`Fib::initial_sync_done`] was never called.
    pub stale_timeout: Duration,
    /// Keep our routes (and the source address and nexthop objects they
    /// use) in the kernel at shutdown (graceful restart).
    pub keep_on_exit: bool,
    /// Refuse to install more than this many routes (protects the kernel).
    pub max_routes: Option<usize>,
    /// Run the netlink sockets inside this network namespace (a path such
    /// as `/run/netns/NAME`); `None` is the caller's namespace.
    pub netns: Option<PathBuf>,
    /// Bytes of route requests packed into one `sendmsg` (capped by the
    /// socket's send buffer).
    pub batch_bytes: usize,
    /// Install routes through nexthop objects (`RTA_NH_ID`): one object
    /// per gateway and interface, one multipath group per ECMP hop set.
    /// The kernel then validates a gateway once instead of once per route
    /// (full tables go in about twice as fast, ECMP ones about three
    /// times). `ip route` shows these routes with an extra `nhid N`. Hops
    /// without an interface keep their route inline. Falls back to plain
    /// routes on kernels without nexthop objects.
    pub nexthop_objects: bool,
    /// How often to dump our protocol's routes and repair differences
    /// (a route of ours deleted by hand comes back). `None` disables.
    pub audit_interval: Option<Duration>,
    /// How often routes that failed or were blocked by a foreign route
    /// are tried again.
    pub retry_interval: Duration,
}

impl Default for FibConfig {
    fn default() -> Self {
        FibConfig {
            table: 254,
            protocol: 186,
            metric: 20,
            source_address: None,
            stale_timeout: Duration::from_secs(120),
            keep_on_exit: false,
            max_routes: None,
            netns: None,
            batch_bytes: 256 * 1024,
            nexthop_objects: true,
            retry_interval: Duration::from_secs(30),
            audit_interval: Some(Duration::from_secs(300)),
        }
    }
}

/// One next hop of a kernel route, and the shared set of a route's next
/// hops: the RIB's own type, so its interned sets arrive as they are and
/// the owner recognises a repeated set by its pointer. A link-local
/// gateway without an interface cannot be built.
pub use nexthop::{Gateway, GatewayError, NextHopSet};

/// A change to the wanted FIB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FibChange {
    /// Add or replace; more than one next hop makes an ECMP route (a
    /// nexthop group, or `RTA_MULTIPATH` without nexthop objects).
    Install {
        prefix: IpNet,
        next_hops: NextHopSet,
    },
    /// Withdraw our route for this prefix.
    Remove { prefix: IpNet },
}

/// Errors of the FIB as a whole (per-route failures are in [`FibStatus`]).
#[derive(Debug, thiserror::Error)]
pub enum FibError {
    #[error("cannot enter network namespace {path}: {source}")]
    Netns {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("netlink: {0}")]
    Netlink(#[from] nl::NlError),
    #[error("cannot {what} source address {addr}: {source}")]
    SourceAddress {
        what: &'static str,
        addr: Ipv4Addr,
        #[source]
        source: nl::NlError,
    },
    #[error("cannot start the FIB thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("the FIB task has stopped")]
    Closed,
}

/// A route the kernel refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailedRoute {
    pub prefix: IpNet,
    pub error: String,
}

/// A wanted route blocked by a route we did not install.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ForeignConflict {
    pub prefix: IpNet,
    /// What the kernel has there, e.g. `proto static metric 20 via 192.0.2.1 dev 3`.
    pub existing: String,
}

/// Snapshot of the FIB for `via6ctl fib`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FibStatus {
    /// Routes in the kernel that we own and still want.
    pub installed: usize,
    /// Wanted changes not yet written to the kernel.
    pub pending: usize,
    /// Routes wanted but absent because every next-hop interface is down.
    pub link_down: usize,
    /// Routes of our protocol found at start and not (yet) wanted again.
    pub stale: usize,
    /// True once stale routes were removed (End-of-RIB or timeout).
    pub initial_sync_done: bool,
    /// The source address was added by us to `lo`.
    pub source_address_added: bool,
    /// Distinct next-hop sets in use (wanted, or in the kernel).
    pub hop_sets: usize,
    /// Our nexthop objects and groups in the kernel (as far as we know).
    pub nexthop_objects: usize,
    pub failed_count: usize,
    /// At most [`STATUS_LIST_MAX`] entries, sorted by prefix.
    pub failed: Vec<FailedRoute>,
    pub conflict_count: usize,
    /// At most [`STATUS_LIST_MAX`] entries, sorted by prefix.
    pub conflicts: Vec<ForeignConflict>,
}

/// Cap on the per-route lists in [`FibStatus`], so a full table of failures
/// does not become a megabyte of JSON.
pub const STATUS_LIST_MAX: usize = 1000;

/// Changes handed to [`Fib::apply`] that the owner thread has not taken
/// yet. `apply` waits for room beyond this, so a full table never queues
/// whole (memory), while the owner always finds a large set to write
/// (the kernel works best on large, spread-out sets).
pub const QUEUE_CHANGES: u32 = 128 * 1024;

enum Cmd {
    /// The permit holds the changes' room in the queue until the owner
    /// takes them.
    Apply(Vec<FibChange>, OwnedSemaphorePermit),
    Flush(oneshot::Sender<()>),
    SyncDone(oneshot::Sender<()>),
    Status(oneshot::Sender<FibStatus>),
    Shutdown(oneshot::Sender<Result<(), FibError>>),
}

/// Makes glibc give every allocation of 4 MiB or more pages of its own
/// (`M_MMAP_THRESHOLD`), handed back to the kernel when freed. By default
/// the threshold follows the largest block freed, up to 32 MiB, so after
/// the first big table is freed the full-table buffers (route maps that
/// grow, a flush's dirty list) come from the heap and what they leave
/// behind stays resident. Full-table load (`bench/run`, medians of 3
/// alternating runs): RSS at full FIB 126.4 -> 119.0 MB, peak RSS 129.6
/// -> 123.1 MB (worst run 156.6 -> 124.3 MB), FIB time 3.82 -> 3.77 s.
/// A threshold of 1 MiB cost the load 0.5-1 s (netlink batches mapped and
/// unmapped again and again); jemalloc and mimalloc (preloaded) left
/// 10-25 MB more resident. Call once at start, before the table arrives;
/// it changes the whole process.
pub fn map_large_allocations() {
    sys::map_large_allocations();
}

/// Handle to the FIB owner thread. Cloning is cheap; dropping every handle
/// without [`Fib::shutdown`] leaves the kernel routes in place (like a crash).
#[derive(Clone)]
pub struct Fib {
    tx: mpsc::Sender<Cmd>,
    room: Arc<Semaphore>,
}

impl Fib {
    /// Open netlink (inside `config.netns` when set), add the source address
    /// to `lo` if missing, and dump our protocol's routes in our table as
    /// stale candidates.
    pub async fn start(config: FibConfig) -> Result<Fib, FibError> {
        let (tx, rx) = mpsc::channel(1024);
        let (ready_tx, ready_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("fib".into())
            .spawn(move || owner::run(config, rx, ready_tx))
            .map_err(FibError::Thread)?;
        ready_rx.await.map_err(|_| FibError::Closed)??;
        Ok(Fib {
            tx,
            room: Arc::new(Semaphore::new(QUEUE_CHANGES as usize)),
        })
    }

    /// Queue changes. They are coalesced per prefix (the last change wins)
    /// and written in batches; returns once queued (waiting while
    /// [`QUEUE_CHANGES`] changes wait for the owner), see [`Fib::flush`].
    pub async fn apply(&self, changes: Vec<FibChange>) -> Result<(), FibError> {
        let n = u32::try_from(changes.len())
            .unwrap_or(u32::MAX)
            .clamp(1, QUEUE_CHANGES);
        let permit = self
            .room
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| FibError::Closed)?;
        self.tx
            .send(Cmd::Apply(changes, permit))
            .await
            .map_err(|_| FibError::Closed)
    }

    /// Wait until every change queued before this call was written to the
    /// kernel and acknowledged.
    pub async fn flush(&self) -> Result<(), FibError> {
        let (t, r) = oneshot::channel();
        self.tx
            .send(Cmd::Flush(t))
            .await
            .map_err(|_| FibError::Closed)?;
        r.await.map_err(|_| FibError::Closed)
    }

    /// Every peer sent End-of-RIB: remove routes of our protocol found at
    /// start that nobody wanted again. Also happens after `stale_timeout`.
    pub async fn initial_sync_done(&self) {
        let (t, r) = oneshot::channel();
        if self.tx.send(Cmd::SyncDone(t)).await.is_ok() {
            let _ = r.await;
        }
    }

    /// Current state; per-route lists are capped at [`STATUS_LIST_MAX`].
    pub async fn status(&self) -> FibStatus {
        let (t, r) = oneshot::channel();
        if self.tx.send(Cmd::Status(t)).await.is_err() {
            return FibStatus::default();
        }
        r.await.unwrap_or_default()
    }

    /// Remove our routes (unless `keep_on_exit`) and the `lo` address if we
    /// added it, then stop the owner thread.
    pub async fn shutdown(self) -> Result<(), FibError> {
        let (t, r) = oneshot::channel();
        self.tx
            .send(Cmd::Shutdown(t))
            .await
            .map_err(|_| FibError::Closed)?;
        r.await.map_err(|_| FibError::Closed)?
    }
}

#[cfg(test)]
mod queue_tests {
    use super::*;

    fn removes(n: usize) -> Vec<FibChange> {
        (0..n)
            .map(|i| FibChange::Remove {
                prefix: IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(i as u32), 32).unwrap()),
            })
            .collect()
    }

    #[tokio::test]
    async fn apply_waits_while_the_queue_is_full_and_resumes_when_taken() {
        let (tx, mut rx) = mpsc::channel(1024);
        let fib = Fib {
            tx,
            room: Arc::new(Semaphore::new(QUEUE_CHANGES as usize)),
        };
        fib.apply(removes(QUEUE_CHANGES as usize)).await.unwrap();
        let second = fib.apply(removes(10));
        tokio::pin!(second);
        let waited = tokio::time::timeout(Duration::from_millis(100), &mut second).await;
        assert!(waited.is_err(), "apply must wait for room");
        // The owner takes the first batch: its room comes back.
        match rx.recv().await {
            Some(Cmd::Apply(ch, room)) => {
                assert_eq!(ch.len(), QUEUE_CHANGES as usize);
                drop(room);
            }
            _ => panic!("expected the first batch"),
        }
        tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("apply resumes once the owner took the queue")
            .unwrap();
    }
}
