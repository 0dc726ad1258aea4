//! Next-hop usability: which gateway and interface a received next hop
//! gives the FIB, or why it cannot be installed.

use std::net::IpAddr;

use wire::NextHop;

use super::table::PathState;
use crate::events::{EstablishedSession, Gateway, GatewayError};

/// The interface a global next hop must be reached over: on a single-hop
/// eBGP session, the session's own (the kernel then refuses a gateway that
/// is not on-link there, so a route never leaves by another interface than
/// its session's); on iBGP, none (the kernel resolves it recursively).
fn direct_interface(session: &EstablishedSession) -> Option<u32> {
    if session.ebgp {
        session.ifindex
    } else {
        None
    }
}

/// Decides where a received next hop leads (ARCHITECTURE.md, "Next hops
/// on the wire"): a link-local half belongs to the session's interface and
/// is preferred on eBGP sessions that have one; `::`, multicast and our
/// own addresses are never installed.
pub fn resolve_next_hop(nh: &NextHop, session: &EstablishedSession) -> Result<Gateway, PathState> {
    let own = |a: IpAddr| {
        a == session.local_address
            || session.local_ipv4.map(IpAddr::V4) == Some(a)
            || session.local_global_v6.map(IpAddr::V6) == Some(a)
            || session.local_link_local.map(IpAddr::V6) == Some(a)
    };
    match *nh {
        NextHop::V4(a) => {
            if a.is_unspecified() {
                Err(PathState::NextHopUnspecified)
            } else if a.is_multicast() || a.is_broadcast() {
                Err(PathState::NextHopMulticast)
            } else if own(IpAddr::V4(a)) {
                Err(PathState::NextHopSelf)
            } else {
                // Never link-local (only IPv6 is), so never refused.
                Gateway::new(IpAddr::V4(a), direct_interface(session)).map_err(unusable)
            }
        }
        NextHop::V6(v6) => {
            let mut global = v6.global.filter(|g| !g.is_unspecified());
            let mut ll = v6.link_local.filter(|l| !l.is_unspecified());
            // A link-local address in the first slot is a link-local next
            // hop (`[LL]`, `[LL, LL]`).
            if let Some(g) = global {
                if g.is_unicast_link_local() {
                    ll = ll.or(Some(g));
                    global = None;
                }
            }
            for a in [global, ll].into_iter().flatten() {
                if a.is_multicast() {
                    return Err(PathState::NextHopMulticast);
                }
                if own(IpAddr::V6(a)) {
                    return Err(PathState::NextHopSelf);
                }
            }
            let (addr, ifindex) = match (global, ll, session.ifindex) {
                (Some(_), Some(l), Some(ix)) if session.ebgp => (l, Some(ix)),
                (Some(g), _, _) => (g, direct_interface(session)),
                (None, Some(l), ix) => (l, ix),
                (None, None, _) => return Err(PathState::NextHopUnspecified),
            };
            // A link-local half without the session's interface is the
            // constructor's refusal.
            Gateway::new(IpAddr::V6(addr), ifindex).map_err(unusable)
        }
    }
}

/// Why a gateway the constructor refused cannot be installed.
fn unusable(e: GatewayError) -> PathState {
    match e {
        GatewayError::LinkLocalWithoutInterface(_) => PathState::NextHopLinkLocalNoInterface,
    }
}
