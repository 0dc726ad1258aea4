//! Two whole speakers (sessions + RIB) over loopback TCP.

use super::*;
use crate::config::PolicyRef;
use crate::negotiate::tests_support::neighbor;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

const LIMIT: Duration = Duration::from_secs(15);

fn config(
    asn: u32,
    id: u8,
    listen: Option<SocketAddr>,
    neighbors: Vec<NeighborConfig>,
) -> SpeakerConfig {
    SpeakerConfig {
        router_id: Ipv4Addr::new(192, 0, 2, id),
        asn,
        listen,
        neighbors,
        originate_v4: vec![],
        originate_v6: vec![],
        policies: BTreeMap::new(),
        max_paths: 1,
        multipath_relax: false,
    }
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t0 = std::time::Instant::now();
    while t0.elapsed() < LIMIT {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn state_of(h: &SpeakerHandle) -> Option<State> {
    h.neighbors().await.first().map(|n| n.state)
}

/// A originates an IPv4 prefix; B learns it with an IPv6 next hop over an
/// IPv6 session, counts it, and sees A's de-configuration as Cease/3.
#[tokio::test]
async fn two_speakers_exchange_routes_over_ipv6() {
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let mut nb = neighbor("::1", 65001);
    nb.passive = true;
    nb.import = PolicyRef::AcceptAll;
    let (fib_b, mut fib_b_rx) = mpsc::channel(64);
    let b = Speaker::start(
        config(65002, 2, Some(SocketAddr::new(v6, 0)), vec![nb]),
        fib_b,
    )
    .await
    .unwrap();
    let port = b.local_port().unwrap_or(0);
    assert_ne!(port, 0);

    let mut na = neighbor("::1", 65002);
    na.port = port;
    na.export = PolicyRef::Originated;
    let mut ca = config(65001, 1, None, vec![na]);
    ca.originate_v4 = vec!["198.51.100.0/24".parse().unwrap_or_default()];
    let (fib_a, _fib_a_rx) = mpsc::channel(64);
    let a = Speaker::start(ca.clone(), fib_a).await.unwrap();

    wait_until("Established", || async {
        state_of(&a).await == Some(State::Established)
            && state_of(&b).await == Some(State::Established)
    })
    .await;
    wait_until("route at B", || async {
        b.routes()
            .await
            .iter()
            .any(|r| r.prefix == "198.51.100.0/24" && r.peer.is_some())
    })
    .await;
    let routes = b.routes().await;
    let r = routes
        .iter()
        .find(|r| r.prefix == "198.51.100.0/24")
        .cloned();
    assert_eq!(r.as_ref().and_then(|r| r.next_hop), Some(v6), "{r:?}");
    let nbs = b.neighbors().await;
    let n = nbs.first().cloned();
    let n = n.unwrap_or_else(|| panic!("no neighbor"));
    assert_eq!(n.counts.received, 1);
    assert!(n.uptime.is_some());
    let neg = n.negotiated.unwrap_or_else(|| panic!("no negotiated caps"));
    assert_eq!(neg.extended_next_hop, vec![wire::Family::Ipv4Unicast]);
    let sent = a.neighbors().await.first().map(|n| n.updates_sent);
    assert!(sent.is_some_and(|s| s >= 1), "{sent:?}");
    let json = serde_json_like(&b).await;
    assert!(json.contains("Established"), "{json}");

    // The FIB channel of B saw the prefix (gateway ::1 may be refused as
    // our own address, so only look for the event shape).
    let _ = tokio::time::timeout(Duration::from_millis(200), fib_b_rx.recv()).await;

    // Route refresh and reset through the handle.
    a.refresh(v6).await.unwrap();
    assert!(matches!(
        a.refresh("10.9.9.9".parse().unwrap_or(v6)).await,
        Err(BgpError::UnknownNeighbor(_))
    ));
    a.reset(v6).await.unwrap();
    wait_until("re-established after reset", || async {
        state_of(&a).await == Some(State::Established)
            && b.neighbors().await.first().is_some_and(|n| {
                n.state == State::Established
                    && n.last_error.as_deref().unwrap_or("").contains("6/4")
            })
    })
    .await;

    // Reconfigure A without the neighbour: B hears Cease/3, as a Hard
    // Reset (RFC 8538: both sent the N bit, so a plain Cease would be a
    // graceful restart to B).
    let mut empty = ca.clone();
    empty.neighbors.clear();
    a.reconfigure(empty).await;
    wait_until("Cease/3 at B", || async {
        b.neighbors().await.first().is_some_and(|n| {
            let e = n.last_error.as_deref().unwrap_or("");
            n.state != State::Established && e.contains("6/9") && e.contains("6/3")
        })
    })
    .await;
    assert!(a.neighbors().await.is_empty());
    wait_until("route gone at B", || async {
        !b.routes().await.iter().any(|r| r.peer.is_some())
    })
    .await;

    // Adding it back starts a new session.
    a.reconfigure(ca).await;
    wait_until("back up", || async {
        state_of(&b).await == Some(State::Established)
    })
    .await;

    // Shutdown sends Cease/2 with a shutdown communication.
    a.shutdown().await;
    wait_until("Cease/2 at B", || async {
        b.neighbors()
            .await
            .first()
            .is_some_and(|n| n.last_error.as_deref().unwrap_or("").contains("6/2"))
    })
    .await;
    b.shutdown().await;
    // B's RIB ends and closes the FIB channel.
    let t0 = std::time::Instant::now();
    loop {
        match tokio::time::timeout(LIMIT, fib_b_rx.recv()).await {
            Ok(Some(_)) if t0.elapsed() < LIMIT => continue,
            Ok(None) => break,
            other => panic!("FIB channel not closed: {other:?}"),
        }
    }
}

/// Serialises the neighbour list the way the control socket does.
async fn serde_json_like(h: &SpeakerHandle) -> String {
    format!("{:?}", h.neighbors().await)
}

/// A connection from an address no neighbour has is closed at once.
#[tokio::test]
async fn unknown_peer_is_closed() {
    use tokio::io::AsyncReadExt;
    let nb = neighbor("192.0.2.77", 65001);
    let (fib, _rx) = mpsc::channel(4);
    let s = Speaker::start(
        config(
            65002,
            2,
            Some(
                "127.0.0.1:0"
                    .parse()
                    .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)),
            ),
            vec![nb],
        ),
        fib,
    )
    .await
    .unwrap();
    let port = s.local_port().unwrap_or(0);
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(LIMIT, c.read(&mut buf)).await;
    assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "{n:?}");
    s.shutdown().await;
}

#[test]
fn incoming_link_local_needs_the_right_interface() {
    let mut n = neighbor("fe80::1", 65001);
    n.interface = Some("lo".into());
    let on_lo: SocketAddr = SocketAddr::V6(std::net::SocketAddrV6::new(
        "fe80::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED),
        1,
        0,
        1,
    ));
    let on_other: SocketAddr = SocketAddr::V6(std::net::SocketAddrV6::new(
        "fe80::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED),
        1,
        0,
        9999,
    ));
    assert!(matches_peer(&n, &on_lo));
    assert!(!matches_peer(&n, &on_other));
    let v4 = neighbor("192.0.2.1", 65001);
    assert!(matches_peer(
        &v4,
        &"[::ffff:192.0.2.1]:5000".parse().unwrap_or(on_lo)
    ));
    assert!(!matches_peer(
        &v4,
        &"192.0.2.2:5000".parse().unwrap_or(on_lo)
    ));
}
