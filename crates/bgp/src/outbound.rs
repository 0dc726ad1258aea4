//! Advertising: what each established peer is sent, with which next hop,
//! packed into UPDATEs grouped by attribute set.
//!
//! There is no per-route Adj-RIB-Out copy: what a peer gets is a function
//! of the Loc-RIB best path and the peer, recomputed for the prefixes that
//! changed. Each peer only remembers which prefixes it was sent, so a
//! withdrawal goes only where an announcement went.

use std::collections::HashMap;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use wire::{AsPath, AsSegment, Family, Ipv6NextHop, NextHop, Origin, PathAttributes};

use crate::config::{PolicyRef, PolicySet};
use crate::events::{EstablishedSession, PeerOutput};
use crate::policy::{self, Direction, RejectReason, Verdict};
use crate::rib::{Peer, Prefix, Rib};
use crate::store::Id;

/// Well-known communities (RFC 1997).
const NO_EXPORT: u32 = 0xFFFF_FF01;
const NO_ADVERTISE: u32 = 0xFFFF_FF02;

/// Flush packed messages to the session in pieces of about this size.
const CHUNK_BYTES: usize = 64 * 1024;
/// Prefixes per step of an initial dump.
const DUMP_STEP: usize = 16 * 1024;
/// A dump step waits while the session has this many chunks queued.
const DUMP_QUEUE_CHUNKS: usize = 8;

/// Why a route is not sent to a peer (shown by `via6ctl routes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSent {
    Policy(RejectReason),
    /// The best path came from this peer.
    LearnedFromPeer,
    /// iBGP-learned routes do not go to iBGP peers (RFC 4271 §9.2).
    IbgpSplitHorizon,
    /// NO_EXPORT / NO_ADVERTISE (RFC 1997).
    Community,
    /// The peer's AS is already in the path.
    PeerAsInPath,
    /// The family was not negotiated on the session (RFC 4760 §8).
    FamilyNotNegotiated,
    /// IPv4 route, peer without extended next hop (RFC 8950 capability 5)
    /// for IPv4, and no IPv4 address of ours for a classic NEXT_HOP.
    NoIpv4NextHop,
    /// IPv6 route and no IPv6 address of ours on the session.
    NoIpv6NextHop,
    /// No usable best path.
    NoRoute,
    /// Long-lived stale, and the peer has no long-lived graceful restart
    /// (RFC 9494 §4.3).
    LongLivedStale,
}

impl NotSent {
    pub fn as_str(self) -> &'static str {
        match self {
            NotSent::Policy(r) => r.as_str(),
            NotSent::LearnedFromPeer => "learned from this peer",
            NotSent::IbgpSplitHorizon => "iBGP-learned, not sent to an iBGP peer",
            NotSent::Community => "NO_EXPORT/NO_ADVERTISE community",
            NotSent::PeerAsInPath => "the peer's AS is in the AS path",
            NotSent::FamilyNotNegotiated => "family not negotiated",
            NotSent::NoIpv4NextHop => {
                "peer has no extended next hop for IPv4 and we have no IPv4 address for NEXT_HOP"
            }
            NotSent::NoIpv6NextHop => "no IPv6 address of ours on the session for a next hop",
            NotSent::NoRoute => "no usable route",
            NotSent::LongLivedStale => {
                "long-lived stale, and the peer has no long-lived graceful restart"
            }
        }
    }
}

/// The source of an advertised route and the export term that shaped it:
/// routes with equal keys go out with equal attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct OutKey {
    family: Family,
    /// `None` = a prefix we originate.
    src: Option<Id>,
    term: Option<usize>,
    /// Goes out with LLGR_STALE (RFC 9494 §4.3).
    long_lived_stale: bool,
    /// A run-time route with communities (`via6ctl announce`): its own
    /// group, as its communities are its own.
    runtime: Option<IpNet>,
}

/// The next hop we send to `peer` for `family` (next-hop-self). IPv4 goes
/// with an IPv6 next hop only where extended next hop was negotiated
/// (RFC 8950 §2), else with our IPv4 address, else not at all.
pub fn our_next_hop(s: &EstablishedSession, family: Family) -> Result<NextHop, NotSent> {
    let v6 = || -> Option<NextHop> {
        let global = s.local_global_v6.filter(|g| !g.is_unspecified());
        let link_local = s.local_link_local;
        if global.is_none() && link_local.is_none() {
            return None;
        }
        Some(NextHop::V6(Ipv6NextHop { global, link_local }))
    };
    match family {
        Family::Ipv6Unicast => v6().ok_or(NotSent::NoIpv6NextHop),
        Family::Ipv4Unicast => {
            let ipv6_session = s.peer_address.is_ipv6();
            if s.codec.extended_next_hop_ipv4 && (ipv6_session || s.local_ipv4.is_none()) {
                if let Some(nh) = v6() {
                    return Ok(nh);
                }
            }
            s.local_ipv4.map(NextHop::V4).ok_or(NotSent::NoIpv4NextHop)
        }
    }
}

impl Peer {
    /// Whether the export policy can pass learned routes at all; peers
    /// that take only our own prefixes need no tracking of Loc-RIB changes.
    pub(crate) fn exports_learned(&self) -> bool {
        match self.export() {
            PolicyRef::DenyAll | PolicyRef::Originated => false,
            PolicyRef::Default => !self.session.ebgp,
            PolicyRef::AcceptAll | PolicyRef::Named(_) => true,
        }
    }

    pub(crate) fn export(&self) -> &PolicyRef {
        self.neighbor
            .as_ref()
            .map_or(&PolicyRef::Default, |n| &n.export)
    }

    fn ll_form(&self) -> wire::LinkLocalForm {
        self.neighbor
            .as_ref()
            .map_or(wire::LinkLocalForm::Native, |n| n.link_local_form)
    }
}

fn family_of(prefix: IpNet) -> Family {
    match prefix {
        IpNet::V4(_) => Family::Ipv4Unicast,
        IpNet::V6(_) => Family::Ipv6Unicast,
    }
}

impl Rib {
    /// The Loc-RIB best path of `prefix`: `(peer slot, post-policy id)`.
    fn best_of(&self, prefix: IpNet) -> Option<(u16, Id)> {
        fn get<P: Prefix>(rib: &Rib, p: P) -> Option<(u16, Id)> {
            let e = P::table_ref(&rib.tables).get(&p)?;
            if e.nbest == 0 {
                return None;
            }
            let p = e.paths.as_slice().first()?;
            // A path of a peer that went away and is being drained is no
            // longer a route to offer.
            let from = rib.peers.get(p.peer as usize).and_then(Option::as_ref)?;
            (!from.closing).then_some((p.peer, p.post))
        }
        match prefix {
            IpNet::V4(p) => get(self, p),
            IpNet::V6(p) => get(self, p),
        }
    }

    /// What `to` is sent for `prefix` whose best path is `best`.
    fn export_decision(
        &self,
        to: &Peer,
        to_slot: u16,
        prefix: IpNet,
        best: Option<(u16, Id)>,
    ) -> Result<OutKey, NotSent> {
        let family = family_of(prefix);
        if !to.session.families.contains(&family) {
            return Err(NotSent::FamilyNotNegotiated);
        }
        let originated = self.is_originated(prefix);
        let mut long_lived_stale = false;
        let mut runtime = None;
        let (src, attrs) = if originated {
            if let Some(c) = self.runtime_communities(prefix).filter(|c| !c.is_empty()) {
                // The well-known communities mean the same on our own
                // routes (RFC 1997).
                if c.contains(&NO_ADVERTISE) || (to.session.ebgp && c.contains(&NO_EXPORT)) {
                    return Err(NotSent::Community);
                }
                runtime = Some(prefix);
            }
            (None, None)
        } else {
            let (from, post) = best.ok_or(NotSent::NoRoute)?;
            if from == to_slot {
                return Err(NotSent::LearnedFromPeer);
            }
            let from_peer = self.peers.get(from as usize).and_then(Option::as_ref);
            let from_ebgp = from_peer.is_none_or(|p| p.session.ebgp);
            let a = self.attrs.get(post).ok_or(NotSent::NoRoute)?;
            // RFC 9494 §4.3: a long-lived stale path (its peer went
            // long-lived here, or it came marked LLGR_STALE) goes only to
            // a peer that negotiated long-lived graceful restart, marked.
            if from_peer.is_some_and(|p| p.long_lived_stale)
                || a.communities().contains(&crate::graceful::LLGR_STALE)
            {
                let knows = to
                    .session
                    .graceful_restart
                    .as_ref()
                    .is_some_and(|g| !g.long_lived.is_empty());
                if !knows {
                    return Err(NotSent::LongLivedStale);
                }
                long_lived_stale = true;
            }
            if !from_ebgp && !to.session.ebgp {
                return Err(NotSent::IbgpSplitHorizon);
            }
            if a.communities().contains(&NO_ADVERTISE)
                || (to.session.ebgp && a.communities().contains(&NO_EXPORT))
            {
                return Err(NotSent::Community);
            }
            // The peer would drop it as a loop (RFC 4271 §9.1.2): do not
            // send it at all.
            if to.session.ebgp && a.as_path_contains(to.session.peer_as) {
                return Err(NotSent::PeerAsInPath);
            }
            (Some(post), Some(a))
        };
        let term = match policy::evaluate(
            to.export(),
            &self.config.policies,
            Direction::Export,
            to.session.ebgp,
            prefix,
            attrs,
            originated,
        ) {
            Verdict::Reject(r) => return Err(NotSent::Policy(r)),
            Verdict::Accept { term, set } => set.and(term),
        };
        our_next_hop(&to.session, family)?;
        Ok(OutKey {
            family,
            src,
            term,
            long_lived_stale,
            runtime,
        })
    }

    /// Why the best path of `prefix` is not sent, per established peer.
    pub(crate) fn not_advertised(&self, prefix: IpNet, best: Option<(u16, Id)>) -> Vec<String> {
        self.peers
            .iter()
            .enumerate()
            .filter_map(|(slot, p)| Some((slot as u16, p.as_ref()?)))
            .filter_map(|(slot, p)| {
                self.export_decision(p, slot, prefix, best)
                    .err()
                    .filter(|r| {
                        !matches!(r, NotSent::FamilyNotNegotiated | NotSent::LearnedFromPeer)
                    })
                    .map(|r| format!("{}: {}", p.session.peer_address, r.as_str()))
            })
            .collect()
    }

    /// The attributes `to` receives for routes with `key` (RFC 4271 §5.1:
    /// eBGP prepends our AS and drops LOCAL_PREF, MED from another AS and
    /// the route-reflection attributes).
    fn out_attrs(&self, to: &Peer, key: OutKey) -> Option<PathAttributes> {
        let set: Option<&PolicySet> = match (to.export(), key.term) {
            (PolicyRef::Named(name), Some(t)) => self
                .config
                .policies
                .get(name)
                .and_then(|p| p.terms.get(t))
                .map(|t| &t.set),
            _ => None,
        };
        let mut a = match key.src {
            None => PathAttributes {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath::default()),
                communities: key
                    .runtime
                    .and_then(|p| self.runtime_communities(p))
                    .map(<[u32]>::to_vec)
                    .unwrap_or_default(),
                ..PathAttributes::default()
            },
            Some(id) => {
                let src = self.attrs.get(id)?;
                let mut w = src.to_wire();
                if to.session.ebgp {
                    w.med = None;
                    w.originator_id = None;
                    w.cluster_list.clear();
                }
                w
            }
        };
        if let Some(set) = set {
            if let Some(lp) = set.local_pref {
                a.local_pref = Some(lp);
            }
            if let Some(med) = set.med {
                a.med = Some(med);
            }
            a.communities.extend_from_slice(&set.add_communities);
            a.communities.sort_unstable();
            a.communities.dedup();
        }
        if key.long_lived_stale {
            a.communities.push(crate::graceful::LLGR_STALE);
            a.communities.sort_unstable();
            a.communities.dedup();
        }
        if to.session.ebgp {
            a.local_pref = None;
            let path = a.as_path.get_or_insert_with(AsPath::default);
            prepend(path, to.session.local_as);
        } else if a.local_pref.is_none() {
            a.local_pref = Some(crate::rib::DEFAULT_LOCAL_PREF);
        }
        Some(a)
    }

    /// Recomputes and packs what changed for every peer with pending
    /// prefixes.
    pub fn flush_outbound(&mut self) {
        if self.deferring() {
            return;
        }
        for slot in 0..self.peers.len() {
            let dirty = match self.peers.get_mut(slot).and_then(Option::as_mut) {
                Some(p) if !p.dirty.is_empty() && !p.closing && !p.stale => {
                    std::mem::take(&mut p.dirty)
                }
                _ => continue,
            };
            let prefixes: Vec<IpNet> = dirty.iter().collect();
            self.send_prefixes(slot as u16, &prefixes, &[]);
        }
    }

    /// The initial table for a new session, then End-of-RIB per family
    /// (RFC 4724 §2). Queued and sent in steps by [`Rib::pump_dumps`], so
    /// a full table for a new peer never sits encoded in memory at once.
    pub(crate) fn initial_dump(&mut self, slot: u16) {
        let Some(peer) = self.peers.get(slot as usize).and_then(Option::as_ref) else {
            return;
        };
        let families = peer.session.families.clone();
        let mut prefixes = Vec::new();
        for f in &families {
            self.all_prefixes(*f, peer.exports_learned(), &mut prefixes);
        }
        // Group by the best path's attribute set (ours first) so that each
        // step packs full UPDATEs; reversed because steps pop from the end.
        let mut keyed: Vec<(u32, IpNet)> = prefixes
            .into_iter()
            .map(|p| (self.best_of(p).map_or(0, |(_, id)| id.0.wrapping_add(1)), p))
            .collect();
        keyed.sort_unstable_by(|a, b| b.cmp(a));
        let dump: Vec<IpNet> = keyed.into_iter().map(|(_, p)| p).collect();
        if let Some(p) = self.peers.get_mut(slot as usize).and_then(Option::as_mut) {
            p.dump = dump;
            p.dump_eor = families;
        }
        if !self.deferring() {
            self.pump_dump(slot);
        }
    }

    /// Sends the next steps of initial dumps to peers whose sessions have
    /// taken what was queued; true while some dump is unfinished.
    pub fn pump_dumps(&mut self) -> bool {
        if self.deferring() {
            return false;
        }
        let mut more = false;
        for slot in 0..self.peers.len() {
            more |= self.pump_dump(slot as u16);
        }
        more
    }

    fn pump_dump(&mut self, slot: u16) -> bool {
        let Some(p) = self.peers.get_mut(slot as usize).and_then(Option::as_mut) else {
            return false;
        };
        if p.dump.is_empty() && p.dump_eor.is_empty() {
            return false;
        }
        if p.closing || p.stale {
            return false;
        }
        if p.out.len() >= DUMP_QUEUE_CHUNKS {
            // Waits for the session; without one (a bare `Rib`) the caller
            // takes the output and pumps again.
            return p.outbound.is_some();
        }
        let step: Vec<IpNet> = p
            .dump
            .drain(p.dump.len().saturating_sub(DUMP_STEP)..)
            .rev()
            .collect();
        let eor = if p.dump.is_empty() {
            std::mem::take(&mut p.dump_eor)
        } else {
            Vec::new()
        };
        self.send_prefixes(slot, &step, &eor);
        self.peers
            .get(slot as usize)
            .and_then(Option::as_ref)
            .is_some_and(|p| !p.dump.is_empty() || !p.dump_eor.is_empty())
    }

    /// Route refresh (RFC 2918): everything for `family` again.
    pub fn route_refresh(&mut self, id: crate::events::PeerId, family: Family) {
        let Some(&slot) = self.slots.get(&id) else {
            return;
        };
        let Some(peer) = self.peers.get(slot as usize).and_then(Option::as_ref) else {
            return;
        };
        if !peer.session.families.contains(&family) {
            return;
        }
        let enhanced = peer.session.enhanced_route_refresh;
        let codec = peer.session.codec;
        let mut prefixes = Vec::new();
        self.all_prefixes(family, peer.exports_learned(), &mut prefixes);
        // RFC 7313 §4: with enhanced route refresh the resent routes are
        // framed by BoRR and EoRR so the peer can drop what is stale.
        let marker = |subtype: u8| -> Option<PeerOutput> {
            let mut buf = Vec::new();
            let msg = wire::Message::RouteRefresh(wire::RouteRefresh {
                afi: family.afi(),
                subtype,
                safi: family.safi(),
            });
            wire::encode_message(&msg, &codec, &mut buf).ok()?;
            Some(PeerOutput::Messages(buf))
        };
        if enhanced {
            if let (Some(m), Some(p)) = (
                marker(1),
                self.peers.get_mut(slot as usize).and_then(Option::as_mut),
            ) {
                p.out.push(m);
            }
        }
        self.send_prefixes(slot, &prefixes, &[]);
        if enhanced {
            if let (Some(m), Some(p)) = (
                marker(2),
                self.peers.get_mut(slot as usize).and_then(Option::as_mut),
            ) {
                p.out.push(m);
            }
        }
    }

    /// Our own prefixes of `family`: the configuration's and the run-time
    /// ones, each once.
    pub(crate) fn originated_prefixes(&self, family: Family) -> Vec<IpNet> {
        let config: Vec<IpNet> = match family {
            Family::Ipv4Unicast => self
                .config
                .originate_v4
                .iter()
                .map(|p| IpNet::V4(*p))
                .collect(),
            Family::Ipv6Unicast => self
                .config
                .originate_v6
                .iter()
                .map(|p| IpNet::V6(*p))
                .collect(),
        };
        let runtime = self
            .runtime
            .keys()
            .filter(|p| family_of(**p) == family && !config.contains(p))
            .copied()
            .collect::<Vec<_>>();
        let mut out = config;
        out.extend(runtime);
        out
    }

    /// Every prefix that may go out for `family`: ours, and the Loc-RIB
    /// when learned routes can pass (a prefix of ours is left out there).
    pub(crate) fn all_prefixes(&self, family: Family, learned: bool, out: &mut Vec<IpNet>) {
        out.extend(self.originated_prefixes(family));
        match family {
            Family::Ipv4Unicast => {
                if learned {
                    let t: &crate::rib::Table<Ipv4Net> = Prefix::table_ref(&self.tables);
                    out.extend(
                        t.map
                            .iter()
                            .filter(|e| e.nbest > 0)
                            .map(|e| IpNet::from(e.prefix))
                            .filter(|p| !self.is_originated(*p)),
                    );
                }
            }
            Family::Ipv6Unicast => {
                if learned {
                    let t: &crate::rib::Table<Ipv6Net> = Prefix::table_ref(&self.tables);
                    out.extend(
                        t.map
                            .iter()
                            .filter(|e| e.nbest > 0)
                            .map(|e| IpNet::from(e.prefix))
                            .filter(|p| !self.is_originated(*p)),
                    );
                }
            }
        }
    }

    /// Announces or withdraws each of `prefixes` to the peer in `slot`
    /// as the Loc-RIB now says, then End-of-RIB for `eor` families.
    pub(crate) fn send_prefixes(&mut self, slot: u16, prefixes: &[IpNet], eor: &[Family]) {
        let Some(peer) = self.peers.get(slot as usize).and_then(Option::as_ref) else {
            return;
        };
        let mut groups: HashMap<OutKey, Vec<IpNet>> = HashMap::new();
        let mut withdraw = Vec::new();
        let mut announced = Vec::new();
        for &prefix in prefixes {
            let best = self.best_of(prefix);
            match self.export_decision(peer, slot, prefix, best) {
                Ok(key) => groups.entry(key).or_default().push(prefix),
                Err(_) if peer.advertised.contains(&prefix) => withdraw.push(prefix),
                Err(_) => {}
            }
        }
        let ctx = peer.session.codec;
        let form = peer.ll_form();
        let mut out: Vec<PeerOutput> = Vec::new();
        let mut buf = Vec::new();
        let mut flush = |buf: &mut Vec<u8>, force: bool| {
            if !buf.is_empty() && (force || buf.len() >= CHUNK_BYTES) {
                // An exact-size copy: the working buffer's spare capacity
                // would otherwise double what a full-table dump queues.
                out.push(PeerOutput::Messages(buf.as_slice().to_vec()));
                buf.clear();
            }
        };
        if !withdraw.is_empty() {
            withdraw.sort_unstable();
            if let Err(e) = wire::pack_withdrawals(&withdraw, &ctx, &mut buf) {
                tracing::warn!(peer = %peer.session.peer_address, error = %e, "cannot pack withdrawals");
                withdraw.clear();
            }
            flush(&mut buf, false);
        }
        let mut keys: Vec<(OutKey, Vec<IpNet>)> = groups.into_iter().collect();
        keys.sort_by_key(|(k, v)| (k.family, v.first().copied()));
        for (key, mut list) in keys {
            let (Some(attrs), Ok(nh)) = (
                self.out_attrs(peer, key),
                our_next_hop(&peer.session, key.family),
            ) else {
                continue;
            };
            list.sort_unstable();
            match wire::pack_announcements(&attrs, nh, form, &list, &ctx, &mut buf) {
                Ok(_) => announced.extend_from_slice(&list),
                Err(e) => {
                    tracing::warn!(peer = %peer.session.peer_address, error = %e, "cannot pack announcements");
                }
            }
            flush(&mut buf, false);
        }
        for f in eor {
            wire::end_of_rib(*f, &mut buf);
        }
        flush(&mut buf, true);
        let Some(peer) = self.peers.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        for p in withdraw {
            peer.advertised.remove(&p);
        }
        peer.advertised.extend(announced);
        peer.out.extend(out);
    }
}

/// Puts `asn` in front of the path (RFC 4271 §5.1.2), starting a new
/// sequence when the first one is full or absent.
fn prepend(path: &mut AsPath, asn: u32) {
    match path.segments.first_mut() {
        Some(AsSegment::Sequence(v)) if v.len() < 255 => v.insert(0, asn),
        _ => path.segments.insert(0, AsSegment::Sequence(vec![asn])),
    }
}

#[cfg(test)]
pub(crate) mod tests;
