//! Graceful restart, the receiving side (RFC 4724 §4.2, RFC 8538): what
//! we offer in OPEN, what both OPENs agree on, and whether a session that
//! left Established keeps its routes as stale. Pure functions: the FSM
//! asks [`down_kind`], the RIB keeps or drops the routes.
//!
//! The restarting side: when our kernel routes survive our restart
//! (`keeps_forwarding`), the capability lists our families, so a helper
//! keeps our routes while we are away; after a restart that found our
//! routes in the kernel (`restarting`) it carries the R bit and F bits
//! (RFC 4724 §3, §4.1). Without that it lists no family: receiving role
//! only, and a peer never keeps our routes on our account.

use std::time::Duration;

use wire::{Capability, Family, GracefulRestart, LlgrEntry, Notification, Open};

use crate::fsm::{cease, SessionError};
use crate::negotiate::code;

/// Restart Flags (RFC 4724 §3, the 4 high bits of the first two octets):
/// R, the sender is restarting.
pub const FLAG_RESTARTING: u8 = 0x8;
/// N (RFC 8538 §2): the sender keeps graceful restart across a
/// NOTIFICATION other than Hard Reset.
pub const FLAG_NOTIFICATION: u8 = 0x4;
/// Per-family flags: F, forwarding state was kept across the restart.
pub const FAMILY_FORWARDING: u8 = 0x80;
/// Cease subcode Hard Reset (RFC 8538 §3): never graceful.
pub const HARD_RESET: u8 = 9;
/// How long routes stay stale after the peer came back, while we wait
/// for its End-of-RIB (RFC 4724 §4.2 leaves the value local; 360 s is
/// what FRR uses).
pub const STALE_PATH_TIME: Duration = Duration::from_secs(360);

/// Our graceful restart settings for one neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    pub enabled: bool,
    /// Restart Time we announce (12 bits, RFC 4724 §3).
    pub restart_time: u16,
    /// Our kernel routes outlive our process (the FIB is ours and a
    /// graceful stop or a crash leaves them): the families are listed.
    pub keeps_forwarding: bool,
    /// This process started with our routes still in the kernel: R bit,
    /// and F bits for the listed families.
    pub restarting: bool,
    /// Long-lived graceful restart (RFC 9494): how long a restarting
    /// peer's routes stay, depreferenced, once its restart time ran out;
    /// 0 is off.
    pub long_lived_stale_time: u32,
}

impl Default for GracefulRestartConfig {
    fn default() -> Self {
        GracefulRestartConfig {
            enabled: true,
            restart_time: 120,
            keeps_forwarding: false,
            restarting: false,
            long_lived_stale_time: 0,
        }
    }
}

/// Community LLGR_STALE (RFC 9494 §4.6).
pub const LLGR_STALE: u32 = 0xFFFF_0006;
/// Community NO_LLGR (RFC 9494 §4.7): never kept long-lived.
pub const NO_LLGR: u32 = 0xFFFF_0007;
/// The largest long-lived stale time (24 bits, RFC 9494 §3).
pub const MAX_LONG_LIVED_STALE_TIME: u32 = 0x00FF_FFFF;

/// The long-lived graceful restart capability we send (RFC 9494 §3):
/// with graceful restart only, per family, the F bit as in ours.
pub fn our_long_lived_capability(
    cfg: &GracefulRestartConfig,
    families: &[Family],
) -> Option<Capability> {
    if !cfg.enabled || cfg.long_lived_stale_time == 0 {
        return None;
    }
    let flags = if cfg.restarting && cfg.keeps_forwarding {
        FAMILY_FORWARDING
    } else {
        0
    };
    Some(Capability::LongLivedGracefulRestart(
        families
            .iter()
            .map(|f| LlgrEntry {
                afi: f.afi(),
                safi: f.safi(),
                flags,
                stale_time: cfg.long_lived_stale_time.min(MAX_LONG_LIVED_STALE_TIME),
            })
            .collect(),
    ))
}

/// The capability we send (N bit always, RFC 8538 §2).
pub fn our_capability(cfg: &GracefulRestartConfig, families: &[Family]) -> Option<Capability> {
    if !cfg.enabled {
        return None;
    }
    let forwarding = if cfg.restarting { FAMILY_FORWARDING } else { 0 };
    let listed = if cfg.keeps_forwarding { families } else { &[] };
    Some(Capability::GracefulRestart(GracefulRestart {
        restart_flags: FLAG_NOTIFICATION | if cfg.restarting { FLAG_RESTARTING } else { 0 },
        restart_time: cfg.restart_time.min(0x0fff),
        families: listed
            .iter()
            .map(|f| (f.afi(), f.safi(), forwarding))
            .collect(),
    }))
}

/// Our restart is over for a neighbour once a session with it reached
/// Established: later OPENs to it carry neither the R bit nor F bits, in
/// capability 64 and 71 alike (RFC 4724 §4.1: R says "this speaker has
/// restarted"; F says forwarding was kept across that restart). BIRD does
/// the same once its recovery ends.
pub fn restart_over(open: &mut Open) {
    for cap in &mut open.capabilities {
        match cap {
            Capability::GracefulRestart(gr) => {
                gr.restart_flags &= !FLAG_RESTARTING;
                for (_, _, flags) in &mut gr.families {
                    *flags &= !FAMILY_FORWARDING;
                }
            }
            Capability::LongLivedGracefulRestart(entries) => {
                for e in entries {
                    e.flags &= !FAMILY_FORWARDING;
                }
            }
            _ => {}
        }
    }
}

/// Why we end a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    /// For good: the peer must drop our routes.
    Shutdown,
    /// We restart and our kernel routes stay: the peer may keep ours.
    Restart,
}

/// What to send instead of the Cease `n` when stopping a session, `None`
/// for closing without a NOTIFICATION (RFC 4724 §4: to a peer without N
/// only a connection that ends without one is a restart). `gr` is the
/// session's graceful restart, if it is Established with one.
pub fn stop_notification(
    kind: StopKind,
    gr: Option<&PeerRestart>,
    n: Notification,
) -> Option<Notification> {
    match (kind, gr) {
        // RFC 8538 §3: with N, only Hard Reset makes the peer flush.
        (StopKind::Shutdown, Some(g)) if g.notification => Some(hard_reset(&n)),
        (StopKind::Shutdown, _) | (StopKind::Restart, None) => Some(n),
        // With N, any Cease but Hard Reset is a restart to the peer.
        (StopKind::Restart, Some(g)) if g.notification => Some(n),
        (StopKind::Restart, Some(_)) => None,
    }
}

/// Cease/Hard Reset wrapping `n` (RFC 8538 §3: its data is the code and
/// subcode of the NOTIFICATION it stands for, then that one's data).
pub fn hard_reset(n: &Notification) -> Notification {
    let mut data = vec![n.code, n.subcode];
    data.extend_from_slice(&n.data);
    Notification {
        code: code::CEASE,
        subcode: HARD_RESET,
        data,
    }
}

/// What both OPENs agreed on about the peer's restarts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PeerRestart {
    /// The peer's Restart Time, in seconds.
    pub restart_time: u16,
    /// The peer said it is restarting (R bit).
    pub restarting: bool,
    /// Both sides set N (RFC 8538 §2).
    pub notification: bool,
    /// Families the peer can keep forwarding for across its restart, with
    /// their F bit.
    #[serde(serialize_with = "ser_family_flags")]
    pub families: Vec<(Family, bool)>,
    /// Long-lived graceful restart, when both sent it (RFC 9494): the
    /// peer's long-lived stale time per family, in seconds.
    #[serde(serialize_with = "ser_family_times")]
    pub long_lived: Vec<(Family, u32)>,
}

fn ser_family_times<S: serde::Serializer>(f: &[(Family, u32)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(
        f.iter()
            .map(|(f, t)| format!("{} {t}s", crate::negotiate::family_name(*f))),
    )
}

fn ser_family_flags<S: serde::Serializer>(f: &[(Family, bool)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(f.iter().map(|(f, fwd)| {
        let name = crate::negotiate::family_name(*f);
        if *fwd {
            format!("{name} (F)")
        } else {
            name.to_string()
        }
    }))
}

fn long_lived_of(open: &Open) -> Option<&[LlgrEntry]> {
    open.capabilities.iter().find_map(|c| match c {
        Capability::LongLivedGracefulRestart(e) => Some(e.as_slice()),
        _ => None,
    })
}

fn capability(open: &Open) -> Option<&GracefulRestart> {
    open.capabilities.iter().find_map(|c| match c {
        Capability::GracefulRestart(g) => Some(g),
        _ => None,
    })
}

/// Graceful restart applies to a session when both OPENs carry the
/// capability (ours only when it is enabled). Families the peer lists but
/// that were not negotiated, or that we do not know, are left out.
pub fn negotiate(ours: &Open, theirs: &Open, families: &[Family]) -> Option<PeerRestart> {
    let mine = capability(ours)?;
    let peer = capability(theirs)?;
    let listed = peer
        .families
        .iter()
        .filter_map(|&(afi, safi, flags)| {
            let f = Family::from_afi_safi(afi, safi)?;
            families
                .contains(&f)
                .then_some((f, flags & FAMILY_FORWARDING != 0))
        })
        .fold(Vec::new(), |mut v: Vec<(Family, bool)>, e| {
            if !v.iter().any(|(f, _)| *f == e.0) {
                v.push(e);
            }
            v
        });
    let long_lived = match (long_lived_of(ours), long_lived_of(theirs)) {
        (Some(_), Some(entries)) => entries
            .iter()
            .filter_map(|e| {
                let f = Family::from_afi_safi(e.afi, e.safi)?;
                families.contains(&f).then_some((f, e.stale_time))
            })
            .fold(Vec::new(), |mut v: Vec<(Family, u32)>, e| {
                if !v.iter().any(|(f, _)| *f == e.0) {
                    v.push(e);
                }
                v
            }),
        _ => Vec::new(),
    };
    Some(PeerRestart {
        restart_time: peer.restart_time,
        restarting: peer.restart_flags & FLAG_RESTARTING != 0,
        notification: peer.restart_flags & FLAG_NOTIFICATION != 0
            && mine.restart_flags & FLAG_NOTIFICATION != 0,
        families: listed,
        long_lived,
    })
}

/// What the RIB does with the routes of a session that left Established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownKind {
    /// Every route from the peer goes now.
    Hard,
    /// The routes of `families` stay, marked stale, for `restart_time`;
    /// those of other families go now (RFC 4724 §4.2). Then those of the
    /// `long_lived` families stay, depreferenced, for their long-lived
    /// stale time (RFC 9494 §4.2).
    Graceful {
        families: Vec<Family>,
        restart_time: Duration,
        long_lived: Vec<(Family, Duration)>,
    },
}

/// Whether the end of a session is a restart the peer's routes survive
/// (RFC 4724 §4.2, RFC 8538 §3):
/// - the connection was lost or its interface went down: yes;
/// - our hold timer (or send hold timer) expired: yes, the peer went
///   silent, which is what a restarting peer looks like;
/// - a NOTIFICATION either way, with N negotiated: yes, unless it is
///   Hard Reset (Cease/9), or one we sent to end the session for good
///   (max-prefix, shutdown, deconfigured, BFD down: Cease/1, /2, /3,
///   /10; RFC 5882 §4.3.2: a dead forwarding path keeps no route);
/// - a NOTIFICATION without N: no.
///
/// Only families the peer listed in its capability are kept, and none
/// when its Restart Time is 0.
pub fn down_kind(gr: Option<&PeerRestart>, why: Option<&SessionError>) -> DownKind {
    let Some(gr) = gr else {
        return DownKind::Hard;
    };
    let graceful = match why {
        None
        | Some(SessionError::ConnectionLost)
        | Some(SessionError::LinkDown(_))
        | Some(SessionError::BfdDownRestart { .. }) => true,
        Some(SessionError::Sent(n)) => timer_expired(n) || (gr.notification && !ends_for_good(n)),
        Some(SessionError::Received(n)) => gr.notification && !is_hard_reset(n),
    };
    let long_lived: Vec<(Family, Duration)> = gr
        .long_lived
        .iter()
        .filter(|(_, t)| *t > 0)
        .map(|(f, t)| (*f, Duration::from_secs(u64::from(*t))))
        .collect();
    // A family only long-lived (or a restart time of 0) goes long-lived
    // at once (RFC 9494 §4.2).
    let mut families: Vec<Family> = if gr.restart_time == 0 {
        Vec::new()
    } else {
        gr.families.iter().map(|(f, _)| *f).collect()
    };
    for (f, _) in &long_lived {
        if !families.contains(f) {
            families.push(*f);
        }
    }
    if !graceful || families.is_empty() {
        return DownKind::Hard;
    }
    let short = gr.restart_time != 0 && !gr.families.is_empty();
    DownKind::Graceful {
        families,
        restart_time: Duration::from_secs(if short { u64::from(gr.restart_time) } else { 0 }),
        long_lived,
    }
}

fn timer_expired(n: &Notification) -> bool {
    n.code == code::HOLD_TIMER_EXPIRED || n.code == code::SEND_HOLD_TIMER_EXPIRED
}

fn is_hard_reset(n: &Notification) -> bool {
    n.code == code::CEASE && n.subcode == HARD_RESET
}

/// A Cease we send when the session is not meant to come back as it was.
fn ends_for_good(n: &Notification) -> bool {
    n.code == code::CEASE
        && matches!(
            n.subcode,
            cease::MAX_PREFIXES
                | cease::ADMIN_SHUTDOWN
                | cease::PEER_DECONFIGURED
                | cease::BFD_DOWN
                | HARD_RESET
        )
}

/// Families whose stale routes go at once when the peer comes back
/// (RFC 4724 §4.2): those its new OPEN does not list, or lists without
/// the F bit; all of them when the new session has no graceful restart.
pub fn flushed_on_return(stale: &[Family], now: Option<&PeerRestart>) -> Vec<Family> {
    stale
        .iter()
        .copied()
        .filter(|f| !now.is_some_and(|g| g.families.iter().any(|(x, fwd)| x == f && *fwd)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn open(gr: Option<GracefulRestart>) -> Open {
        Open {
            version: 4,
            my_as: 65001,
            hold_time: 90,
            router_id: Ipv4Addr::new(192, 0, 2, 1),
            capabilities: gr.into_iter().map(Capability::GracefulRestart).collect(),
            other_params: Vec::new(),
        }
    }

    fn peer_cap(flags: u8, time: u16, fams: &[(u16, u8, u8)]) -> Open {
        open(Some(GracefulRestart {
            restart_flags: flags,
            restart_time: time,
            families: fams.to_vec(),
        }))
    }

    fn ours() -> Open {
        let Some(Capability::GracefulRestart(g)) =
            our_capability(&GracefulRestartConfig::default(), &BOTH)
        else {
            panic!("enabled by default");
        };
        open(Some(g))
    }

    const BOTH: [Family; 2] = [Family::Ipv4Unicast, Family::Ipv6Unicast];

    #[test]
    fn our_capability_follows_what_our_forwarding_survives() {
        let cfg = GracefulRestartConfig {
            restart_time: 5000,
            ..GracefulRestartConfig::default()
        };
        let cap = |c: &GracefulRestartConfig| our_capability(c, &BOTH);
        let gr = |flags, families| {
            Some(Capability::GracefulRestart(GracefulRestart {
                restart_flags: flags,
                restart_time: 0x0fff,
                families,
            }))
        };
        assert_eq!(cap(&cfg), gr(FLAG_NOTIFICATION, vec![]), "receiving only");
        let keeps = GracefulRestartConfig {
            keeps_forwarding: true,
            ..cfg
        };
        assert_eq!(
            cap(&keeps),
            gr(FLAG_NOTIFICATION, vec![(1, 1, 0), (2, 1, 0)])
        );
        let back = GracefulRestartConfig {
            restarting: true,
            ..keeps
        };
        assert_eq!(
            cap(&back),
            gr(
                FLAG_NOTIFICATION | FLAG_RESTARTING,
                vec![(1, 1, 0x80), (2, 1, 0x80)]
            )
        );
        let off = GracefulRestartConfig {
            enabled: false,
            ..cfg
        };
        assert_eq!(cap(&off), None);
    }

    #[test]
    fn stopping_says_what_the_peer_must_do() {
        let with_n = gr(true);
        let without_n = gr(false);
        let c2 = || crate::fsm::cease_notification(2, Some("bye"));
        let hard = stop_notification(StopKind::Shutdown, Some(&with_n), c2()).unwrap();
        assert_eq!((hard.code, hard.subcode), (6, 9));
        assert_eq!(&hard.data[..2], &[6, 2], "wraps Administrative Shutdown");
        assert_eq!(&hard.data[2..], &c2().data[..], "and its text");
        for neg in [Some(&without_n), None] {
            assert_eq!(stop_notification(StopKind::Shutdown, neg, c2()), Some(c2()));
        }
        let soft = stop_notification(StopKind::Restart, Some(&with_n), c2());
        assert_eq!(soft, Some(c2()));
        assert_eq!(
            stop_notification(StopKind::Restart, Some(&without_n), c2()),
            None
        );
        let plain = stop_notification(StopKind::Restart, None, c2());
        assert_eq!(plain, Some(c2()), "no GR: a normal Cease");
    }

    #[test]
    fn negotiation_needs_both_sides_and_keeps_known_families() {
        let theirs = peer_cap(
            0xC,
            90,
            &[(1, 1, 0x80), (2, 1, 0), (1, 1, 0), (25, 70, 0x80)],
        );
        let g = negotiate(&ours(), &theirs, &BOTH).expect("both sent it");
        assert_eq!(g.restart_time, 90);
        assert!(g.restarting && g.notification);
        assert_eq!(
            g.families,
            vec![(Family::Ipv4Unicast, true), (Family::Ipv6Unicast, false)]
        );
        // Only IPv4 negotiated: IPv6 is not kept even though listed.
        let g = negotiate(&ours(), &theirs, &[Family::Ipv4Unicast]).unwrap();
        assert_eq!(g.families, vec![(Family::Ipv4Unicast, true)]);
        assert_eq!(negotiate(&open(None), &theirs, &BOTH), None, "ours off");
        assert_eq!(
            negotiate(&ours(), &open(None), &BOTH),
            None,
            "peer lacks it"
        );
        let no_n = negotiate(&ours(), &peer_cap(0, 90, &[]), &BOTH).unwrap();
        assert!(!no_n.notification && !no_n.restarting);
    }

    fn gr(notification: bool) -> PeerRestart {
        PeerRestart {
            restart_time: 120,
            restarting: false,
            notification,
            families: vec![(Family::Ipv4Unicast, true), (Family::Ipv6Unicast, false)],
            long_lived: vec![],
        }
    }

    fn graceful() -> DownKind {
        DownKind::Graceful {
            families: BOTH.to_vec(),
            restart_time: Duration::from_secs(120),
            long_lived: vec![],
        }
    }

    #[test]
    fn long_lived_is_negotiated_and_kept_after_the_restart_time() {
        let llgr = |t| {
            Capability::LongLivedGracefulRestart(vec![LlgrEntry {
                afi: 1,
                safi: 1,
                flags: 0,
                stale_time: t,
            }])
        };
        let cfg = GracefulRestartConfig {
            long_lived_stale_time: 3600,
            ..GracefulRestartConfig::default()
        };
        assert_eq!(
            our_long_lived_capability(&cfg, &[Family::Ipv4Unicast]),
            Some(llgr(3600))
        );
        assert_eq!(
            our_long_lived_capability(&GracefulRestartConfig::default(), &BOTH),
            None,
            "off by default"
        );
        let mut mine = ours();
        mine.capabilities.push(llgr(3600));
        let mut theirs = peer_cap(0, 0, &[]);
        theirs.capabilities.push(llgr(600));
        let g = negotiate(&mine, &theirs, &BOTH).unwrap();
        assert_eq!(g.long_lived, vec![(Family::Ipv4Unicast, 600)]);
        assert!(negotiate(&ours(), &theirs, &BOTH)
            .unwrap()
            .long_lived
            .is_empty());
        // Restart time 0: long-lived at once.
        assert_eq!(
            down_kind(Some(&g), None),
            DownKind::Graceful {
                families: vec![Family::Ipv4Unicast],
                restart_time: Duration::ZERO,
                long_lived: vec![(Family::Ipv4Unicast, Duration::from_secs(600))],
            }
        );
    }

    fn n(code: u8, subcode: u8) -> Notification {
        Notification {
            code,
            subcode,
            data: vec![],
        }
    }

    #[test]
    fn lost_connections_and_silent_peers_are_restarts() {
        for why in [
            None,
            Some(SessionError::ConnectionLost),
            Some(SessionError::LinkDown("eth0".into())),
            Some(SessionError::Sent(n(4, 0))),
            Some(SessionError::Sent(n(8, 0))),
        ] {
            assert_eq!(
                down_kind(Some(&gr(false)), why.as_ref()),
                graceful(),
                "{why:?}"
            );
        }
        assert_eq!(down_kind(None, None), DownKind::Hard, "not negotiated");
    }

    #[test]
    fn notifications_follow_rfc_8538() {
        let rx = |c, s| Some(SessionError::Received(n(c, s)));
        let tx = |c, s| Some(SessionError::Sent(n(c, s)));
        // Without N, any NOTIFICATION ends graceful restart (RFC 4724).
        assert_eq!(
            down_kind(Some(&gr(false)), rx(6, 2).as_ref()),
            DownKind::Hard
        );
        assert_eq!(
            down_kind(Some(&gr(false)), tx(6, 4).as_ref()),
            DownKind::Hard
        );
        // With N, all but Hard Reset keep the routes ...
        assert_eq!(down_kind(Some(&gr(true)), rx(6, 2).as_ref()), graceful());
        assert_eq!(down_kind(Some(&gr(true)), rx(3, 1).as_ref()), graceful());
        assert_eq!(
            down_kind(Some(&gr(true)), rx(6, 9).as_ref()),
            DownKind::Hard
        );
        // ... and so does our soft reset, but not our shutdown,
        // max-prefix, deconfiguration or Hard Reset.
        assert_eq!(down_kind(Some(&gr(true)), tx(6, 4).as_ref()), graceful());
        for sub in [1, 2, 3, 9, 10] {
            assert_eq!(
                down_kind(Some(&gr(true)), tx(6, sub).as_ref()),
                DownKind::Hard
            );
        }
    }

    #[test]
    fn nothing_to_keep_is_hard() {
        let mut g = gr(true);
        g.restart_time = 0;
        assert_eq!(down_kind(Some(&g), None), DownKind::Hard, "restart time 0");
        let g = PeerRestart {
            families: vec![],
            ..gr(true)
        };
        assert_eq!(down_kind(Some(&g), None), DownKind::Hard, "no families");
    }

    #[test]
    fn on_return_families_without_f_are_flushed() {
        let back = gr(true);
        assert_eq!(
            flushed_on_return(&BOTH, Some(&back)),
            vec![Family::Ipv6Unicast],
            "IPv6 listed without F"
        );
        let only4 = PeerRestart {
            families: vec![(Family::Ipv4Unicast, true)],
            ..gr(true)
        };
        assert_eq!(
            flushed_on_return(&BOTH, Some(&only4)),
            vec![Family::Ipv6Unicast]
        );
        assert_eq!(
            flushed_on_return(&BOTH, None),
            BOTH.to_vec(),
            "no capability"
        );
    }
}
