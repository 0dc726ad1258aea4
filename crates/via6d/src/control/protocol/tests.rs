//! Every request and reply survives the trip through JSON, and the wire
//! form carries the version.

use super::*;

fn round_trip<T>(value: &T) -> T
where
    T: Serialize + serde::de::DeserializeOwned + std::fmt::Debug + PartialEq,
{
    let text = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&text).unwrap();
    assert_eq!(&back, value, "{text}");
    back
}

pub(crate) fn every_request() -> Vec<Request> {
    let n: IpAddr = "fe80::1".parse().unwrap();
    vec![
        Request::Neighbors,
        Request::Routes {
            prefix: None,
            limit: None,
        },
        Request::Routes {
            prefix: Some("10.0.0.0/8".parse().unwrap()),
            limit: Some(5),
        },
        Request::Fib,
        Request::Bfd,
        Request::Status,
        Request::Reset {
            neighbor: n,
            hard: false,
        },
        Request::Reset {
            neighbor: n,
            hard: true,
        },
        Request::Shutdown,
        Request::Refresh { neighbor: n },
        Request::Announce {
            prefix: "10.99.0.0/24".parse().unwrap(),
            communities: vec![(65000 << 16) | 1],
        },
        Request::Announce {
            prefix: "2001:db8:99::/48".parse().unwrap(),
            communities: vec![],
        },
        Request::Withdraw {
            prefix: "10.99.0.0/24".parse().unwrap(),
        },
        Request::Watch,
    ]
}

fn neighbor_row() -> NeighborRow {
    NeighborRow {
        peer: 3,
        address: "fe80::1".parse().unwrap(),
        interface: Some("eth0".into()),
        remote_as: 65001,
        description: Some("upstream".into()),
        state: SessionState::Established,
        uptime: Some(42),
        local_address: Some("[fe80::2%2]:179".into()),
        remote_address: Some("192.0.2.1:40000".into()),
        negotiated: Some(NegotiatedRow {
            peer_as: 65001,
            peer_router_id: "192.0.2.1".parse().unwrap(),
            hold_time: 90,
            keepalive: 30,
            families: vec!["ipv4-unicast".into()],
            extended_next_hop: vec!["ipv4-unicast".into()],
            four_octet_as: true,
            extended_message: false,
            route_refresh: true,
            enhanced_route_refresh: false,
            graceful_restart: Some(RestartRow {
                restart_time: 120,
                restarting: false,
                notification: true,
                families: vec!["ipv4-unicast (F)".into()],
                long_lived: vec!["ipv4-unicast 3600s".into()],
            }),
        }),
        counts: CountsRow {
            received: 5,
            accepted: 4,
            advertised: 1,
            stale: 0,
            stale_for_secs: None,
        },
        updates_received: 7,
        updates_sent: 2,
        last_error: None,
        last_error_at: None,
    }
}

fn every_response() -> Vec<Response> {
    let prefix: IpNet = "10.99.0.0/24".parse().unwrap();
    vec![
        Response::Neighbors(vec![neighbor_row()]),
        Response::Routes(vec![RouteRow {
            prefix,
            peer: Some(0),
            peer_address: Some("fe80::1".parse().unwrap()),
            next_hop: None,
            next_hop_link_local: Some("fe80::1".parse().unwrap()),
            gateway: Some("fe80::1".parse().unwrap()),
            ifindex: Some(2),
            interface: Some("eth0".into()),
            as_path: vec![65001, 65100],
            local_pref: Some(100),
            med: None,
            best: true,
            multipath: true,
            stale: false,
            long_lived_stale: false,
            not_installed: None,
            not_advertised: vec!["fe80::2: no policy".into()],
            runtime: false,
            communities: vec!["65001:7".into()],
        }]),
        Response::Fib(FibReport {
            installed: 3,
            pending: 0,
            link_down: 0,
            stale: 1,
            initial_sync_done: true,
            source_address_added: false,
            hop_sets: 1,
            nexthop_objects: 2,
            failed_count: 1,
            failed: vec![FailedRow {
                prefix,
                error: "No route to host".into(),
            }],
            conflict_count: 1,
            conflicts: vec![ConflictRow {
                prefix,
                existing: "proto static".into(),
            }],
        }),
        Response::Bfd(vec![BfdRow {
            peer: "fe80::1".parse().unwrap(),
            interface: Some("eth0".into()),
            state: "Up".into(),
            remote_state: "Up".into(),
            diagnostic: "None".into(),
            remote_diagnostic: "None".into(),
            min_tx_ms: 300,
            min_rx_ms: 300,
            multiplier: 3,
            tx_interval_ms: 290,
            detection_time_ms: 900,
            uptime: Some(8),
            local_discriminator: 1,
            remote_discriminator: 2,
            packets_sent: 10,
            packets_received: 11,
            source_address: Some("fe80::2".parse().unwrap()),
            source_port: 49153,
        }]),
        Response::Status(StatusReport {
            router_id: "192.0.2.2".parse().unwrap(),
            asn: 65002,
            listen: Some("[::]:179".parse().unwrap()),
            neighbors: 1,
            warnings: vec!["forwarding is off".into()],
        }),
        Response::Reset {
            neighbor: "fe80::1".parse().unwrap(),
            hard: true,
        },
        Response::Refresh {
            neighbor: "fe80::1".parse().unwrap(),
        },
        Response::Shutdown,
        Response::Announced {
            prefix,
            communities: vec!["65000:1".into()],
            replaced: false,
        },
        Response::Withdrawn { prefix },
        Response::Watching,
    ]
}

#[test]
fn every_request_round_trips_with_its_version() {
    for request in every_request() {
        let line = RequestLine {
            version: PROTOCOL_VERSION,
            request,
        };
        round_trip(&line);
        let v = serde_json::to_value(&line).unwrap();
        assert_eq!(v["version"], PROTOCOL_VERSION, "{v}");
        assert!(v["command"].is_string(), "{v}");
    }
}

#[test]
fn every_response_and_error_round_trips_with_its_version() {
    let errors = vec![
        ErrorReply::VersionMismatch {
            daemon: 1,
            client: None,
        },
        ErrorReply::BadRequest {
            message: "x".into(),
        },
        ErrorReply::NotAnnounced {
            prefix: "10.0.0.0/8".parse().unwrap(),
        },
        ErrorReply::FibDisabled,
        ErrorReply::Failed {
            message: "y".into(),
        },
    ];
    let bodies = every_response()
        .into_iter()
        .map(ReplyBody::Ok)
        .chain(errors.into_iter().map(ReplyBody::Error));
    for body in bodies {
        let line = ReplyLine {
            version: PROTOCOL_VERSION,
            body,
        };
        round_trip(&line);
        let v = serde_json::to_value(&line).unwrap();
        assert_eq!(v["version"], PROTOCOL_VERSION, "{v}");
        assert!(v["ok"].is_object() || v["error"]["kind"].is_string(), "{v}");
    }
}

#[test]
fn every_watch_event_round_trips_with_its_version() {
    let events = vec![
        WatchEventRow::Session {
            neighbor: "fe80::1".parse().unwrap(),
            interface: Some("eth0".into()),
            old: SessionState::OpenConfirm,
            new: SessionState::Established,
        },
        WatchEventRow::Route {
            prefix: "10.99.0.0/24".parse().unwrap(),
            change: bgp::RouteEventKind::Added,
            origin: bgp::RouteOrigin::Runtime,
            next_hops: vec![HopRow {
                gateway: "fe80::1".parse().unwrap(),
                interface: Some("eth0".into()),
            }],
        },
        WatchEventRow::Lagged { missed: 17 },
    ];
    for event in events {
        let line = WatchLine {
            version: PROTOCOL_VERSION,
            event,
        };
        round_trip(&line);
    }
    let text = serde_json::to_string(&WatchLine {
        version: PROTOCOL_VERSION,
        event: WatchEventRow::Lagged { missed: 3 },
    })
    .unwrap();
    assert_eq!(text, r#"{"version":1,"event":"lagged","missed":3}"#);
}

/// The field names scripts and the tests read stay what they were.
#[test]
fn the_wire_form_keeps_its_field_names() {
    let v = serde_json::to_value(neighbor_row()).unwrap();
    for key in [
        "address",
        "state",
        "last_error",
        "last_error_at",
        "remote_address",
    ] {
        assert!(v.get(key).is_some(), "{key} missing in {v}");
    }
    assert_eq!(v["state"], "Established");
    assert_eq!(v["counts"]["accepted"], 4);
    let r = Request::Reset {
        neighbor: "fe80::1".parse().unwrap(),
        hard: false,
    };
    let line = RequestLine {
        version: PROTOCOL_VERSION,
        request: r,
    };
    assert_eq!(
        serde_json::to_string(&line).unwrap(),
        r#"{"version":1,"command":"reset","neighbor":"fe80::1"}"#
    );
}
