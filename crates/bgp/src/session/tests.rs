//! Sessions over loopback TCP: no BIRD needed, real sockets and timers.

use super::*;
use crate::events::PeerOutput;
use crate::negotiate::tests_support::neighbor;
use std::net::IpAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wire::{Ipv4Net, MpNextHop, MpReach, Origin, PathAttributes, Update};

const LIMIT: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` and hands them to `handle`'s session.
fn serve(listener: TcpListener, handle: mpsc::Sender<TcpStream>) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            if handle.send(s).await.is_err() {
                return;
            }
        }
    })
}

fn forward_incoming(h: &SessionHandle) -> mpsc::Sender<TcpStream> {
    let (tx, mut rx) = mpsc::channel::<TcpStream>(4);
    let cmd = h.cmd.clone();
    tokio::spawn(async move {
        while let Some(s) = rx.recv().await {
            let _ = cmd.send(SessionCommand::Incoming(s)).await;
        }
    });
    tx
}

struct Side {
    handle: SessionHandle,
    rib: mpsc::Receiver<RibInput>,
}

fn side(peer: u32, asn: u32, remote_as: u32, id: [u8; 4], n: NeighborConfig) -> Side {
    let (rib_tx, rib) = mpsc::channel(64);
    let mut cfg = SessionConfig::new(PeerId(peer), n, asn, Ipv4Addr::from(id));
    cfg.idle_hold_base = Duration::from_secs(1);
    cfg.idle_hold_max = Duration::from_secs(3);
    let _ = remote_as;
    Side {
        handle: spawn_session(cfg, rib_tx),
        rib,
    }
}

async fn next_rib(rib: &mut mpsc::Receiver<RibInput>) -> RibInput {
    match tokio::time::timeout(LIMIT, rib.recv()).await {
        Ok(Some(m)) => m,
        other => panic!("no RIB input: {other:?}"),
    }
}

async fn expect_established(
    rib: &mut mpsc::Receiver<RibInput>,
) -> (EstablishedSession, mpsc::Sender<PeerOutput>) {
    match next_rib(rib).await {
        RibInput::Established { session, outbound } => (session, outbound),
        other => panic!("expected Established, got {other:?}"),
    }
}

fn update_v4_via_v6() -> Update {
    Update {
        withdrawn: vec![],
        nlri: vec![],
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(wire::AsPath {
                segments: vec![wire::AsSegment::Sequence(vec![65001])],
            }),
            mp_reach: Some(MpReach {
                family: Family::Ipv4Unicast,
                next_hop: MpNextHop::V6Pair(
                    "::".parse().unwrap_or(std::net::Ipv6Addr::UNSPECIFIED),
                    "fe80::1".parse().unwrap_or(std::net::Ipv6Addr::UNSPECIFIED),
                ),
                nlri: vec!["198.51.100.0/24"
                    .parse::<Ipv4Net>()
                    .map(Into::into)
                    .unwrap_or_default()],
            }),
            ..PathAttributes::default()
        },
    }
}

/// Two sessions, one active and one passive, reach Established over
/// `addr`, keep it across several hold-time periods of KEEPALIVEs, and
/// carry an UPDATE from the RIB of one to the RIB of the other.
async fn pair_over(addr: IpAddr) {
    let listener = TcpListener::bind(SocketAddr::new(addr, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();

    let mut nb = neighbor(&addr.to_string(), 65001);
    nb.passive = true;
    nb.hold_time = 3;
    let mut b = side(2, 65002, 65001, [192, 0, 2, 2], nb);
    let _srv = serve(listener, forward_incoming(&b.handle));

    let mut na = neighbor(&addr.to_string(), 65002);
    na.port = port;
    na.hold_time = 3;
    let mut a = side(1, 65001, 65002, [192, 0, 2, 1], na);

    let (sa, out_a) = expect_established(&mut a.rib).await;
    let (sb, _out_b) = expect_established(&mut b.rib).await;
    assert_eq!(sa.peer, PeerId(1));
    assert_eq!(sa.peer_as, 65002);
    assert_eq!(sb.peer_as, 65001);
    assert!(sa.ebgp && sb.ebgp);
    assert_eq!(sa.peer_router_id, Ipv4Addr::new(192, 0, 2, 2));
    assert_eq!(sa.families, vec![Family::Ipv4Unicast, Family::Ipv6Unicast]);
    assert!(sa.codec.four_octet_as && sa.codec.extended_message);
    assert_eq!(sa.codec.extended_next_hop_ipv4, addr.is_ipv6());
    assert_eq!(sa.local_address, addr);
    assert_eq!(a.handle.status().state, State::Established);

    // Hold time 3 s: only KEEPALIVEs every second keep it up.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert_eq!(a.handle.status().state, State::Established);
    assert_eq!(b.handle.status().state, State::Established);
    assert!(a.rib.try_recv().is_err(), "no Down while KEEPALIVEs flow");

    // An UPDATE from A's RIB arrives at B's RIB: IPv4 via IPv6 where
    // extended next hop was negotiated, classic IPv4 otherwise.
    let u = if addr.is_ipv6() {
        update_v4_via_v6()
    } else {
        let mut u = Update::default();
        u.attributes.origin = Some(Origin::Igp);
        u.attributes.as_path = Some(wire::AsPath::default());
        u.attributes.next_hop = Some(Ipv4Addr::LOCALHOST);
        u.nlri = vec!["198.51.100.0/24".parse().unwrap_or_default()];
        u
    };
    let ctx = sa.codec;
    let mut bytes = Vec::new();
    encode_message(&Message::Update(u.clone()), &ctx, &mut bytes).unwrap();
    out_a.send(PeerOutput::Messages(bytes)).await.unwrap();
    match next_rib(&mut b.rib).await {
        RibInput::Updates { peer, updates } => {
            assert_eq!(peer, PeerId(2));
            assert_eq!(updates.len(), 1);
            assert!(!updates[0].treat_as_withdraw);
            assert_eq!(updates[0].update, u);
        }
        other => panic!("expected Update, got {other:?}"),
    }
    assert_eq!(b.handle.status().updates_received, 1);

    // Route refresh reaches the other RIB.
    assert!(a.handle.refresh().await);
    let mut fams = Vec::new();
    for _ in 0..2 {
        match next_rib(&mut b.rib).await {
            RibInput::RouteRefresh { peer, family } => {
                assert_eq!(peer, PeerId(2));
                fams.push(family);
            }
            other => panic!("expected RouteRefresh, got {other:?}"),
        }
    }
    assert_eq!(fams, vec![Family::Ipv4Unicast, Family::Ipv6Unicast]);

    // The RIB closes A with Cease/1: both sides go Down, B records it.
    out_a
        .send(PeerOutput::Close(crate::fsm::max_prefix_notification(
            1, 1, 10,
        )))
        .await
        .unwrap();
    assert!(matches!(
        next_rib(&mut a.rib).await,
        RibInput::Down {
            peer: PeerId(1),
            ..
        }
    ));
    assert!(matches!(
        next_rib(&mut b.rib).await,
        RibInput::Down {
            peer: PeerId(2),
            ..
        }
    ));
    let err = b.handle.status().last_error.unwrap_or_default();
    assert!(err.contains("received NOTIFICATION 6/1"), "{err}");

    // Both come back by themselves (after Cease/1 A waits the longest
    // idle hold, 3 s here).
    expect_established(&mut a.rib).await;
    expect_established(&mut b.rib).await;

    // Shutdown sends Cease/2 with the RFC 9003 text.
    a.handle
        .stop(cease_notification(
            cease::ADMIN_SHUTDOWN,
            Some("maintenance"),
        ))
        .await;
    assert!(matches!(next_rib(&mut b.rib).await, RibInput::Down { .. }));
    let err = b.handle.status().last_error.unwrap_or_default();
    assert!(err.contains("6/2") && err.contains("maintenance"), "{err}");
}

#[tokio::test]
async fn two_sessions_over_ipv4_loopback() {
    pair_over(IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
}

#[tokio::test]
async fn two_sessions_over_ipv6_loopback() {
    pair_over(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)).await;
}

/// Both sides connect at once; collision detection leaves one session.
#[tokio::test]
async fn collision_leaves_one_session() {
    let la = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (pa, pb) = (
        la.local_addr().unwrap().port(),
        lb.local_addr().unwrap().port(),
    );
    let mut na = neighbor("127.0.0.1", 65002);
    na.port = pb;
    let mut nb = neighbor("127.0.0.1", 65001);
    nb.port = pa;
    let mut a = side(1, 65001, 65002, [10, 0, 0, 1], na);
    let mut b = side(2, 65002, 65001, [10, 0, 0, 2], nb);
    let _s1 = serve(la, forward_incoming(&a.handle));
    let _s2 = serve(lb, forward_incoming(&b.handle));
    let (sa, _oa) = expect_established(&mut a.rib).await;
    let (sb, _ob) = expect_established(&mut b.rib).await;
    // Same TCP connection on both ends.
    assert_eq!(sa.local_address, sb.local_address);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(a.handle.status().state, State::Established);
    assert_eq!(b.handle.status().state, State::Established);
    assert!(a.rib.try_recv().is_err() && b.rib.try_recv().is_err());
    let (ra, rb) = (a.handle.status(), b.handle.status());
    assert_eq!(ra.local_address, rb.remote_address);
}

/// A raw peer that speaks OPEN and one KEEPALIVE, then falls silent: our
/// hold timer fires and the peer receives NOTIFICATION 4/0. On tokio's
/// paused clock (loopback I/O is ready when the runtime looks, so only
/// idle time is skipped): the timer's length is measured exactly however
/// busy the machine is.
#[tokio::test(start_paused = true)]
async fn hold_timer_fires_on_silent_peer() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut n = neighbor("127.0.0.1", 65001);
    n.port = port;
    n.hold_time = 3;
    let mut a = side(1, 65002, 65001, [10, 0, 0, 2], n);
    let (mut s, _) = tokio::time::timeout(LIMIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let open = Open {
        version: 4,
        my_as: 65001,
        hold_time: 3,
        router_id: Ipv4Addr::new(10, 0, 0, 1),
        capabilities: vec![wire::Capability::Multiprotocol { afi: 1, safi: 1 }],
        other_params: vec![],
    };
    let ctx = wire::CodecContext::default();
    let mut out = Vec::new();
    encode_message(&Message::Open(open), &ctx, &mut out).unwrap();
    encode_message(&Message::Keepalive, &ctx, &mut out).unwrap();
    // The hold timer starts when the KEEPALIVE is read, after this.
    let t0 = tokio::time::Instant::now();
    s.write_all(&out).await.unwrap();
    let (sess, _o) = expect_established(&mut a.rib).await;
    // No 4-octet AS, no extended message: the peer did not offer them.
    assert!(!sess.codec.four_octet_as && !sess.codec.extended_message);
    assert!(matches!(next_rib(&mut a.rib).await, RibInput::Down { .. }));
    let waited = t0.elapsed();
    // RFC 4271 §4.4: the negotiated 3 s, not earlier, and not much later
    // (the session's timer tick adds at most a fraction of a second).
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    // Read everything we were sent; the last message is NOTIFICATION 4/0.
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut got)).await;
    let tail = got.get(got.len().saturating_sub(21)..).unwrap_or_default();
    assert_eq!(tail.get(18..), Some(&[3u8, 4, 0][..]), "{got:?}");
    assert!(a
        .handle
        .status()
        .last_error
        .unwrap_or_default()
        .contains("4/0"));
}

/// A raw peer that keeps sending KEEPALIVEs but never reads: the RIB is
/// never blocked (its queue just fills) and the send hold timer
/// (RFC 9687) closes the session with NOTIFICATION 8.
#[tokio::test]
async fn peer_that_stops_reading_hits_send_hold() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut n = neighbor("127.0.0.1", 65001);
    n.port = port;
    n.hold_time = 3;
    let (rib_tx, mut rib) = mpsc::channel(64);
    let mut cfg = SessionConfig::new(PeerId(7), n, 65002, Ipv4Addr::new(10, 0, 0, 2));
    cfg.send_hold = Some(Duration::from_secs(2));
    let h = spawn_session(cfg, rib_tx);
    let (s, _) = tokio::time::timeout(LIMIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let (_rd, mut wr) = s.into_split();
    let open = Open {
        version: 4,
        my_as: 65001,
        hold_time: 3,
        router_id: Ipv4Addr::new(10, 0, 0, 1),
        capabilities: vec![],
        other_params: vec![],
    };
    let ctx = wire::CodecContext::default();
    let mut out = Vec::new();
    encode_message(&Message::Open(open), &ctx, &mut out).unwrap();
    encode_message(&Message::Keepalive, &ctx, &mut out).unwrap();
    wr.write_all(&out).await.unwrap();
    let keepalives = tokio::spawn(async move {
        let mut ka = Vec::new();
        let _ = encode_message(&Message::Keepalive, &wire::CodecContext::default(), &mut ka);
        for _ in 0..30 {
            if wr.write_all(&ka).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let (_sess, outbound) = expect_established(&mut rib).await;
    // Fill socket buffers and the queue without ever blocking.
    let mut ka = Vec::new();
    encode_message(&Message::Keepalive, &ctx, &mut ka).unwrap();
    let chunk: Vec<u8> = ka.iter().copied().cycle().take(19 * 3000).collect();
    let t0 = Instant::now();
    let mut full = false;
    while t0.elapsed() < Duration::from_secs(5) {
        match outbound.try_send(PeerOutput::Messages(chunk.clone())) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                full = true;
                break;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => break,
        }
        tokio::task::yield_now().await;
    }
    assert!(full, "queue must fill against a peer that does not read");
    assert!(matches!(
        next_rib(&mut rib).await,
        RibInput::Down {
            peer: PeerId(7),
            ..
        }
    ));
    let err = h.status().last_error.unwrap_or_default();
    assert!(err.contains("8/0"), "{err}");
    keepalives.abort();
}

#[test]
fn as4_path_merged_from_two_octet_peer() {
    use wire::{AsPath, AsSegment};
    let mut u = Update::default();
    u.attributes.as_path = Some(AsPath {
        segments: vec![AsSegment::Sequence(vec![65001, u32::from(AS_TRANS)])],
    });
    u.attributes.as4_path = Some(AsPath {
        segments: vec![AsSegment::Sequence(vec![4_200_000_000])],
    });
    let merged = fix_as4(u.clone(), false);
    assert_eq!(
        merged.attributes.as_path,
        Some(AsPath {
            segments: vec![AsSegment::Sequence(vec![65001, 4_200_000_000])]
        })
    );
    assert_eq!(merged.attributes.as4_path, None);
    // From a 4-octet peer AS4_PATH is discarded, AS_PATH untouched.
    let kept = fix_as4(u.clone(), true);
    assert_eq!(kept.attributes.as_path, u.attributes.as_path);
    assert_eq!(kept.attributes.as4_path, None);
    // AGGREGATOR with a real 2-octet ASN: AS4 attributes ignored.
    let mut v = u.clone();
    v.attributes.aggregator = Some(wire::Aggregator {
        asn: 65001,
        address: Ipv4Addr::new(10, 0, 0, 1),
    });
    let w = fix_as4(v, false);
    assert_eq!(w.attributes.as_path, u.attributes.as_path);
}

/// Many UPDATEs in one stream (frames split across reads) all reach the
/// RIB, in order. Prints the rate: `cargo test --release -p bgp bulk --
/// --nocapture` for a meaningful number.
#[tokio::test]
async fn bulk_updates_reach_the_rib_in_order() {
    // VIA6_BULK_UPDATES=360814 for the full-table message count.
    let n_updates: u32 = std::env::var("VIA6_BULK_UPDATES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    #[allow(non_snake_case)]
    let N = n_updates;
    let listener = TcpListener::bind("[::1]:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut n = neighbor("::1", 65001);
    n.port = port;
    let (rib_tx, mut rib) = mpsc::channel(1024);
    let cfg = SessionConfig::new(PeerId(3), n, 65002, Ipv4Addr::new(10, 0, 0, 2));
    let _h = spawn_session(cfg, rib_tx);
    let (mut s, _) = tokio::time::timeout(LIMIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let open = Open {
        version: 4,
        my_as: 65001,
        hold_time: 90,
        router_id: Ipv4Addr::new(10, 0, 0, 1),
        capabilities: vec![
            wire::Capability::Multiprotocol { afi: 1, safi: 1 },
            wire::Capability::ExtendedNextHop(vec![wire::ExtendedNextHopEntry {
                afi: 1,
                safi: 1,
                next_hop_afi: 2,
            }]),
            wire::Capability::FourOctetAs(65001),
        ],
        other_params: vec![],
    };
    let mut out = Vec::new();
    let ctx0 = wire::CodecContext::default();
    encode_message(&Message::Open(open), &ctx0, &mut out).unwrap();
    encode_message(&Message::Keepalive, &ctx0, &mut out).unwrap();
    let ctx = wire::CodecContext {
        four_octet_as: true,
        extended_message: false,
        extended_next_hop_ipv4: true,
    };
    let mut u = update_v4_via_v6();
    for i in 0..N {
        let b = i.to_be_bytes();
        let p = Ipv4Net::new(Ipv4Addr::new(10, b[1], b[2], b[3]), 32).unwrap_or_default();
        if let Some(m) = u.attributes.mp_reach.as_mut() {
            m.nlri = vec![p.into()];
        }
        encode_message(&Message::Update(u.clone()), &ctx, &mut out).unwrap();
    }
    let total = out.len();
    let writer = tokio::spawn(async move {
        // Odd-sized writes so frames straddle reads.
        for chunk in out.chunks(64 * 1024 + 7) {
            if s.write_all(chunk).await.is_err() {
                return s;
            }
        }
        s
    });
    let (_sess, _o) = expect_established(&mut rib).await;
    let t0 = Instant::now();
    let mut got = 0u32;
    let mut batches = 0u32;
    while got < N {
        match next_rib(&mut rib).await {
            RibInput::Updates { updates, .. } => {
                assert!(updates.len() <= crate::UPDATE_BATCH);
                batches += 1;
                for u in updates {
                    let b = got.to_be_bytes();
                    let want: wire::IpNet = Ipv4Net::new(Ipv4Addr::new(10, b[1], b[2], b[3]), 32)
                        .unwrap_or_default()
                        .into();
                    let nlri = u.update.attributes.mp_reach.map(|m| m.nlri);
                    assert_eq!(nlri, Some(vec![want]), "update {got}");
                    got += 1;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let dt = t0.elapsed();
    // The UPDATEs of one read reach the RIB together: it wakes once per
    // batch, not once per UPDATE.
    assert!(batches * 8 <= N, "{batches} batches for {N} UPDATEs");
    println!(
        "{N} UPDATEs ({total} bytes) to the RIB channel in {dt:?} ({batches} batches): {:.0} updates/s",
        f64::from(N) / dt.as_secs_f64()
    );
    let _s = writer.await;
}

fn raw_open(asn: u16, id: [u8; 4], version: u8) -> Vec<u8> {
    let open = Open {
        version,
        my_as: asn,
        hold_time: 90,
        router_id: Ipv4Addr::from(id),
        capabilities: vec![wire::Capability::Multiprotocol { afi: 1, safi: 1 }],
        other_params: vec![],
    };
    let mut out = Vec::new();
    let _ = encode_message(
        &Message::Open(open),
        &wire::CodecContext::default(),
        &mut out,
    );
    out
}

/// Reads whole messages until the peer closes (or `limit`), decoded.
async fn read_all(s: &mut TcpStream, limit: Duration) -> Vec<Message> {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(limit, s.read_to_end(&mut got)).await;
    let ctx = wire::CodecContext::default();
    let mut out = Vec::new();
    let mut rest = &got[..];
    while let Ok(Some(len)) = wire::frame_length(rest, &ctx) {
        let (frame, tail) = rest.split_at(len);
        if let Ok(d) = wire::decode_message(frame, &ctx) {
            out.push(d.message);
        }
        rest = tail;
    }
    out
}

fn notification_of(msgs: &[Message]) -> Option<(u8, u8, Vec<u8>)> {
    msgs.iter().find_map(|m| match m {
        Message::Notification(n) => Some((n.code, n.subcode, n.data.clone())),
        _ => None,
    })
}

/// Bad OPENs and broken headers are answered with the RFC 4271 §6
/// NOTIFICATION before the connection closes.
#[tokio::test]
async fn bad_input_is_answered_with_notification() {
    let mut bad_marker = raw_open(65001, [10, 0, 0, 1], 4);
    bad_marker[3] = 0;
    // An UPDATE right after the OPEN (OpenConfirm on our side) whose MP_REACH
    // would not even decode without extended next hop: FSM error, 5/2.
    let mut early_update = raw_open(65001, [10, 0, 0, 1], 4);
    encode_message(
        &Message::Update(update_v4_via_v6()),
        &wire::CodecContext {
            four_octet_as: false,
            extended_message: false,
            extended_next_hop_ipv4: true,
        },
        &mut early_update,
    )
    .unwrap();
    let cases: Vec<(Vec<u8>, (u8, u8))> = vec![
        (early_update, (5, 2)),
        (raw_open(65001, [10, 0, 0, 1], 3), (2, 1)),
        (raw_open(65009, [10, 0, 0, 1], 4), (2, 2)),
        (raw_open(65001, [0, 0, 0, 0], 4), (2, 3)),
        (bad_marker, (1, 1)),
    ];
    for (bytes, want) in cases {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut n = neighbor("127.0.0.1", 65001);
        n.port = listener.local_addr().unwrap().port();
        let mut side = side(1, 65002, 65001, [10, 0, 0, 2], n);
        let (mut s, _) = tokio::time::timeout(LIMIT, listener.accept())
            .await
            .unwrap()
            .unwrap();
        s.write_all(&bytes).await.unwrap();
        let msgs = read_all(&mut s, Duration::from_secs(5)).await;
        assert!(matches!(msgs.first(), Some(Message::Open(_))), "{msgs:?}");
        let got = notification_of(&msgs);
        assert_eq!(got.as_ref().map(|g| (g.0, g.1)), Some(want), "{msgs:?}");
        if want == (2, 1) {
            assert_eq!(got.map(|g| g.2), Some(vec![0, 4]));
        }
        // Never Established: the RIB heard nothing.
        assert!(side.rib.try_recv().is_err());
        side.handle
            .stop(cease_notification(cease::ADMIN_SHUTDOWN, None))
            .await;
    }
}

/// RFC 4271 §6.8 with a peer of higher identifier: our outgoing
/// connection (still in OpenSent) loses, gets Cease/7, and the session
/// continues on the peer's connection.
#[tokio::test]
async fn collision_keeps_the_higher_identifiers_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut n = neighbor("127.0.0.1", 65001);
    n.port = listener.local_addr().unwrap().port();
    let mut a = side(1, 65002, 65001, [10, 0, 0, 2], n);
    // Our outgoing connection arrives; the peer says nothing on it yet.
    let (mut ours, _) = tokio::time::timeout(LIMIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut first = [0u8; 19];
    ours.read_exact(&mut first).await.unwrap();
    assert_eq!(first[18], 1, "our OPEN");
    let len = usize::from(u16::from_be_bytes([first[16], first[17]]));
    let mut body = vec![0u8; len - 19];
    ours.read_exact(&mut body).await.unwrap();
    // The peer (identifier 10.0.0.9 > 10.0.0.2) opens its own connection.
    let peer_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = peer_listener.local_addr().unwrap();
    let (c, s) = tokio::join!(TcpStream::connect(addr), peer_listener.accept());
    let (mut peer_side, incoming) = (c.unwrap(), s.unwrap().0);
    a.handle.incoming(incoming);
    peer_side
        .write_all(&raw_open(65001, [10, 0, 0, 9], 4))
        .await
        .unwrap();
    // The old connection is told Cease/7 and closed.
    let old = read_all(&mut ours, Duration::from_secs(5)).await;
    assert_eq!(
        notification_of(&old).map(|n| (n.0, n.1)),
        Some((6, 7)),
        "{old:?}"
    );
    // The new one gets our OPEN and KEEPALIVE; one KEEPALIVE back and the
    // session is up on it.
    let mut head = [0u8; 19];
    peer_side.read_exact(&mut head).await.unwrap();
    assert_eq!(head[18], 1, "OPEN on the surviving connection");
    let len = usize::from(u16::from_be_bytes([head[16], head[17]]));
    let mut body = vec![0u8; len - 19];
    peer_side.read_exact(&mut body).await.unwrap();
    let mut ka = Vec::new();
    encode_message(&Message::Keepalive, &wire::CodecContext::default(), &mut ka).unwrap();
    peer_side.write_all(&ka).await.unwrap();
    let (sess, _o) = expect_established(&mut a.rib).await;
    assert_eq!(sess.peer_router_id, Ipv4Addr::new(10, 0, 0, 9));
    assert_eq!(
        a.handle.status().remote_address,
        peer_side.local_addr().ok()
    );
}

/// A second connection while Established is refused with Cease/7 and the
/// session stays up.
#[tokio::test]
async fn connection_while_established_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut n = neighbor("127.0.0.1", 65001);
    n.port = listener.local_addr().unwrap().port();
    let mut a = side(1, 65002, 65001, [10, 0, 0, 2], n);
    let (mut s, _) = tokio::time::timeout(LIMIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut hello = raw_open(65001, [10, 0, 0, 1], 4);
    encode_message(
        &Message::Keepalive,
        &wire::CodecContext::default(),
        &mut hello,
    )
    .unwrap();
    s.write_all(&hello).await.unwrap();
    let _est = expect_established(&mut a.rib).await;
    let pl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = pl.local_addr().unwrap();
    let (c, acc) = tokio::join!(TcpStream::connect(addr), pl.accept());
    let mut second = c.unwrap();
    a.handle.incoming(acc.unwrap().0);
    let msgs = read_all(&mut second, Duration::from_secs(5)).await;
    assert_eq!(
        notification_of(&msgs).map(|n| (n.0, n.1)),
        Some((6, 7)),
        "{msgs:?}"
    );
    assert_eq!(a.handle.status().state, State::Established);
    assert!(a.rib.try_recv().is_err());
}

/// A link-local neighbour on a missing interface keeps retrying and says
/// why in its status.
#[tokio::test]
async fn missing_interface_is_reported() {
    let mut n = neighbor("fe80::99", 65001);
    n.interface = Some("no-such-if0".into());
    let a = side(1, 65002, 65001, [10, 0, 0, 2], n);
    let t0 = Instant::now();
    loop {
        let s = a.handle.status();
        if s.last_error.as_deref() == Some("interface no-such-if0 not found") {
            assert!(matches!(s.state, State::Active | State::Connect));
            break;
        }
        assert!(t0.elapsed() < LIMIT, "{s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Network namespaces removed on drop, also when the test fails.
struct Lab {
    namespaces: Vec<String>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", ns])
                .status();
        }
    }
}

fn ip(args: &[&str]) {
    let st = std::process::Command::new("ip").args(args).status();
    assert!(
        st.is_ok_and(|s| s.success()),
        "`ip {}` failed (needs root and iproute2)",
        args.join(" ")
    );
}

/// Runs `f` on a thread whose network namespace is `ns`, with its own
/// runtime (sockets belong to the namespace of the thread that opens them).
fn in_netns<F, Fut, T>(ns: &str, f: F) -> std::thread::JoinHandle<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
    T: Send + 'static,
{
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // Affects only this thread.
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("setns {path}: {e}"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        rt.block_on(f())
    })
}

/// The real thing: a session over IPv6 link-local addresses only
/// (`fe80::1%vethA` <-> `fe80::2%vethB`) between two namespaces; the scope
/// comes from the interface name, our link-local address is found, and
/// taking the link down ends the session at once (not after the hold time).
#[test]
fn link_local_session_over_veth_and_link_down() {
    // Link detection takes two checks 500 ms apart; a loaded machine may
    // delay them by seconds. The bound only has to stay well below the
    // 90 s hold time, so that nothing but link detection can end the
    // session within it.
    const LINK_DOWN_LIMIT: Duration = Duration::from_secs(30);
    let tag = format!("{}{}", std::process::id() % 100_000, line!());
    let (na, nb) = (format!("v6ta{tag}"), format!("v6tb{tag}"));
    let (ia, ib) = (format!("v6a{tag}"), format!("v6b{tag}"));
    let _lab = Lab {
        namespaces: vec![na.clone(), nb.clone()],
    };
    ip(&["netns", "add", &na]);
    ip(&["netns", "add", &nb]);
    ip(&[
        "-n", &na, "link", "add", &ia, "type", "veth", "peer", "name", &ib, "netns", &nb,
    ]);
    for (ns, i, a) in [(&na, &ia, "fe80::1/64"), (&nb, &ib, "fe80::2/64")] {
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        // Only the configured link-local address, no EUI-64 one.
        ip(&["-n", ns, "link", "set", "dev", i, "addrgenmode", "none"]);
        ip(&["-n", ns, "addr", "add", a, "dev", i, "nodad"]);
        ip(&["-n", ns, "link", "set", i, "up"]);
    }
    let port = 20_000 + u16::try_from(std::process::id() % 20_000).unwrap_or(0);
    let (up_tx, up_rx) = std::sync::mpsc::channel::<EstablishedSession>();

    let (ib2, up_b) = (ib.clone(), up_tx.clone());
    let b = in_netns(&nb, move || async move {
        let listener = TcpListener::bind(("::", port))
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let mut n = neighbor("fe80::1", 65001);
        n.interface = Some(ib2);
        n.passive = true;
        let mut s = side(2, 65002, 65001, [10, 0, 0, 2], n);
        let _srv = serve(listener, forward_incoming(&s.handle));
        let (sess, _o) = expect_established(&mut s.rib).await;
        let _ = up_b.send(sess);
        let down = tokio::time::timeout(LINK_DOWN_LIMIT * 2, s.rib.recv()).await;
        (
            matches!(down, Ok(Some(RibInput::Down { .. }))),
            s.handle.status().last_error,
        )
    });
    let ia2 = ia.clone();
    let a = in_netns(&na, move || async move {
        let mut n = neighbor("fe80::2", 65002);
        n.interface = Some(ia2);
        n.port = port;
        n.connect_retry = Duration::from_secs(1);
        let mut s = side(1, 65001, 65002, [10, 0, 0, 1], n);
        let (sess, _o) = expect_established(&mut s.rib).await;
        let _ = up_tx.send(sess);
        let down = tokio::time::timeout(LINK_DOWN_LIMIT * 2, s.rib.recv()).await;
        (
            matches!(down, Ok(Some(RibInput::Down { .. }))),
            s.handle.status().last_error,
        )
    });
    let mut ups = Vec::new();
    for _ in 0..2 {
        match up_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(s) => ups.push(s),
            Err(e) => panic!("no session up: {e}"),
        }
    }
    ups.sort_by_key(|s| s.peer);
    let (sa, sb) = (&ups[0], &ups[1]);
    assert_eq!(sa.local_link_local, "fe80::1".parse().ok());
    assert_eq!(sb.local_link_local, "fe80::2".parse().ok());
    assert_eq!(sa.local_global_v6, None, "link-local only");
    assert!(sa.ifindex.is_some() && sb.ifindex.is_some());
    assert!(sa.codec.extended_next_hop_ipv4);

    let t0 = Instant::now();
    ip(&["-n", &nb, "link", "set", &ib, "down"]);
    let (b_down, b_err) = b.join().unwrap_or_else(|_| panic!("side B panicked"));
    let (a_down, a_err) = a.join().unwrap_or_else(|_| panic!("side A panicked"));
    assert!(b_down && a_down, "{b_err:?} {a_err:?}");
    assert!(t0.elapsed() < LINK_DOWN_LIMIT, "{:?}", t0.elapsed());
    assert_eq!(b_err, Some(format!("interface {ib} went down")));
    assert_eq!(a_err, Some(format!("interface {ia} went down")));
}

/// A peer that sends UPDATEs and dies at once: the RIB sees Established,
/// then UPDATEs, then Down, and nothing from the session after Down.
#[tokio::test]
async fn nothing_follows_down() {
    for round in 0..5u64 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut n = neighbor("127.0.0.1", 65001);
        n.port = listener.local_addr().unwrap().port();
        let mut s = side(1, 65002, 65001, [10, 0, 0, 2], n);
        let (mut peer, _) = tokio::time::timeout(LIMIT, listener.accept())
            .await
            .unwrap()
            .unwrap();
        let mut out = raw_open(65001, [10, 0, 0, 1], 4);
        let ctx = wire::CodecContext::default();
        encode_message(&Message::Keepalive, &ctx, &mut out).unwrap();
        let mut u = Update::default();
        u.attributes.origin = Some(Origin::Igp);
        u.attributes.as_path = Some(wire::AsPath::default());
        u.attributes.next_hop = Some(Ipv4Addr::new(10, 0, 0, 1));
        for i in 0..200u8 {
            u.nlri = vec![Ipv4Net::new(Ipv4Addr::new(10, 1, i, 0), 24).unwrap_or_default()];
            encode_message(&Message::Update(u.clone()), &ctx, &mut out).unwrap();
        }
        peer.write_all(&out).await.unwrap();
        tokio::time::sleep(Duration::from_millis(round * 3)).await;
        drop(peer);
        assert!(matches!(
            next_rib(&mut s.rib).await,
            RibInput::Established { .. }
        ));
        let mut updates = 0;
        loop {
            match next_rib(&mut s.rib).await {
                RibInput::Updates { updates: u, .. } => updates += u.len(),
                RibInput::Down { .. } => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(updates <= 200);
        // The session retries (idle hold 1 s); the listener is gone, so
        // no new Established and nothing else may arrive.
        drop(listener);
        let after = tokio::time::timeout(Duration::from_millis(1500), s.rib.recv()).await;
        assert!(after.is_err(), "after Down: {after:?}");
    }
}

/// A RIB that stops reading for twice the hold time while the peer keeps
/// talking: the session stays up (the silence is ours, not the peer's),
/// and every UPDATE arrives once the RIB reads again.
#[tokio::test]
async fn slow_rib_does_not_expire_the_hold_timer() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut n = neighbor("127.0.0.1", 65001);
    n.port = listener.local_addr().unwrap().port();
    n.hold_time = 3;
    let (rib_tx, mut rib) = mpsc::channel(4);
    let cfg = SessionConfig::new(PeerId(5), n, 65002, Ipv4Addr::new(10, 0, 0, 2));
    let h = spawn_session(cfg, rib_tx);
    let (peer, _) = tokio::time::timeout(LIMIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let (_rd, mut wr) = peer.into_split();
    let ctx = wire::CodecContext::default();
    let mut out = Vec::new();
    let open = Open {
        version: 4,
        my_as: 65001,
        hold_time: 3,
        router_id: Ipv4Addr::new(10, 0, 0, 1),
        capabilities: vec![],
        other_params: vec![],
    };
    encode_message(&Message::Open(open), &ctx, &mut out).unwrap();
    encode_message(&Message::Keepalive, &ctx, &mut out).unwrap();
    let mut u = Update::default();
    u.attributes.origin = Some(Origin::Igp);
    u.attributes.as_path = Some(wire::AsPath::default());
    u.attributes.next_hop = Some(Ipv4Addr::new(10, 0, 0, 1));
    const N: u32 = 3000;
    for i in 0..N {
        let b = i.to_be_bytes();
        u.nlri = vec![Ipv4Net::new(Ipv4Addr::new(10, b[1], b[2], b[3]), 32).unwrap_or_default()];
        encode_message(&Message::Update(u.clone()), &ctx, &mut out).unwrap();
    }
    let talker = tokio::spawn(async move {
        let _ = wr.write_all(&out).await;
        let mut ka = Vec::new();
        let _ = encode_message(&Message::Keepalive, &wire::CodecContext::default(), &mut ka);
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if wr.write_all(&ka).await.is_err() {
                return;
            }
        }
    });
    // Do not read the RIB channel for 6 s (hold time 3 s).
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(h.status().state, State::Established);
    assert!(matches!(
        next_rib(&mut rib).await,
        RibInput::Established { .. }
    ));
    let mut got = 0;
    while got < N {
        match next_rib(&mut rib).await {
            RibInput::Updates { updates, .. } => got += updates.len() as u32,
            other => panic!("update {got}: {other:?}"),
        }
    }
    assert_eq!(got, N);
    assert_eq!(h.status().state, State::Established);
    talker.abort();
}

#[test]
fn send_hold_follows_the_negotiated_hold_time() {
    assert_eq!(send_hold_for(None, 9), Duration::from_secs(18));
    assert_eq!(send_hold_for(None, 90), Duration::from_secs(180));
    assert_eq!(send_hold_for(None, 0), Duration::from_secs(480));
    let two = Some(Duration::from_secs(2));
    assert_eq!(send_hold_for(two, 90), Duration::from_secs(2));
}

/// A second connection that never shows its OPEN is closed with Cease/7
/// as soon as the first one reaches Established.
#[tokio::test]
async fn silent_second_connection_loses_to_established() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut n = neighbor("127.0.0.1", 65001);
    n.port = listener.local_addr().unwrap().port();
    let mut a = side(1, 65002, 65001, [10, 0, 0, 2], n);
    let (mut main, _) = tokio::time::timeout(LIMIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    // Wait for our OPEN so the session is in OpenSent.
    let mut head = [0u8; 19];
    main.read_exact(&mut head).await.unwrap();
    let len = usize::from(u16::from_be_bytes([head[16], head[17]]));
    let mut body = vec![0u8; len - 19];
    main.read_exact(&mut body).await.unwrap();
    let pl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = pl.local_addr().unwrap();
    let (c, acc) = tokio::join!(TcpStream::connect(addr), pl.accept());
    let mut second = c.unwrap();
    a.handle.incoming(acc.unwrap().0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut hello = raw_open(65001, [10, 0, 0, 1], 4);
    encode_message(
        &Message::Keepalive,
        &wire::CodecContext::default(),
        &mut hello,
    )
    .unwrap();
    main.write_all(&hello).await.unwrap();
    let _est = expect_established(&mut a.rib).await;
    let msgs = read_all(&mut second, Duration::from_secs(5)).await;
    assert_eq!(
        notification_of(&msgs).map(|n| (n.0, n.1)),
        Some((6, 7)),
        "{msgs:?}"
    );
    assert_eq!(a.handle.status().state, State::Established);
}

/// RFC 5882 §4.2 with RFC 9384: BFD Down closes an Established session
/// at once with Cease/10, both RIBs drop the peer, and the session comes
/// back by itself (a BFD session that is not Up does not hold BGP back).
/// Before any connection the command changes nothing.
#[tokio::test]
async fn bfd_down_closes_with_cease_10() {
    let addr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let listener = TcpListener::bind(SocketAddr::new(addr, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut nb = neighbor(&addr.to_string(), 65001);
    nb.passive = true;
    let mut b = side(2, 65002, 65001, [192, 0, 2, 2], nb);
    // B has no connection yet: nothing to close, no back-off.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = b.handle.status().state;
    assert_ne!(before, State::Idle);
    assert!(b.handle.commander().bfd_down(false).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(b.handle.status().state, before);
    let _srv = serve(listener, forward_incoming(&b.handle));
    let mut na = neighbor(&addr.to_string(), 65002);
    na.port = port;
    let mut a = side(1, 65001, 65002, [192, 0, 2, 1], na);
    expect_established(&mut a.rib).await;
    expect_established(&mut b.rib).await;
    assert_eq!(b.handle.status().last_error, None);

    let t = Instant::now();
    assert!(a.handle.commander().bfd_down(false).await);
    assert!(matches!(
        next_rib(&mut a.rib).await,
        RibInput::Down {
            peer: PeerId(1),
            ..
        }
    ));
    assert!(matches!(
        next_rib(&mut b.rib).await,
        RibInput::Down {
            peer: PeerId(2),
            ..
        }
    ));
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    let err = b.handle.status().last_error.unwrap_or_default();
    assert!(err.contains("6/10") && err.contains("BFD down"), "{err}");
    expect_established(&mut a.rib).await;
    expect_established(&mut b.rib).await;
}
