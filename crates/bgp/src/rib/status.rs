//! What `via6ctl` shows: per-path status, route queries, peer counters.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use wire::{Family, NextHop};

use super::table::{Entry, PathState, Prefix};
use super::Rib;
use crate::attrs::Attrs;
use crate::events::{PeerId, PeerOutput};

/// Counters per peer for `via6ctl neighbors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct PeerCounts {
    pub received: u64,
    pub accepted: u64,
    pub advertised: u64,
    /// Paths kept from before the peer's restart (graceful restart).
    pub stale: u64,
    /// Seconds until the stale paths go, if any are kept.
    pub stale_for_secs: Option<u64>,
}

/// Which paths [`Rib::routes_filtered`] returns; the default is all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouteFilter {
    /// Only this prefix (exact match).
    pub prefix: Option<IpNet>,
    /// Only paths from this peer (originated prefixes are left out).
    pub peer: Option<PeerId>,
    /// At most this many paths.
    pub limit: Option<usize>,
}

/// One path as `via6ctl routes` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RouteStatus {
    pub prefix: String,
    /// `None` for a prefix we originate.
    pub peer: Option<PeerId>,
    pub peer_address: Option<IpAddr>,
    /// Global (or IPv4) half of the next hop as received.
    pub next_hop: Option<IpAddr>,
    pub next_hop_link_local: Option<Ipv6Addr>,
    /// The gateway the FIB gets, when installable.
    pub gateway: Option<IpAddr>,
    pub ifindex: Option<u32>,
    pub as_path: Vec<u32>,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    pub best: bool,
    pub multipath: bool,
    /// Kept from a peer that is restarting (graceful restart, RFC 4724).
    pub stale: bool,
    /// Long-lived stale (RFC 9494): its peer's restart went long-lived, or
    /// it came marked LLGR_STALE; loses to others.
    pub long_lived_stale: bool,
    /// Why the path is not installed (`None` when it is).
    pub not_installed: Option<String>,
    /// Per established peer, why the best path is not advertised to it.
    pub not_advertised: Vec<String>,
    /// Announced at run time (`via6ctl announce`), not by the
    /// configuration.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub runtime: bool,
    /// Communities (RFC 1997) as `ASN:VALUE`, post-policy for learned
    /// paths.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
}

/// `ASN:VALUE`, the form the configuration and `via6ctl announce` take.
pub fn community_string(c: u32) -> String {
    format!("{}:{}", c >> 16, c & 0xFFFF)
}

impl Rib {
    /// Counters for one peer (zero when not established).
    pub fn peer_counts(&self, id: PeerId) -> PeerCounts {
        let mut c = self
            .slot(id)
            .and_then(|s| self.peers.get(s as usize))
            .and_then(Option::as_ref)
            .map_or(PeerCounts::default(), |p| PeerCounts {
                received: p.received,
                accepted: p.accepted,
                advertised: p.advertised.len() as u64,
                ..PeerCounts::default()
            });
        let now = std::time::Instant::now();
        for s in self.stale.iter().filter(|s| s.peer == id) {
            if let Some(p) = self.peers.get(s.slot as usize).and_then(Option::as_ref) {
                c.stale += p.received;
            }
            let left = s.deadline.saturating_duration_since(now).as_secs();
            c.stale_for_secs = Some(c.stale_for_secs.map_or(left, |l| l.min(left)));
        }
        c
    }

    /// Messages queued for a peer's session (taken out).
    pub fn take_peer_output(&mut self, id: PeerId) -> Vec<PeerOutput> {
        self.slot(id)
            .and_then(|s| self.peer_mut(s))
            .map(|p| std::mem::take(&mut p.out))
            .unwrap_or_default()
    }

    /// Every path of every prefix (both families), best first per prefix.
    pub fn routes(&self) -> Vec<RouteStatus> {
        self.routes_filtered(&RouteFilter::default())
    }

    /// The paths `filter` selects, in prefix order. A full table has about
    /// a million paths; a status is a few hundred bytes, so the control
    /// socket should ask for a prefix or a limit.
    pub fn routes_filtered(&self, filter: &RouteFilter) -> Vec<RouteStatus> {
        let mut out = Vec::new();
        let limit = filter.limit.unwrap_or(usize::MAX);
        match filter.prefix {
            Some(IpNet::V4(p)) => self.routes_of::<Ipv4Net>(Some(p), filter, limit, &mut out),
            Some(IpNet::V6(p)) => self.routes_of::<Ipv6Net>(Some(p), filter, limit, &mut out),
            None => {
                self.routes_of::<Ipv4Net>(None, filter, limit, &mut out);
                self.routes_of::<Ipv6Net>(None, filter, limit, &mut out);
            }
        }
        if filter.peer.is_none() {
            self.originated_routes(filter.prefix, &mut out);
        }
        out.truncate(limit);
        out
    }

    fn routes_of<P: Prefix>(
        &self,
        only: Option<P>,
        filter: &RouteFilter,
        limit: usize,
        out: &mut Vec<RouteStatus>,
    ) {
        let ctx = self.ctx();
        let table = P::table_ref(&self.tables);
        let entries: Vec<&Entry<P>> = match only {
            Some(p) => table.get(&p.normalize()).into_iter().collect(),
            None => {
                let mut v: Vec<&Entry<P>> = table.map.iter().collect();
                v.sort_by_key(|e| e.prefix.into());
                v
            }
        };
        for e in entries {
            let prefix: IpNet = e.prefix.into();
            let originated = self.is_originated(prefix);
            for (i, p) in e.paths.as_slice().iter().enumerate() {
                if out.len() >= limit {
                    return;
                }
                if filter.peer.is_some() && ctx.peer(p.peer).map(|x| x.id) != filter.peer {
                    continue;
                }
                let a = self.attrs.get(p.pre);
                let post = self.attrs.get(p.post).or(a);
                let nh = a.and_then(|a| self.nexthops.get(a.next_hop));
                let (nh_main, nh_ll) = match nh {
                    Some(NextHop::V4(v4)) => (Some(IpAddr::V4(*v4)), None),
                    Some(NextHop::V6(v6)) => (v6.global.map(IpAddr::V6), v6.link_local),
                    None => (None, None),
                };
                let in_set = i < e.nbest as usize;
                let resolved = if in_set { ctx.next_hop(p) } else { None };
                let not_installed = if p.state != PathState::Usable {
                    Some(p.state.as_str().to_string())
                } else if originated {
                    Some("prefix is originated locally".to_string())
                } else if !in_set {
                    Some("not selected as best or multipath".to_string())
                } else {
                    None
                };
                let peer = ctx.peer(p.peer);
                out.push(RouteStatus {
                    prefix: prefix.to_string(),
                    peer: peer.map(|x| x.id),
                    peer_address: peer.map(|x| x.session.peer_address),
                    next_hop: nh_main,
                    next_hop_link_local: nh_ll,
                    gateway: resolved.map(|r| r.ip()),
                    ifindex: resolved.and_then(|r| r.ifindex()),
                    as_path: a.map(Attrs::as_path_flat).unwrap_or_default(),
                    local_pref: post.and_then(Attrs::local_pref),
                    med: post.and_then(Attrs::med),
                    best: i == 0 && e.nbest > 0,
                    multipath: in_set,
                    stale: self.is_stale_slot(p.peer),
                    long_lived_stale: peer.is_some_and(|x| x.long_lived_stale)
                        || post.is_some_and(|x| {
                            x.communities().contains(&crate::graceful::LLGR_STALE)
                        }),
                    not_installed,
                    not_advertised: if i == 0 && e.nbest > 0 {
                        self.not_advertised(prefix, Some((p.peer, p.post)))
                    } else {
                        Vec::new()
                    },
                    runtime: false,
                    communities: post
                        .map(|x| {
                            x.communities()
                                .iter()
                                .map(|c| community_string(*c))
                                .collect()
                        })
                        .unwrap_or_default(),
                });
            }
        }
    }

    fn originated_routes(&self, only: Option<IpNet>, out: &mut Vec<RouteStatus>) {
        let mut prefixes = self.originated_prefixes(Family::Ipv4Unicast);
        prefixes.extend(self.originated_prefixes(Family::Ipv6Unicast));
        for prefix in prefixes
            .into_iter()
            .filter(|p| only.is_none_or(|o| o.trunc() == *p))
        {
            let runtime = self.runtime_communities(prefix);
            out.push(RouteStatus {
                prefix: prefix.to_string(),
                peer: None,
                peer_address: None,
                next_hop: None,
                next_hop_link_local: None,
                gateway: None,
                ifindex: None,
                as_path: Vec::new(),
                local_pref: None,
                med: None,
                best: true,
                multipath: false,
                stale: false,
                long_lived_stale: false,
                not_installed: Some(match runtime {
                    Some(_) => "announced at run time".to_string(),
                    None => "originated locally".to_string(),
                }),
                not_advertised: self.not_advertised(prefix, None),
                runtime: runtime.is_some(),
                communities: runtime
                    .unwrap_or_default()
                    .iter()
                    .map(|c| community_string(*c))
                    .collect(),
            });
        }
    }
}
