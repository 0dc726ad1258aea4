//! The daemon's side of the protocol: its internal status types turned
//! into the shared rows of [`super::protocol`], interfaces named as the
//! daemon sees them.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::protocol::*;

impl From<bgp::fsm::State> for SessionState {
    fn from(s: bgp::fsm::State) -> Self {
        use bgp::fsm::State as S;
        match s {
            S::Idle => SessionState::Idle,
            S::Connect => SessionState::Connect,
            S::Active => SessionState::Active,
            S::OpenSent => SessionState::OpenSent,
            S::OpenConfirm => SessionState::OpenConfirm,
            S::Established => SessionState::Established,
        }
    }
}

/// The name of interface `index` in this process's network namespace, so
/// that replies name interfaces as the daemon sees them.
pub fn interface_name(index: u32) -> Option<String> {
    nix::net::if_::if_indextoname(index)
        .ok()
        .map(|name| name.to_string_lossy().into_owned())
}

/// A socket address as IPv4 where the socket holds an IPv4-mapped IPv6
/// address (an IPv4 peer on the `[::]` listener): `192.0.2.1:179`, not
/// `[::ffff:192.0.2.1]:179`.
pub fn unmapped(a: SocketAddr) -> String {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()).to_string(),
            None => a.to_string(),
        },
        SocketAddr::V4(_) => a.to_string(),
    }
}

fn family_names(f: &[wire::Family]) -> Vec<String> {
    f.iter()
        .map(|f| bgp::negotiate::family_name(*f).to_string())
        .collect()
}

impl From<&bgp::PeerRestart> for RestartRow {
    fn from(g: &bgp::PeerRestart) -> Self {
        let name = |f: wire::Family| bgp::negotiate::family_name(f);
        RestartRow {
            restart_time: g.restart_time,
            restarting: g.restarting,
            notification: g.notification,
            families: g
                .families
                .iter()
                .map(|(f, fwd)| match fwd {
                    true => format!("{} (F)", name(*f)),
                    false => name(*f).to_string(),
                })
                .collect(),
            long_lived: g
                .long_lived
                .iter()
                .map(|(f, t)| format!("{} {t}s", name(*f)))
                .collect(),
        }
    }
}

impl From<&bgp::negotiate::Negotiated> for NegotiatedRow {
    fn from(n: &bgp::negotiate::Negotiated) -> Self {
        NegotiatedRow {
            peer_as: n.peer_as,
            peer_router_id: n.peer_router_id,
            hold_time: n.hold_time,
            keepalive: n.keepalive,
            families: family_names(&n.families),
            extended_next_hop: family_names(&n.extended_next_hop),
            four_octet_as: n.four_octet_as,
            extended_message: n.extended_message,
            route_refresh: n.route_refresh,
            enhanced_route_refresh: n.enhanced_route_refresh,
            graceful_restart: n.graceful_restart.as_ref().map(RestartRow::from),
        }
    }
}

impl From<bgp::NeighborStatus> for NeighborRow {
    fn from(n: bgp::NeighborStatus) -> Self {
        NeighborRow {
            peer: n.peer.0,
            address: n.address,
            interface: n.interface,
            remote_as: n.remote_as,
            description: n.description,
            state: n.state.into(),
            uptime: n.uptime,
            local_address: n.local_address.map(unmapped),
            remote_address: n.remote_address.map(unmapped),
            negotiated: n.negotiated.as_ref().map(NegotiatedRow::from),
            counts: CountsRow {
                received: n.counts.received,
                accepted: n.counts.accepted,
                advertised: n.counts.advertised,
                stale: n.counts.stale,
                stale_for_secs: n.counts.stale_for_secs,
            },
            updates_received: n.updates_received,
            updates_sent: n.updates_sent,
            last_error: n.last_error,
            last_error_at: n.last_error_at,
        }
    }
}

/// A RIB path as a row; `None` only if the RIB's prefix text does not
/// parse (it always does: the RIB writes it from a prefix).
pub fn route_row(r: bgp::RouteStatus) -> Option<RouteRow> {
    Some(RouteRow {
        prefix: r.prefix.parse().ok()?,
        peer: r.peer.map(|p| p.0),
        peer_address: r.peer_address,
        next_hop: r.next_hop,
        next_hop_link_local: r.next_hop_link_local,
        gateway: r.gateway,
        ifindex: r.ifindex,
        interface: r.ifindex.and_then(interface_name),
        as_path: r.as_path,
        local_pref: r.local_pref,
        med: r.med,
        best: r.best,
        multipath: r.multipath,
        stale: r.stale,
        long_lived_stale: r.long_lived_stale,
        not_installed: r.not_installed,
        not_advertised: r.not_advertised,
        runtime: r.runtime,
        communities: r.communities,
    })
}

impl From<fib::FibStatus> for FibReport {
    fn from(f: fib::FibStatus) -> Self {
        FibReport {
            installed: f.installed,
            pending: f.pending,
            link_down: f.link_down,
            stale: f.stale,
            initial_sync_done: f.initial_sync_done,
            source_address_added: f.source_address_added,
            hop_sets: f.hop_sets,
            nexthop_objects: f.nexthop_objects,
            failed_count: f.failed_count,
            failed: f
                .failed
                .into_iter()
                .map(|r| FailedRow {
                    prefix: r.prefix,
                    error: r.error,
                })
                .collect(),
            conflict_count: f.conflict_count,
            conflicts: f
                .conflicts
                .into_iter()
                .map(|c| ConflictRow {
                    prefix: c.prefix,
                    existing: c.existing,
                })
                .collect(),
        }
    }
}

impl From<&bfd::SessionInfo> for BfdRow {
    fn from(s: &bfd::SessionInfo) -> Self {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        BfdRow {
            peer: s.peer,
            interface: s.interface.clone(),
            state: s.state.to_string(),
            remote_state: s.remote_state.to_string(),
            diagnostic: s.local_diag.to_string(),
            remote_diagnostic: s.remote_diag.to_string(),
            min_tx_ms: s.config.desired_min_tx / 1000,
            min_rx_ms: s.config.required_min_rx / 1000,
            multiplier: s.config.detect_mult,
            tx_interval_ms: ms(s.tx_interval),
            detection_time_ms: ms(s.detection_time),
            uptime: s.uptime.map(|d| d.as_secs()),
            local_discriminator: s.local_discr,
            remote_discriminator: s.remote_discr,
            packets_sent: s.tx_packets,
            packets_received: s.rx_packets,
            source_address: s.local,
            source_port: s.source_port,
        }
    }
}

impl From<bgp::WatchEvent> for WatchEventRow {
    fn from(e: bgp::WatchEvent) -> Self {
        match e {
            bgp::WatchEvent::Session {
                neighbor,
                interface,
                old,
                new,
            } => WatchEventRow::Session {
                neighbor,
                interface,
                old: old.into(),
                new: new.into(),
            },
            bgp::WatchEvent::Route {
                prefix,
                change,
                origin,
                next_hops,
            } => WatchEventRow::Route {
                prefix,
                change,
                origin,
                next_hops: next_hops
                    .into_iter()
                    .map(|h| HopRow {
                        gateway: h.ip(),
                        interface: h.ifindex().and_then(interface_name),
                    })
                    .collect(),
            },
        }
    }
}
