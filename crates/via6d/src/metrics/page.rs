//! The metrics page: names follow the `bgp_peer_*` style GoBGP and
//! bird_exporter users know, under `via6_`; the exposition is
//! `prometheus-client`'s, the values the typed status the control socket
//! serves.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::daemon::Parts;

/// The labels of a per-session metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: String,
    remote_as: String,
}

type PeerGet = fn(&bgp::NeighborStatus) -> u64;

/// Per-session gauges: name, help, value.
const PEER_GAUGES: [(&str, &str, PeerGet); 5] = [
    (
        "via6_bgp_peer_up",
        "1 when the session is Established",
        |p| u64::from(p.state == bgp::fsm::State::Established),
    ),
    (
        "via6_bgp_peer_uptime_seconds",
        "seconds since Established",
        |p| p.uptime.unwrap_or(0),
    ),
    (
        "via6_bgp_peer_prefixes_received",
        "prefixes received from the peer",
        |p| p.counts.received,
    ),
    (
        "via6_bgp_peer_prefixes_accepted",
        "prefixes accepted by import policy",
        |p| p.counts.accepted,
    ),
    (
        "via6_bgp_peer_prefixes_advertised",
        "prefixes advertised to the peer",
        |p| p.counts.advertised,
    ),
];

/// Per-session counters, under their full names (see [`Total`]).
const PEER_COUNTERS: [(&str, &str, PeerGet); 2] = [
    (
        "via6_bgp_peer_updates_received_total",
        "UPDATE messages received",
        |p| p.updates_received,
    ),
    (
        "via6_bgp_peer_updates_sent_total",
        "UPDATE messages sent",
        |p| p.updates_sent,
    ),
];

type FibGet = fn(&fib::FibStatus) -> usize;

/// FIB gauges: name, help, value. The counts, not the status lists, which
/// are capped at `fib::STATUS_LIST_MAX`.
const FIB_GAUGES: [(&str, &str, FibGet); 4] = [
    (
        "via6_fib_routes_installed",
        "routes installed in the kernel",
        |f| f.installed,
    ),
    (
        "via6_fib_routes_pending",
        "routes waiting for the kernel",
        |f| f.pending,
    ),
    ("via6_fib_routes_failed", "routes the kernel refused", |f| {
        f.failed_count
    }),
    (
        "via6_fib_routes_foreign_conflicts",
        "prefixes held by a route via6 did not install",
        |f| f.conflict_count,
    ),
];

/// A counter read from the status at scrape time, written the way the
/// Prometheus text format (what the page is served as, and what
/// `promtool check metrics` reads) wants it: one family whose name ends in
/// `_total`. prometheus-client's own `Counter` writes OpenMetrics, which
/// adds `_total` to the samples but not to the family, and the text
/// format then reads them as two families.
#[derive(Debug, Default)]
struct Total(AtomicU64);

impl TypedMetric for Total {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for Total {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // A plain sample: the name as registered, no suffix.
        encoder.encode_gauge(&self.0.load(Ordering::Relaxed))
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

/// prometheus-client writes label values as given: escape them here.
fn label_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Renders every metric from the same status the control socket serves,
/// in a registry made for this one scrape.
pub async fn render(parts: &Parts) -> String {
    let peers = parts.speaker.neighbors().await;
    let fib = match &parts.fib {
        Some(fib) => Some(fib.status().await),
        None => None,
    };
    let (bfd, dropped) = match parts.bfd.get() {
        Some(b) => (
            b.sessions().await.unwrap_or_default(),
            b.counters().await.ok(),
        ),
        None => (Vec::new(), None),
    };
    encode_status(&peers, fib.as_ref(), &bfd, dropped.as_ref())
}

/// The labels of a per-BFD-session metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BfdLabels {
    peer: String,
    interface: String,
}

type Get = fn(&bfd::SessionInfo) -> f64;
type Count = fn(&bfd::SessionInfo) -> u64;

/// Per-BFD-session gauges.
const BFD_GAUGES: [(&str, &str, Get); 3] = [
    ("via6_bfd_session_up", "1 when the BFD session is Up", |s| {
        f64::from(u8::from(s.state == bfd::State::Up))
    }),
    (
        "via6_bfd_session_detection_time_seconds",
        "time without packets after which the session goes Down",
        |s| s.detection_time.as_secs_f64(),
    ),
    ("via6_bfd_session_uptime_seconds", "seconds since Up", |s| {
        s.uptime.map_or(0.0, |d| d.as_secs() as f64)
    }),
];

/// Per-BFD-session counters.
const BFD_COUNTERS: [(&str, &str, Count); 2] = [
    ("via6_bfd_packets_sent_total", "control packets sent", |s| {
        s.tx_packets
    }),
    (
        "via6_bfd_packets_received_total",
        "control packets received",
        |s| s.rx_packets,
    ),
];

fn register_bfd(registry: &mut Registry, sessions: &[bfd::SessionInfo]) {
    let labels = |s: &bfd::SessionInfo| BfdLabels {
        peer: label_escape(&s.peer.to_string()),
        interface: label_escape(s.interface.as_deref().unwrap_or("")),
    };
    for (name, help, get) in BFD_GAUGES {
        let family = Family::<BfdLabels, Gauge<f64, AtomicU64>>::default();
        for s in sessions {
            family.get_or_create(&labels(s)).set(get(s));
        }
        registry.register(name, help, family);
    }
    for (name, help, get) in BFD_COUNTERS {
        let family = Family::<BfdLabels, Total>::default();
        for s in sessions {
            family
                .get_or_create(&labels(s))
                .0
                .store(get(s), Ordering::Relaxed);
        }
        registry.register(name, help, family);
    }
}

/// The labels of the BFD drop counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    reason: &'static str,
}

/// Packets the BFD sockets refused before they reached a session, by
/// reason (RFC 5881 §5 hop limit, RFC 5880 §6.8.6 checks, no session, not
/// from the session's peer on its interface).
fn register_bfd_drops(registry: &mut Registry, c: &bfd::Counters) {
    let family = Family::<DropLabels, Total>::default();
    for (reason, n) in [
        ("bad_ttl", c.rx_bad_ttl),
        ("bad_packet", c.rx_bad_packet),
        ("no_session", c.rx_no_session),
        ("wrong_source", c.rx_wrong_source),
    ] {
        family
            .get_or_create(&DropLabels { reason })
            .0
            .store(n, Ordering::Relaxed);
    }
    registry.register(
        "via6_bfd_packets_dropped_total",
        "BFD packets refused before reaching a session",
        family,
    );
}

fn register_peers(registry: &mut Registry, peers: &[bgp::NeighborStatus]) {
    let labels = |p: &bgp::NeighborStatus| PeerLabels {
        peer: label_escape(&p.address.to_string()),
        remote_as: p.remote_as.to_string(),
    };
    for (name, help, get) in PEER_GAUGES {
        let family = Family::<PeerLabels, Gauge>::default();
        for p in peers {
            family.get_or_create(&labels(p)).set(gauge_value(get(p)));
        }
        registry.register(name, help, family);
    }
    for (name, help, get) in PEER_COUNTERS {
        let family = Family::<PeerLabels, Total>::default();
        for p in peers {
            family
                .get_or_create(&labels(p))
                .0
                .store(get(p), Ordering::Relaxed);
        }
        registry.register(name, help, family);
    }
}

fn encode_status(
    peers: &[bgp::NeighborStatus],
    fib: Option<&fib::FibStatus>,
    bfd: &[bfd::SessionInfo],
    bfd_dropped: Option<&bfd::Counters>,
) -> String {
    let mut registry = Registry::default();
    register_peers(&mut registry, peers);
    if let Some(status) = fib {
        for (name, help, get) in FIB_GAUGES {
            let gauge = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
            gauge.set(i64::try_from(get(status)).unwrap_or(i64::MAX));
            registry.register(name, help, gauge);
        }
    }
    register_bfd(&mut registry, bfd);
    if let Some(c) = bfd_dropped {
        register_bfd_drops(&mut registry, c);
    }
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(address: &str, remote_as: u32, state: bgp::fsm::State) -> bgp::NeighborStatus {
        bgp::NeighborStatus {
            peer: bgp::PeerId(remote_as),
            address: address.parse().unwrap(),
            interface: None,
            remote_as,
            description: None,
            state,
            uptime: None,
            local_address: None,
            remote_address: None,
            negotiated: None,
            counts: bgp::PeerCounts::default(),
            updates_received: 0,
            updates_sent: 0,
            last_error: None,
            last_error_at: None,
        }
    }

    fn sample() -> String {
        let mut up = peer("fe80::1", 65001, bgp::fsm::State::Established);
        up.uptime = Some(42);
        up.updates_received = 7;
        up.updates_sent = 3;
        up.counts.received = 10;
        up.counts.accepted = 9;
        up.counts.advertised = 2;
        let peers = vec![up, peer("2001:db8::1", 65002, bgp::fsm::State::Active)];
        // More failures and conflicts than the status lists carry: the
        // page counts them all.
        let fib = fib::FibStatus {
            installed: 9,
            failed_count: 300,
            conflict_count: 1,
            ..Default::default()
        };
        let dropped = bfd::Counters {
            rx_wrong_source: 4,
            rx_bad_ttl: 1,
            ..Default::default()
        };
        encode_status(&peers, Some(&fib), &[], Some(&dropped))
    }

    #[test]
    fn names_and_values_stay() {
        let page = sample();
        for line in [
            "via6_bgp_peer_up{peer=\"fe80::1\",remote_as=\"65001\"} 1",
            "via6_bgp_peer_up{peer=\"2001:db8::1\",remote_as=\"65002\"} 0",
            "via6_bgp_peer_uptime_seconds{peer=\"fe80::1\",remote_as=\"65001\"} 42",
            "via6_bgp_peer_prefixes_accepted{peer=\"fe80::1\",remote_as=\"65001\"} 9",
            "via6_bgp_peer_updates_received_total{peer=\"fe80::1\",remote_as=\"65001\"} 7",
            "via6_bgp_peer_updates_sent_total{peer=\"fe80::1\",remote_as=\"65001\"} 3",
            "# TYPE via6_bgp_peer_updates_sent_total counter",
            "via6_fib_routes_installed 9",
            "via6_fib_routes_failed 300",
            "via6_fib_routes_foreign_conflicts 1",
            "via6_bfd_packets_dropped_total{reason=\"wrong_source\"} 4",
            "via6_bfd_packets_dropped_total{reason=\"bad_ttl\"} 1",
            "# TYPE via6_bfd_packets_dropped_total counter",
            "# EOF",
        ] {
            assert!(page.lines().any(|l| l == line), "no {line:?} in\n{page}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn promtool_accepts_the_page() {
        use std::io::Write as _;
        let child = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            panic!("promtool is missing: install Debian's `prometheus` package (scripts/test-all does)");
        };
        let page = sample();
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(page.as_bytes())
            .expect("promtool reads the page");
        let out = child.wait_with_output().expect("promtool runs");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "promtool check metrics: {said}\n{page}"
        );
        assert!(
            said.trim().is_empty(),
            "promtool check metrics: {said}\n{page}"
        );
    }
}
