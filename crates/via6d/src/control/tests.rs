//! The socket: its mode, the rule on its directory, a request and its
//! reply, and versions that do not match.

use super::*;
use protocol::{FibReport, ReplyBody};

fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("via6-ctl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn fib_report() -> FibReport {
    FibReport {
        installed: 3,
        pending: 0,
        link_down: 0,
        stale: 0,
        initial_sync_done: true,
        source_address_added: false,
        hop_sets: 1,
        nexthop_objects: 1,
        failed_count: 0,
        failed: vec![],
        conflict_count: 0,
        conflicts: vec![],
    }
}

#[tokio::test]
async fn round_trip_over_a_socket_with_mode_0660() {
    let dir = test_dir("rt");
    let path = dir.join("ctl.sock");
    let listener = bind(&path).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let (mut r, mut w) = s.into_split();
        let req = read_request(&mut r).await.unwrap().unwrap();
        assert_eq!(req, Request::Fib);
        let body = ReplyBody::Ok(Response::Fib(fib_report()));
        write_line(&mut w, &reply_line(body)).await.unwrap();
    });
    let v = call(&path, &Request::Fib).await.unwrap();
    assert_eq!(v, Response::Fib(fib_report()));
    server.await.unwrap();
    // A second daemon must not steal a live socket... once it is gone,
    // a new one replaces the stale file.
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_world_writable_directory_without_sticky_bit_is_refused() {
    let dir = test_dir("unsafe");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.join("ctl.sock");
    match bind(&path).await {
        Err(ControlError::UnsafeDirectory { mode, .. }) => assert_eq!(mode, 0o777),
        other => panic!("bound in a world-writable directory: {other:?}"),
    }
    assert!(!path.exists());
    // With the sticky bit (as /tmp) only the owner may remove the socket.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    bind(&path).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_request_of_another_version_is_refused_by_name() {
    let e = parse_request(r#"{"version":2,"command":"neighbors"}"#).unwrap_err();
    assert_eq!(
        e,
        ErrorReply::VersionMismatch {
            daemon: PROTOCOL_VERSION,
            client: Some(2)
        }
    );
    assert!(e.to_string().contains("protocol 1"), "{e}");
    // A client from before versions: named too, not "missing field".
    let e = parse_request(r#"{"command":"neighbors"}"#).unwrap_err();
    assert!(matches!(
        e,
        ErrorReply::VersionMismatch { client: None, .. }
    ));
    // Our version, a command that does not exist: a bad request.
    let e = parse_request(r#"{"version":1,"command":"frobnicate"}"#).unwrap_err();
    assert!(matches!(e, ErrorReply::BadRequest { .. }), "{e:?}");
    assert_eq!(
        parse_request(r#"{"version":1,"command":"watch"}"#),
        Ok(Request::Watch)
    );
}

#[test]
fn a_reply_of_another_version_is_refused_by_name() {
    let e = parse_reply(r#"{"version":7,"ok":{"type":"shutdown"}}"#).unwrap_err();
    assert!(
        matches!(
            e,
            ControlError::VersionMismatch {
                client: PROTOCOL_VERSION,
                daemon: Some(7)
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("this via6ctl 1"), "{e}");
    // The reply of an old daemon (no version, untyped `ok`).
    let e = parse_reply(r#"{"ok":[{"address":"fe80::1"}]}"#).unwrap_err();
    assert!(matches!(
        e,
        ControlError::VersionMismatch { daemon: None, .. }
    ));
    let e = parse_reply(r#"{"version":1,"error":{"kind":"not-announced","prefix":"10.0.0.0/8"}}"#)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("10.0.0.0/8 was not announced at run time"),
        "{e}"
    );
    assert_eq!(
        parse_reply(r#"{"version":1,"ok":{"type":"shutdown"}}"#).unwrap(),
        Response::Shutdown
    );
}

#[tokio::test]
async fn a_slow_watcher_is_told_how_many_events_it_missed() {
    let events = bgp::WatchSender::default();
    let rx = events.subscribe();
    let route = |i: u32| bgp::WatchEvent::Route {
        prefix: ipnet::IpNet::V4(
            ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(i << 8), 24).unwrap(),
        ),
        change: bgp::RouteEventKind::Added,
        origin: bgp::RouteOrigin::Learned,
        next_hops: Vec::new(),
    };
    // Nobody reads yet: sending never waits, the oldest events go.
    let extra = 100;
    let total = bgp::WATCH_CAPACITY as u32 + extra;
    for i in 0..total {
        events.send(route(i));
    }
    let (server, client) = UnixStream::pair().unwrap();
    let (r, w) = server.into_split();
    let task = tokio::spawn(stream_events(rx, r, w));
    let mut lines = BufReader::new(client).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    assert_eq!(parse_reply(&first).unwrap(), Response::Watching);
    let lagged: WatchLine =
        serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(
        lagged.event,
        protocol::WatchEventRow::Lagged {
            missed: u64::from(extra)
        }
    );
    // Then the events still held, oldest first.
    let next: WatchLine = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    let protocol::WatchEventRow::Route { prefix, .. } = next.event else {
        panic!("not a route event: {next:?}");
    };
    assert_eq!(prefix, "0.0.100.0/24".parse::<ipnet::IpNet>().unwrap());
    // The client hangs up: the stream ends.
    drop(lines);
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .expect("the stream ends when the client goes")
        .unwrap();
}
