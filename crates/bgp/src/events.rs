//! Messages on the channels between the session tasks, the RIB task and
//! the FIB sync. Every channel is bounded.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;
use wire::{CodecContext, Family};

/// Identifies one configured neighbour for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct PeerId(pub u32);

/// What a session learned when it reached Established: everything the RIB
/// needs to judge and send routes for this peer.
#[derive(Debug, Clone, PartialEq)]
pub struct EstablishedSession {
    pub peer: PeerId,
    pub peer_address: IpAddr,
    pub peer_as: u32,
    pub peer_router_id: std::net::Ipv4Addr,
    pub local_as: u32,
    pub local_address: IpAddr,
    /// Our link-local address on the session's interface, if any: the
    /// link-local half of the next hops we send.
    pub local_link_local: Option<Ipv6Addr>,
    /// Our global IPv6 address for next hops (the session's local address
    /// when it is global), if any.
    pub local_global_v6: Option<Ipv6Addr>,
    /// Our IPv4 address for classic NEXT_HOP, if any.
    pub local_ipv4: Option<std::net::Ipv4Addr>,
    /// Interface the session runs over (link-local sessions, or the one
    /// that holds the connected prefix): a link-local next hop from this
    /// peer belongs to it.
    pub ifindex: Option<u32>,
    pub ebgp: bool,
    /// Families both sides announced (RFC 4760 §8).
    pub families: Vec<Family>,
    /// Codec facts: 4-octet AS, extended message, extended next hop.
    pub codec: CodecContext,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    /// Graceful restart, when negotiated: which families the peer keeps
    /// forwarding for (F bits), for the RIB's stale routes of this peer.
    pub graceful_restart: Option<crate::graceful::PeerRestart>,
}

/// Most UPDATEs in one [`RibInput::Updates`].
pub const UPDATE_BATCH: usize = 64;
/// A batch also ends once it carries this many prefixes (announced plus
/// withdrawn): the RIB looks at its FIB back-pressure between inputs, and
/// 64 UPDATEs of withdrawals can hold 60,000 prefixes.
pub const BATCH_PREFIXES: usize = 1024;

/// One UPDATE as received. `treat_as_withdraw` per RFC 7606: withdraw every
/// prefix it carries.
#[derive(Debug, Clone)]
pub struct ReceivedUpdate {
    pub update: wire::Update,
    pub treat_as_withdraw: bool,
}

impl ReceivedUpdate {
    /// Prefixes announced and withdrawn, in every family.
    pub fn prefixes(&self) -> usize {
        let a = &self.update.attributes;
        self.update.withdrawn.len()
            + self.update.nlri.len()
            + a.mp_reach.as_ref().map_or(0, |m| m.nlri.len())
            + a.mp_unreach.as_ref().map_or(0, |m| m.withdrawn.len())
    }
}

impl RibInput {
    /// One UPDATE on its own (tests, tools).
    pub fn update(peer: PeerId, update: wire::Update) -> RibInput {
        RibInput::Updates {
            peer,
            updates: vec![ReceivedUpdate {
                update,
                treat_as_withdraw: false,
            }],
        }
    }

    /// How many UPDATEs this input carries.
    pub fn update_count(&self) -> usize {
        match self {
            RibInput::Updates { updates, .. } => updates.len(),
            _ => 0,
        }
    }
}

/// Session -> RIB.
// `Established` is big but sent once per session; boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum RibInput {
    Established {
        session: EstablishedSession,
        /// Where the RIB sends this peer's outbound messages.
        outbound: tokio::sync::mpsc::Sender<PeerOutput>,
    },
    /// The session left Established: its routes go, or stay as stale
    /// ones when it was a graceful restart (RFC 4724 §4.2).
    Down {
        peer: PeerId,
        kind: crate::graceful::DownKind,
    },
    /// Decoded UPDATEs, in the order received: the UPDATEs of one socket
    /// read go over together (at most [`UPDATE_BATCH`]), so that the RIB
    /// wakes once per batch, not once per UPDATE.
    Updates {
        peer: PeerId,
        updates: Vec<ReceivedUpdate>,
    },
    /// The peer asked us to resend a family (RFC 2918 / RFC 7313).
    RouteRefresh { peer: PeerId, family: Family },
}

/// RIB -> session.
#[derive(Debug)]
pub enum PeerOutput {
    /// Encoded BGP messages, ready for the socket.
    Messages(Vec<u8>),
    /// Close the session with this NOTIFICATION (e.g. Cease/1 max-prefix).
    Close(wire::Notification),
}

/// The gateway of a kernel route and the shared, sorted set of one
/// route's gateways: one type from the RIB to the kernel writer, so the
/// RIB's interned sets reach the FIB as they are.
pub use nexthop::{Gateway, GatewayError, NextHopSet};

/// RIB -> FIB sync: Loc-RIB changes in best-path terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteChange {
    /// Add or replace; more than one next hop is an ECMP route.
    Install {
        prefix: IpNet,
        next_hops: NextHopSet,
    },
    Remove {
        prefix: IpNet,
    },
}

/// What the RIB task emits towards the FIB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FibEvent {
    Changes(Vec<RouteChange>),
    /// Every configured peer sent End-of-RIB (or gave up): stale kernel
    /// routes may now go.
    InitialTablesIn,
}

/// How many events a watcher may fall behind by before it loses some
/// (`via6ctl watch`): the RIB never waits for a watcher.
pub const WATCH_CAPACITY: usize = 4096;

/// What changed in a prefix's route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteEventKind {
    Added,
    Changed,
    Removed,
}

/// Where a route in a [`WatchEvent::Route`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteOrigin {
    /// The Loc-RIB best path learned from peers (the kernel route).
    Learned,
    /// `originate:` in the configuration.
    Config,
    /// `via6ctl announce`.
    Runtime,
}

/// Session and route changes for watchers (`via6ctl watch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// A session changed state.
    Session {
        neighbor: IpAddr,
        interface: Option<String>,
        old: crate::fsm::State,
        new: crate::fsm::State,
    },
    /// A prefix's route changed: for learned routes the next hops the
    /// kernel gets, for our own ones none (each peer gets next-hop-self).
    Route {
        prefix: IpNet,
        change: RouteEventKind,
        origin: RouteOrigin,
        next_hops: Vec<Gateway>,
    },
}

/// The sending side of the watch channel: a bounded broadcast, so a slow
/// watcher loses the oldest events (and is told how many) instead of
/// holding up the RIB or a session.
#[derive(Debug, Clone)]
pub struct WatchSender(tokio::sync::broadcast::Sender<WatchEvent>);

impl Default for WatchSender {
    fn default() -> Self {
        WatchSender(tokio::sync::broadcast::channel(WATCH_CAPACITY).0)
    }
}

impl WatchSender {
    /// Whether anyone listens: the RIB builds no event when nobody does.
    pub fn watched(&self) -> bool {
        self.0.receiver_count() > 0
    }

    /// Sends without waiting; an event nobody listens to is dropped.
    pub fn send(&self, event: WatchEvent) {
        let _ = self.0.send(event);
    }

    /// A new watcher, seeing events from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<WatchEvent> {
        self.0.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_received_update_counts_prefixes_of_every_family() {
        let mut u = wire::Update {
            withdrawn: vec!["192.0.2.0/24".parse().unwrap()],
            nlri: vec!["198.51.100.0/24".parse().unwrap(); 2],
            ..Default::default()
        };
        u.attributes.mp_unreach = Some(wire::MpUnreach {
            family: wire::Family::Ipv4Unicast,
            withdrawn: vec!["203.0.113.0/24".parse::<wire::IpNet>().unwrap(); 3],
        });
        let r = ReceivedUpdate {
            update: u,
            treat_as_withdraw: false,
        };
        assert_eq!(r.prefixes(), 6);
        let one = RibInput::update(PeerId(1), wire::Update::default());
        assert_eq!(one.update_count(), 1);
        let down = RibInput::Down {
            peer: PeerId(1),
            kind: crate::graceful::DownKind::Hard,
        };
        assert_eq!(down.update_count(), 0);
    }
}
