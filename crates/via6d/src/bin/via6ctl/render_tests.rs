//! The human tables, from typed rows.

use super::*;
use via6d::control::protocol::CountsRow;

fn neighbor(state: SessionState, uptime: Option<u64>, at: Option<u64>) -> NeighborRow {
    NeighborRow {
        peer: 0,
        address: "fe80::1".parse().unwrap(),
        interface: Some("eth0".into()),
        remote_as: 0,
        description: None,
        state,
        uptime,
        local_address: None,
        remote_address: None,
        negotiated: None,
        counts: CountsRow::default(),
        updates_received: 0,
        updates_sent: 0,
        last_error: Some("connect to [fe80::1%2]:179: Connection refused".into()),
        last_error_at: at,
    }
}

#[test]
fn an_error_shows_its_age_until_the_session_is_up_again() {
    let now = 1_000_000;
    let at = Some(now - 180);
    assert_eq!(
        last_error(&neighbor(SessionState::Active, None, at), now),
        "connect to [fe80::1%2]:179: Connection refused (3m ago)"
    );
    // Established since the error: the table hides it.
    assert_eq!(
        last_error(&neighbor(SessionState::Established, Some(60), at), now),
        "-"
    );
    // Established before it (the error is newer than the session).
    assert!(
        last_error(&neighbor(SessionState::Established, Some(600), at), now).ends_with("(3m ago)")
    );
    let no_time = neighbor(SessionState::Idle, None, None);
    assert_eq!(
        last_error(&no_time, now),
        "connect to [fe80::1%2]:179: Connection refused"
    );
    let mut none = no_time;
    none.last_error = None;
    assert_eq!(last_error(&none, now), "-");
    assert_eq!(age(59), "59s");
    assert_eq!(age(7200), "2h");
    assert_eq!(age(3 * 86_400), "3d");
    let table = human(
        &Response::Neighbors(vec![neighbor(SessionState::Active, None, at)]),
        now,
    );
    assert!(table.starts_with("NEIGHBOR"), "{table}");
    assert!(table.contains("fe80::1%eth0  external  Active"), "{table}");
}

fn route(runtime: bool) -> RouteRow {
    RouteRow {
        prefix: "10.99.0.0/24".parse().unwrap(),
        peer: None,
        peer_address: None,
        next_hop: None,
        next_hop_link_local: None,
        gateway: None,
        ifindex: None,
        interface: None,
        as_path: Vec::new(),
        local_pref: None,
        med: None,
        best: true,
        multipath: false,
        stale: false,
        long_lived_stale: false,
        not_installed: Some("announced at run time".into()),
        not_advertised: Vec::new(),
        runtime,
        communities: vec!["65000:7".into()],
    }
}

#[test]
fn runtime_routes_are_flagged_and_come_from_runtime() {
    let text = human(&Response::Routes(vec![route(true), route(false)]), 0);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("FLAGS") && lines[0].contains("COMMUNITIES"));
    assert!(lines[1].starts_with("10.99.0.0/24  *r"), "{text}");
    assert!(lines[1].contains("runtime") && lines[1].contains("65000:7"));
    assert!(lines[2].starts_with("10.99.0.0/24  * "), "{text}");
    assert!(lines[2].contains("local"), "{text}");
}

#[test]
fn json_shows_the_same_rows_as_the_table() {
    let reply = Response::Routes(vec![route(true)]);
    let v: serde_json::Value = serde_json::from_str(&json(&reply).unwrap()).unwrap();
    assert_eq!(v[0]["prefix"], "10.99.0.0/24");
    assert_eq!(v[0]["runtime"], true);
    assert_eq!(v[0]["communities"][0], "65000:7");
    let back: Vec<RouteRow> = serde_json::from_value(v).unwrap();
    assert_eq!(back, vec![route(true)]);
    let v: serde_json::Value = serde_json::from_str(&json(&Response::Shutdown).unwrap()).unwrap();
    assert_eq!(v["type"], "shutdown");
}
