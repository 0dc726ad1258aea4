//! Graceful restart, receiving side (RFC 4724 §4.2): the paths of a
//! restarting peer stay in their slot, marked stale, and keep forwarding.
//! The new session's paths replace them prefix by prefix; its End-of-RIB
//! removes those of a family still stale; the restart timer (peer not
//! back) or the stale-path timer (back, no End-of-RIB) removes the rest.
//!
//! Time is an input: the task passes `now` and asks for the next deadline.

use std::time::Instant;

use ipnet::{Ipv4Net, Ipv6Net};
use smallvec::SmallVec;
use wire::Family;

use super::table::{Path, Prefix, PrefixSet};
use super::Rib;
use crate::events::PeerId;
use crate::graceful::{flushed_on_return, DownKind, STALE_PATH_TIME};

/// A slot whose paths are kept for a restarting peer.
#[derive(Debug)]
pub(crate) struct StaleSlot {
    pub(crate) peer: PeerId,
    pub(crate) slot: u16,
    /// Families still stale.
    pub(crate) families: Vec<Family>,
    pub(crate) deadline: Instant,
    /// The peer's new session is up (the deadline is the stale-path time).
    pub(crate) returned: bool,
    /// Long-lived stale times per family (RFC 9494), used once the
    /// restart time runs out with the peer still away.
    pub(crate) long_lived: Vec<(Family, std::time::Duration)>,
    /// The paths are long-lived stale now.
    pub(crate) long_lived_now: bool,
}

impl Rib {
    /// The session of `id` left Established: a hard end removes its paths;
    /// a graceful one keeps those of the restarting families as stale
    /// until `now + restart_time`.
    pub fn session_down(&mut self, id: PeerId, kind: DownKind, now: Instant) {
        let DownKind::Graceful {
            families,
            restart_time,
            long_lived,
        } = kind
        else {
            return self.begin_peer_down(id);
        };
        let Some(slot) = self.slots.remove(&id) else {
            return;
        };
        let Some(peer) = self.peer_mut(slot) else {
            return;
        };
        // The slot keeps its paths and session facts (the decision still
        // reads them, RFC 4724 §4.2: stale routes keep forwarding) but is
        // no session any more.
        peer.stale = true;
        peer.outbound = None;
        peer.out.clear();
        peer.dump.clear();
        peer.dump_eor.clear();
        peer.advertised = PrefixSet::default();
        peer.dirty = PrefixSet::default();
        let gone: Vec<Family> = peer
            .session
            .families
            .iter()
            .copied()
            .filter(|f| !families.contains(f))
            .collect();
        tracing::info!(
            peer = %peer.session.peer_address,
            paths = peer.received,
            ?families,
            ?restart_time,
            "peer restarting: its paths stay, stale (RFC 4724)"
        );
        self.drain_families(slot, &gone, false);
        self.stale.push(StaleSlot {
            peer: id,
            slot,
            families,
            deadline: now + restart_time,
            returned: false,
            long_lived,
            long_lived_now: false,
        });
    }

    /// The new session of a restarting peer is up in `slot`: families its
    /// OPEN no longer keeps forwarding for lose their stale paths now; the
    /// others wait for End-of-RIB, at most [`STALE_PATH_TIME`].
    pub(crate) fn stale_peer_returned(&mut self, id: PeerId, slot: u16, now: Instant) {
        let gr = self
            .peers
            .get(slot as usize)
            .and_then(Option::as_ref)
            .and_then(|p| p.session.graceful_restart.clone());
        let mut flush = Vec::new();
        for s in self.stale.iter_mut().filter(|s| s.peer == id) {
            let gone = flushed_on_return(&s.families, gr.as_ref());
            s.families.retain(|f| !gone.contains(f));
            s.returned = true;
            s.deadline = now + STALE_PATH_TIME;
            flush.push((s.slot, gone));
        }
        for (stale_slot, gone) in flush {
            self.drain_families(stale_slot, &gone, false);
        }
        self.release_empty_stale();
    }

    /// End-of-RIB from the restarted peer: its paths of `family` that were
    /// not re-sent go.
    pub(crate) fn stale_end_of_rib(&mut self, id: PeerId, family: Family) {
        let mut flush = Vec::new();
        for s in self.stale.iter_mut().filter(|s| s.peer == id && s.returned) {
            if s.families.contains(&family) {
                s.families.retain(|f| *f != family);
                flush.push(s.slot);
            }
        }
        for slot in flush {
            self.drain_families(slot, &[family], false);
        }
        self.release_empty_stale();
    }

    /// Removes the stale paths whose timer ran out by `now`.
    pub fn expire_stale(&mut self, now: Instant) {
        let (due, kept): (Vec<StaleSlot>, Vec<StaleSlot>) = std::mem::take(&mut self.stale)
            .into_iter()
            .partition(|s| s.deadline <= now);
        self.stale = kept;
        for s in due {
            let goes_long_lived = !s.returned
                && !s.long_lived_now
                && s.families
                    .iter()
                    .any(|f| s.long_lived.iter().any(|(x, _)| x == f));
            if goes_long_lived {
                self.go_long_lived(s, now);
                continue;
            }
            tracing::info!(peer = ?s.peer, returned = s.returned, ?s.families,
                "graceful restart timer ran out: stale paths go");
            self.retire_stale(s.slot);
        }
    }

    /// The restart time ran out with the peer away: the families it keeps
    /// long-lived stay, losing to every other path, for their long-lived
    /// stale time; NO_LLGR paths and other families go (RFC 9494 §4.2).
    fn go_long_lived(&mut self, mut s: StaleSlot, now: Instant) {
        let (keep, gone): (Vec<Family>, Vec<Family>) = s
            .families
            .iter()
            .partition(|f| s.long_lived.iter().any(|(x, _)| x == *f));
        self.drain_families(s.slot, &gone, false);
        let slot = s.slot;
        let v4 = self.long_lived_prefixes::<Ipv4Net>(slot, keep.contains(&Family::Ipv4Unicast));
        let v6 = self.long_lived_prefixes::<Ipv6Net>(slot, keep.contains(&Family::Ipv6Unicast));
        if let Some(peer) = self.peer_mut(slot) {
            peer.long_lived_stale = true;
        }
        self.settle_long_lived(slot, v4);
        self.settle_long_lived(slot, v6);
        let time = s
            .long_lived
            .iter()
            .filter(|(f, _)| keep.contains(f))
            .map(|(_, t)| *t)
            .min()
            .unwrap_or_default();
        tracing::info!(peer = ?s.peer, families = ?keep, ?time,
            "restart time ran out: stale paths are long-lived stale now (RFC 9494)");
        s.families = keep;
        s.long_lived_now = true;
        s.deadline = now + time;
        self.stale.push(s);
    }

    /// `slot`'s prefixes of one family (none unless `keep`), each with
    /// whether its path carries NO_LLGR (RFC 9494 §4.7).
    fn long_lived_prefixes<P: Prefix>(&self, slot: u16, keep: bool) -> Vec<(P, bool)> {
        if !keep {
            return Vec::new();
        }
        let no_llgr = |p: &Path| {
            p.peer == slot
                && self
                    .attrs
                    .get(p.post)
                    .or_else(|| self.attrs.get(p.pre))
                    .is_some_and(|a| a.communities().contains(&crate::graceful::NO_LLGR))
        };
        P::table_ref(&self.tables)
            .map
            .iter()
            .filter(|e| e.paths.as_slice().iter().any(|p| p.peer == slot))
            .map(|e| (e.prefix, e.paths.as_slice().iter().any(no_llgr)))
            .collect()
    }

    /// NO_LLGR paths go; the others lose to every other path from now on
    /// and are sent again: with LLGR_STALE, or withdrawn (RFC 9494 §4.3).
    fn settle_long_lived<P: Prefix>(&mut self, slot: u16, prefixes: Vec<(P, bool)>) {
        for (p, no_llgr) in prefixes {
            if no_llgr {
                self.withdraw_one(slot, p);
            } else {
                self.redecide(p);
                self.after_change(p.into(), None, true);
            }
        }
    }

    /// When [`Rib::expire_stale`] has work next.
    pub fn next_stale_deadline(&self) -> Option<Instant> {
        self.stale.iter().map(|s| s.deadline).min()
    }

    /// Stale slots of `id` for `family`: a path from the new session
    /// replaces theirs, a withdrawal removes theirs too.
    pub(crate) fn stale_slots(&self, id: PeerId, family: Family) -> SmallVec<[u16; 2]> {
        self.stale
            .iter()
            .filter(|s| s.peer == id && s.families.contains(&family))
            .map(|s| s.slot)
            .collect()
    }

    /// Whether advertising waits: we restarted with our routes kept and
    /// not every peer has sent End-of-RIB yet (RFC 4724 §4.1).
    pub fn deferring(&self) -> bool {
        self.restarting && !self.initial_tables_in
    }

    /// Whether `slot` holds a restarting peer's stale paths.
    pub(crate) fn is_stale_slot(&self, slot: u16) -> bool {
        self.stale.iter().any(|s| s.slot == slot)
    }

    /// Stale slots with no family left are freed once drained.
    fn release_empty_stale(&mut self) {
        let (done, kept): (Vec<StaleSlot>, Vec<StaleSlot>) = std::mem::take(&mut self.stale)
            .into_iter()
            .partition(|s| s.families.is_empty());
        self.stale = kept;
        for s in done {
            self.retire_stale(s.slot);
        }
    }

    /// The slot's remaining paths stop being candidates now and go over
    /// the next drains; then the slot is free.
    fn retire_stale(&mut self, slot: u16) {
        if let Some(peer) = self.peer_mut(slot) {
            peer.closing = true;
        }
        self.drain_families(slot, &[], true);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wire::Update;

    use super::super::tests::{attrs, config, ll_nh, mp_update, neighbor, net, session};
    use super::*;
    use crate::config::SpeakerConfig;
    use crate::events::{EstablishedSession, RouteChange};
    use crate::graceful::PeerRestart;
    use crate::rib::RouteFilter;

    const T0: Duration = Duration::from_secs(0);

    /// A peer that keeps forwarding for IPv4 across its restarts.
    fn gr_session(cfg: &SpeakerConfig, forwarding: bool) -> EstablishedSession {
        let mut s = session(cfg, 0, "10.0.0.1");
        s.graceful_restart = Some(PeerRestart {
            restart_time: 120,
            restarting: false,
            notification: true,
            families: vec![(Family::Ipv4Unicast, forwarding)],
            long_lived: vec![],
        });
        s
    }

    fn restart() -> DownKind {
        DownKind::Graceful {
            families: vec![Family::Ipv4Unicast],
            restart_time: Duration::from_secs(120),
            long_lived: vec![],
        }
    }

    /// A restart with long-lived graceful restart: 120 s, then 3600 s.
    fn long_restart() -> DownKind {
        DownKind::Graceful {
            families: vec![Family::Ipv4Unicast],
            restart_time: Duration::from_secs(120),
            long_lived: vec![(Family::Ipv4Unicast, Duration::from_secs(3600))],
        }
    }

    #[test]
    fn long_lived_stale_paths_lose_to_others_then_go() {
        let now = Instant::now();
        let cfg = config(vec![neighbor("fe80::1", 65001), neighbor("fe80::2", 65002)]);
        let mut rib = Rib::new(cfg.clone());
        rib.peer_up(gr_session(&cfg, true), None);
        let mut s1 = session(&cfg, 1, "10.0.0.2");
        s1.ifindex = Some(8);
        rib.peer_up(s1, None);
        // Peer 0: two prefixes, one tagged NO_LLGR; peer 1: a longer
        // path for the first.
        let mut tagged = attrs(&[65001]);
        tagged.communities = vec![crate::graceful::NO_LLGR];
        rib.update(
            PeerId(0),
            &mp_update(
                attrs(&[65001]),
                ll_nh("fe80::1"),
                &["10.0.0.0/24", "10.0.1.0/24"],
            ),
            false,
        );
        rib.update(
            PeerId(0),
            &mp_update(tagged, ll_nh("fe80::1"), &["10.0.2.0/24"]),
            false,
        );
        rib.update(
            PeerId(1),
            &mp_update(attrs(&[65002, 65003]), ll_nh("fe80::2"), &["10.0.0.0/24"]),
            false,
        );
        rib.take_fib_changes();
        rib.session_down(PeerId(0), long_restart(), now);
        assert!(settle(&mut rib).is_empty(), "plain stale first");
        rib.expire_stale(now + Duration::from_secs(120));
        let ch = settle(&mut rib);
        // The longer but fresh path wins; NO_LLGR goes; the lone stale
        // path stays installed.
        assert_eq!(removed(&ch), ["10.0.2.0/24"]);
        let installs: Vec<String> = ch
            .iter()
            .filter_map(|c| match c {
                RouteChange::Install { prefix, next_hops } => {
                    Some(format!("{prefix} {}", next_hops[0].ip()))
                }
                RouteChange::Remove { .. } => None,
            })
            .collect();
        assert_eq!(installs, ["10.0.0.0/24 fe80::2"]);
        let st = rib.routes_filtered(&RouteFilter::default());
        let lone: Vec<_> = st.iter().filter(|r| r.prefix == "10.0.1.0/24").collect();
        assert!(
            lone.len() == 1 && lone[0].long_lived_stale && lone[0].best,
            "{lone:?}"
        );
        assert_eq!(
            rib.next_stale_deadline(),
            Some(now + Duration::from_secs(120) + Duration::from_secs(3600))
        );
        rib.expire_stale(now + Duration::from_secs(3720));
        assert_eq!(removed(&settle(&mut rib)), ["10.0.1.0/24"]);
        assert!(rib.next_stale_deadline().is_none());
    }

    fn eor() -> Update {
        Update::default()
    }

    /// Peer 0 announces 10.0.0.0/24 .. 10.0.2.0/24; FIB changes taken.
    fn loaded(now: Instant) -> Rib {
        let cfg = config(vec![neighbor("fe80::1", 65001)]);
        let mut rib = Rib::new(cfg.clone());
        rib.peer_up(gr_session(&cfg, true), None);
        let u = mp_update(
            attrs(&[65001]),
            ll_nh("fe80::1"),
            &["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"],
        );
        rib.update(PeerId(0), &u, false);
        assert_eq!(rib.take_fib_changes().len(), 3);
        let _ = now;
        rib
    }

    fn settle(rib: &mut Rib) -> Vec<RouteChange> {
        rib.drain(usize::MAX);
        rib.take_fib_changes()
    }

    fn removed(ch: &[RouteChange]) -> Vec<String> {
        let mut v: Vec<String> = ch
            .iter()
            .filter_map(|c| match c {
                RouteChange::Remove { prefix } => Some(prefix.to_string()),
                RouteChange::Install { .. } => None,
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_restart_keeps_the_routes_and_end_of_rib_sweeps_the_rest() {
        let now = Instant::now();
        let mut rib = loaded(now);
        let cfg = rib.config().clone();
        rib.session_down(PeerId(0), restart(), now);
        assert!(settle(&mut rib).is_empty(), "nothing leaves the FIB");
        assert_eq!(rib.stats().prefixes, 3);
        let st = rib.routes_filtered(&RouteFilter::default());
        assert!(st.iter().all(|r| r.stale && r.best), "{st:?}");
        // Back: re-sends two of the three, then End-of-RIB.
        rib.peer_up(gr_session(&cfg, true), None);
        let u = mp_update(
            attrs(&[65001]),
            ll_nh("fe80::1"),
            &["10.0.0.0/24", "10.0.1.0/24"],
        );
        rib.update(PeerId(0), &u, false);
        assert!(settle(&mut rib).is_empty(), "same next hop: no FIB change");
        let st = rib.routes_filtered(&RouteFilter::default());
        assert_eq!(st.iter().filter(|r| r.stale).count(), 1, "{st:?}");
        assert_eq!(rib.stats().prefixes, 3, "one path per prefix, not two");
        rib.update(PeerId(0), &eor(), false);
        assert_eq!(removed(&settle(&mut rib)), ["10.0.2.0/24"]);
        assert_eq!(rib.stats().prefixes, 2);
        assert!(rib.next_stale_deadline().is_none());
        assert_eq!(rib.peer_counts(PeerId(0)).received, 2);
        // The stale slot is free again.
        assert_eq!(rib.peers.iter().flatten().count(), 1);
    }

    #[test]
    fn a_peer_that_does_not_come_back_loses_its_routes_at_its_restart_time() {
        let now = Instant::now();
        let mut rib = loaded(now);
        rib.session_down(PeerId(0), restart(), now);
        assert_eq!(
            rib.next_stale_deadline(),
            Some(now + Duration::from_secs(120))
        );
        rib.expire_stale(now + Duration::from_secs(119));
        assert!(settle(&mut rib).is_empty(), "not yet");
        rib.expire_stale(now + Duration::from_secs(120));
        assert_eq!(removed(&settle(&mut rib)).len(), 3);
        assert_eq!(rib.stats().prefixes, 0);
        assert!(rib.peers.iter().flatten().next().is_none(), "slot freed");
    }

    #[test]
    fn back_without_end_of_rib_the_stale_path_timer_sweeps() {
        let now = Instant::now() + T0;
        let mut rib = loaded(now);
        let cfg = rib.config().clone();
        rib.session_down(PeerId(0), restart(), now);
        rib.peer_up(gr_session(&cfg, true), None);
        let at = rib.next_stale_deadline().expect("stale-path timer");
        assert!(at >= now + STALE_PATH_TIME);
        rib.expire_stale(at);
        assert_eq!(removed(&settle(&mut rib)).len(), 3);
    }

    #[test]
    fn back_without_the_f_bit_flushes_at_once() {
        let now = Instant::now();
        let mut rib = loaded(now);
        let cfg = rib.config().clone();
        rib.session_down(PeerId(0), restart(), now);
        rib.peer_up(gr_session(&cfg, false), None);
        assert_eq!(removed(&settle(&mut rib)).len(), 3);
        assert!(rib.next_stale_deadline().is_none());
    }

    #[test]
    fn the_new_session_replaces_and_withdraws_stale_paths() {
        let now = Instant::now();
        let mut rib = loaded(now);
        let cfg = rib.config().clone();
        rib.session_down(PeerId(0), restart(), now);
        rib.peer_up(gr_session(&cfg, true), None);
        // A new next hop for one prefix, a withdrawal of another.
        let u = mp_update(attrs(&[65001]), ll_nh("fe80::9"), &["10.0.0.0/24"]);
        rib.update(PeerId(0), &u, false);
        let mut w = Update::default();
        w.attributes.mp_unreach = Some(wire::MpUnreach {
            family: Family::Ipv4Unicast,
            withdrawn: vec!["10.0.1.0/24".parse().unwrap()],
        });
        rib.update(PeerId(0), &w, false);
        let ch = settle(&mut rib);
        assert_eq!(removed(&ch), ["10.0.1.0/24"]);
        let installed: Vec<_> = ch
            .iter()
            .filter_map(|c| match c {
                RouteChange::Install { prefix, next_hops } => Some((prefix, next_hops[0].ip())),
                RouteChange::Remove { .. } => None,
            })
            .collect();
        assert_eq!(
            installed,
            [(&"10.0.0.0/24".parse().unwrap(), "fe80::9".parse().unwrap())]
        );
        assert_eq!(rib.stats().prefixes, 2);
        let st = rib.routes_filtered(&RouteFilter::default());
        let p0: Vec<_> = st.iter().filter(|r| r.prefix == "10.0.0.0/24").collect();
        assert_eq!(p0.len(), 1, "the new path replaced the stale one: {p0:?}");
        assert!(!p0[0].stale);
    }

    /// A decision rerun while the peer is away keeps its stale path as a
    /// candidate: a worse path from another peer does not take over.
    #[test]
    fn stale_paths_stay_candidates() {
        let now = Instant::now();
        let cfg = config(vec![neighbor("fe80::1", 65001), neighbor("fe80::2", 65002)]);
        let mut rib = Rib::new(cfg.clone());
        rib.peer_up(gr_session(&cfg, true), None);
        let mut s1 = session(&cfg, 1, "10.0.0.2");
        s1.ifindex = Some(8);
        rib.peer_up(s1, None);
        let short = mp_update(attrs(&[65001]), ll_nh("fe80::1"), &["10.0.0.0/24"]);
        rib.update(PeerId(0), &short, false);
        let long = |path: &[u32]| mp_update(attrs(path), ll_nh("fe80::2"), &["10.0.0.0/24"]);
        rib.update(PeerId(1), &long(&[65002, 65003]), false);
        rib.take_fib_changes();
        rib.session_down(PeerId(0), restart(), now);
        assert!(settle(&mut rib).is_empty());
        // Peer 1 changes its (still longer) path: the decision runs again.
        rib.update(PeerId(1), &long(&[65002, 65004]), false);
        assert!(settle(&mut rib).is_empty(), "the stale path stays best");
        let st = rib.routes_filtered(&RouteFilter::default());
        assert!(st.iter().any(|r| r.stale && r.best), "{st:?}");
        // Its restart time runs out: peer 1's path takes over.
        rib.expire_stale(now + Duration::from_secs(120));
        let ch = settle(&mut rib);
        assert!(
            matches!(&ch[..], [RouteChange::Install { next_hops, .. }]
                if next_hops[0].ip() == "fe80::2".parse::<std::net::IpAddr>().unwrap()),
            "{ch:?}"
        );
    }

    #[test]
    fn a_hard_end_removes_everything_at_once() {
        let now = Instant::now();
        let mut rib = loaded(now);
        rib.session_down(PeerId(0), DownKind::Hard, now);
        assert_eq!(removed(&settle(&mut rib)).len(), 3);
        assert!(rib.next_stale_deadline().is_none());
    }

    /// End-of-RIB is per family (RFC 4724 §4.2): IPv4's sweeps the IPv4
    /// paths not re-sent and leaves the IPv6 ones stale until IPv6's.
    #[test]
    fn end_of_rib_sweeps_only_its_family() {
        let now = Instant::now();
        let cfg = config(vec![neighbor("fe80::1", 65001)]);
        let mut rib = Rib::new(cfg.clone());
        let both = |s: &mut EstablishedSession| {
            if let Some(gr) = s.graceful_restart.as_mut() {
                gr.families = vec![(Family::Ipv4Unicast, true), (Family::Ipv6Unicast, true)];
            }
        };
        let mut first = gr_session(&cfg, true);
        both(&mut first);
        rib.peer_up(first, None);
        let v4 = mp_update(attrs(&[65001]), ll_nh("fe80::1"), &["10.0.0.0/24"]);
        let mut a = attrs(&[65001]);
        a.mp_reach = Some(wire::MpReach {
            family: Family::Ipv6Unicast,
            next_hop: ll_nh("fe80::1"),
            nlri: vec![net("2001:db8:1::/48")],
        });
        let v6 = Update {
            attributes: a,
            ..Default::default()
        };
        rib.update(PeerId(0), &v4, false);
        rib.update(PeerId(0), &v6, false);
        assert_eq!(settle(&mut rib).len(), 2);
        rib.session_down(
            PeerId(0),
            DownKind::Graceful {
                families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
                restart_time: Duration::from_secs(120),
                long_lived: vec![],
            },
            now,
        );
        assert!(settle(&mut rib).is_empty(), "nothing leaves the FIB");
        let mut back = gr_session(&cfg, true);
        both(&mut back);
        rib.peer_up(back, None);
        // IPv4's End-of-RIB, nothing re-sent: the IPv4 path goes, IPv6 stays.
        rib.update(PeerId(0), &eor(), false);
        assert_eq!(removed(&settle(&mut rib)), ["10.0.0.0/24"]);
        let st = rib.routes_filtered(&RouteFilter::default());
        assert_eq!(st.len(), 1, "{st:?}");
        assert!(st[0].stale, "{st:?}");
        // IPv6's End-of-RIB: the IPv6 path goes too.
        let mut eor6 = Update::default();
        eor6.attributes.mp_unreach = Some(wire::MpUnreach {
            family: Family::Ipv6Unicast,
            withdrawn: vec![],
        });
        rib.update(PeerId(0), &eor6, false);
        assert_eq!(removed(&settle(&mut rib)), ["2001:db8:1::/48"]);
        assert!(rib.next_stale_deadline().is_none());
    }
}
