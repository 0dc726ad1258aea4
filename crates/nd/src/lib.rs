//! IPv6 neighbour discovery for BGP unnumbered (interface peering).
//!
//! On a point-to-point link that carries only link-local addresses nobody
//! configures the peer's address: each side learns it from the other's
//! Router Advertisements (and Neighbor Solicitations/Advertisements), as
//! FRR's `neighbor eth0 interface` does. [`Discovery`] does both halves on
//! one interface: it sends Router Advertisements (three at start a second
//! apart, one in answer to a Router Solicitation or to a newly heard peer,
//! then every `interval`) so peers like
//! FRR can find us, and it publishes the peer's link-local address on a
//! `watch` channel. Router lifetime is 0 (RFC 4861 §6.2.1): we are a
//! router for BGP's sake, never a default gateway.
//!
//! No netlink here (that is `fib`'s): a raw ICMPv6 socket bound to the
//! interface, hop limit 255 both ways (RFC 4861 §6.1).

#![deny(unsafe_code)]

pub mod addrs;
pub mod interfaces;
pub mod packet;
pub mod socket;
#[allow(unsafe_code)]
mod sys;

use std::net::Ipv6Addr;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info};

pub use interfaces::{InterfaceWatch, Peers};
pub use packet::{DecodeError, NdMessage};
pub use socket::NdSocket;

/// Errors of [`Discovery::start`].
#[derive(Debug, thiserror::Error)]
pub enum NdError {
    #[error("interface {0:?} does not exist")]
    NoInterface(String),
    #[error("{ifname}: {what}: {source}")]
    Socket {
        ifname: String,
        what: &'static str,
        source: std::io::Error,
    },
}

/// How often and whether to advertise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdConfig {
    /// Unsolicited Router Advertisement interval. RFC 4861 §6.2.1 allows
    /// 4 s and up; FRR uses 10 s on unnumbered BGP interfaces.
    pub interval: Duration,
    /// Send Router Advertisements (off: only listen).
    pub advertise: bool,
    /// At most one solicited advertisement per this long (RFC 4861
    /// §6.2.6 rate-limits answers to solicitations).
    pub min_answer_gap: Duration,
}

impl Default for NdConfig {
    fn default() -> Self {
        NdConfig {
            interval: Duration::from_secs(10),
            advertise: true,
            min_answer_gap: Duration::from_secs(1),
        }
    }
}

/// Neighbour discovery running on one interface until dropped.
#[derive(Debug)]
pub struct Discovery {
    ifname: String,
    ifindex: u32,
    peer: watch::Receiver<Option<Ipv6Addr>>,
    task: JoinHandle<()>,
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Discovery {
    /// Starts discovery on `ifname` with the default config. Must be
    /// called inside a tokio runtime; the socket belongs to the network
    /// namespace of the calling thread.
    pub fn start(ifname: &str) -> Result<Discovery, NdError> {
        Self::start_with(ifname, NdConfig::default())
    }

    /// Starts discovery with `cfg`.
    pub fn start_with(ifname: &str, cfg: NdConfig) -> Result<Discovery, NdError> {
        let sock = NdSocket::open(ifname)?;
        let (tx, rx) = watch::channel(None);
        let ifindex = sock.ifindex();
        let task = tokio::spawn(run(sock, cfg, tx));
        Ok(Discovery {
            ifname: ifname.to_string(),
            ifindex,
            peer: rx,
            task,
        })
    }

    /// The peer's link-local address as last learned (`None` until one
    /// is heard); changes when the peer's address does.
    pub fn peer(&self) -> watch::Receiver<Option<Ipv6Addr>> {
        self.peer.clone()
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The interface index: the scope of the peer's address.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }
}

/// What a received message teaches: the address to take as the peer's,
/// and whether to answer with a Router Advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Learned {
    pub peer: Option<Ipv6Addr>,
    pub answer: bool,
}

/// The decision for one received message, given what is known. Router
/// messages (RA, RS) name the peer outright, and a new one replaces the
/// old (the peer's address changed); neighbour messages (NS, NA) only
/// fill in an address not known yet, since a host answering DAD or
/// resolution is weaker evidence of who the BGP peer is.
pub fn learn(
    msg: &NdMessage,
    source: Ipv6Addr,
    hop_limit: Option<u8>,
    ours: &[Ipv6Addr],
    known: Option<Ipv6Addr>,
) -> Learned {
    if !packet::acceptable(hop_limit, &source, ours) {
        return Learned {
            peer: None,
            answer: false,
        };
    }
    match msg {
        NdMessage::RouterAdvertisement { .. } => Learned {
            peer: Some(source),
            answer: false,
        },
        NdMessage::RouterSolicitation { .. } => Learned {
            peer: Some(source),
            answer: true,
        },
        NdMessage::NeighborSolicitation { .. } | NdMessage::NeighborAdvertisement { .. } => {
            Learned {
                peer: known.is_none().then_some(source),
                answer: false,
            }
        }
    }
}

async fn advertise(sock: &NdSocket, dst: Ipv6Addr) {
    let ra = NdMessage::bare_ra(sock.mac()).encode();
    if let Err(e) = sock.send_to(&ra, dst).await {
        // Link down or no link-local address yet: the next tick retries.
        debug!(ifname = sock.ifname(), error = %e, "router advertisement not sent");
    }
}

/// RFC 4861 §6.2.4: the first few advertisements (MAX_INITIAL_RTR_ADVERTISEMENTS)
/// may go out sooner than the regular interval; a lost first packet then
/// costs a second, not a whole interval.
const INITIAL_ADVERTISEMENTS: u32 = 3;
const INITIAL_GAP: Duration = Duration::from_secs(1);
/// How often the link's carrier is looked at.
const LINK_CHECK: Duration = Duration::from_secs(1);

async fn run(sock: NdSocket, cfg: NdConfig, tx: watch::Sender<Option<Ipv6Addr>>) {
    let rs = NdMessage::RouterSolicitation {
        source_ll: sock.mac(),
    }
    .encode();
    let mut initial = INITIAL_ADVERTISEMENTS;
    let next = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(next);
    let mut last_answer: Option<tokio::time::Instant> = None;
    let mut link_check = tokio::time::interval(LINK_CHECK);
    let mut running = sock.link_running().unwrap_or(false);
    loop {
        tokio::select! {
            _ = link_check.tick() => {
                // Carrier back (the peer's port came up, or ours): the
                // peer may have forgotten us; start over with the quick
                // initial advertisements.
                let now_running = sock.link_running().unwrap_or(false);
                if now_running && !running {
                    debug!(ifname = sock.ifname(), "link up: advertising again");
                    initial = INITIAL_ADVERTISEMENTS;
                    next.as_mut().reset(tokio::time::Instant::now());
                }
                running = now_running;
            }
            () = &mut next => {
                // While nobody is known, also ask (RFC 4861 §6.3.7).
                if tx.borrow().is_none() && initial > 0 {
                    if let Err(e) = sock.send_to(&rs, socket::ALL_ROUTERS).await {
                        debug!(ifname = sock.ifname(), error = %e, "router solicitation not sent");
                    }
                }
                if cfg.advertise {
                    advertise(&sock, socket::ALL_NODES).await;
                }
                let gap = if initial > 1 { INITIAL_GAP.min(cfg.interval) } else { cfg.interval };
                initial = initial.saturating_sub(1);
                next.as_mut().reset(tokio::time::Instant::now() + gap);
            }
            got = sock.recv() => {
                let r = match got {
                    Ok(r) => r,
                    Err(e) => {
                        debug!(ifname = sock.ifname(), error = %e, "receive failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let msg = match NdMessage::decode(&r.bytes) {
                    Ok(m) => m,
                    Err(e) => {
                        debug!(ifname = sock.ifname(), source = %r.source, error = %e, "ignored");
                        continue;
                    }
                };
                let ours = socket::interface_addresses(sock.ifname());
                let known = *tx.borrow();
                let l = learn(&msg, r.source, r.hop_limit, &ours, known);
                let mut answer = l.answer;
                if let Some(p) = l.peer {
                    if known != Some(p) {
                        info!(ifname = sock.ifname(), peer = %p, "peer link-local address learned");
                        tx.send_replace(Some(p));
                        // A new peer may have missed our advertisements:
                        // tell it directly, so both sides know each other
                        // at once.
                        answer = true;
                    }
                }
                let now = tokio::time::Instant::now();
                if answer && cfg.advertise
                    && last_answer.is_none_or(|t| now.duration_since(t) >= cfg.min_answer_gap)
                {
                    last_answer = Some(now);
                    advertise(&sock, r.source).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    const PEER2: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 3);
    const ME: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);

    #[test]
    fn router_messages_name_the_peer_and_follow_changes() {
        let ra = NdMessage::bare_ra(None);
        let l = learn(&ra, PEER, Some(255), &[ME], None);
        assert_eq!(l.peer, Some(PEER));
        assert!(!l.answer);
        let l = learn(&ra, PEER2, Some(255), &[ME], Some(PEER));
        assert_eq!(l.peer, Some(PEER2), "a new RA source replaces the old");
        let rs = NdMessage::RouterSolicitation { source_ll: None };
        let l = learn(&rs, PEER, Some(255), &[ME], None);
        assert_eq!(l.peer, Some(PEER));
        assert!(l.answer, "a solicitation is answered");
    }

    #[test]
    fn neighbour_messages_only_fill_a_gap() {
        let na = NdMessage::NeighborAdvertisement {
            flags: 0x40,
            target: PEER,
            target_ll: None,
        };
        assert_eq!(learn(&na, PEER, Some(255), &[ME], None).peer, Some(PEER));
        assert_eq!(learn(&na, PEER2, Some(255), &[ME], Some(PEER)).peer, None);
    }

    #[test]
    fn forwarded_or_own_messages_teach_nothing() {
        let ra = NdMessage::bare_ra(None);
        assert_eq!(learn(&ra, PEER, Some(64), &[ME], None).peer, None);
        let rs = NdMessage::RouterSolicitation { source_ll: None };
        let l = learn(&rs, ME, Some(255), &[ME], None);
        assert_eq!(l.peer, None);
        assert!(!l.answer);
    }

    #[tokio::test]
    async fn unknown_interface_is_an_error() {
        match Discovery::start("no-such-if0") {
            Err(NdError::NoInterface(n)) => assert_eq!(n, "no-such-if0"),
            other => panic!("expected NoInterface, got {other:?}"),
        }
    }
}
