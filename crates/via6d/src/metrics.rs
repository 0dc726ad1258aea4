//! Prometheus metrics over plain HTTP (`GET /metrics`). Names follow the
//! `bgp_peer_*` style GoBGP and bird_exporter users know, under `via6_`;
//! the exposition is `prometheus-client`'s.

use std::sync::Arc;

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::daemon::Parts;

/// The Prometheus text format; its parsers skip the `# EOF` line
/// prometheus-client ends the page with.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn serve(listener: TcpListener, parts: Arc<Parts>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let parts = parts.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let Some(n) = read_head(&mut stream, &mut buf).await else {
                return;
            };
            let head = String::from_utf8_lossy(buf.get(..n).unwrap_or_default());
            let response = if head.starts_with("GET /metrics") || head.starts_with("GET / ") {
                let body = render(&parts).await;
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
            };
            let _ = stream.write_all(response.as_bytes()).await;
            // Close our side, then take what the client still sends: a
            // socket closed with unread input is reset, and the client
            // may then lose the answer.
            let _ = stream.shutdown().await;
            let mut rest = [0u8; 512];
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
                while matches!(stream.read(&mut rest).await, Ok(n) if n > 0) {}
            })
            .await;
        });
    }
}

/// Reads the request head (up to the blank line, at most `buf.len()`
/// bytes, within 5 s); its length, or `None` when the client gave up.
async fn read_head(stream: &mut tokio::net::TcpStream, buf: &mut [u8; 2048]) -> Option<usize> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut n = 0;
    while n < buf.len() {
        let free = buf.get_mut(n..)?;
        match tokio::time::timeout_at(deadline, stream.read(free)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(k)) => n += k,
            Ok(Err(_)) => return None,
        }
        if buf.get(..n)?.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    (n > 0).then_some(n)
}

/// The labels of a per-session metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: String,
    remote_as: String,
}

/// Per-session gauges: name, help, and the field of a `neighbors` row.
const PEER_GAUGES: [(&str, &str, &str); 5] = [
    (
        "via6_bgp_peer_up",
        "1 when the session is Established",
        "up",
    ),
    (
        "via6_bgp_peer_uptime_seconds",
        "seconds since Established",
        "uptime",
    ),
    (
        "via6_bgp_peer_prefixes_received",
        "prefixes received from the peer",
        "received",
    ),
    (
        "via6_bgp_peer_prefixes_accepted",
        "prefixes accepted by import policy",
        "accepted",
    ),
    (
        "via6_bgp_peer_prefixes_advertised",
        "prefixes advertised to the peer",
        "advertised",
    ),
];

/// Per-session counters, under their full names (see [`Total`]).
const PEER_COUNTERS: [(&str, &str, &str); 2] = [
    (
        "via6_bgp_peer_updates_received_total",
        "UPDATE messages received",
        "updates_received",
    ),
    (
        "via6_bgp_peer_updates_sent_total",
        "UPDATE messages sent",
        "updates_sent",
    ),
];

/// FIB gauges: name, field of the FIB status, help.
const FIB_GAUGES: [(&str, &str, &str); 4] = [
    (
        "via6_fib_routes_installed",
        "installed",
        "routes installed in the kernel",
    ),
    (
        "via6_fib_routes_pending",
        "pending",
        "routes waiting for the kernel",
    ),
    (
        "via6_fib_routes_failed",
        "failed",
        "routes the kernel refused",
    ),
    (
        "via6_fib_routes_foreign_conflicts",
        "foreign",
        "prefixes held by a route via6 did not install",
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

/// A number of a status row: the field itself, or under `counts`.
fn field(row: &serde_json::Value, name: &str) -> u64 {
    row[name]
        .as_u64()
        .or_else(|| row["counts"][name].as_u64())
        .unwrap_or(0)
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Renders every metric from the same status the control socket serves,
/// in a registry made for this one scrape.
pub async fn render(parts: &Parts) -> String {
    let neighbors = serde_json::to_value(parts.speaker.neighbors().await).unwrap_or_default();
    let peers = neighbors.as_array().cloned().unwrap_or_default();
    let fib = match &parts.fib {
        Some(fib) => Some(serde_json::to_value(fib.status().await).unwrap_or_default()),
        None => None,
    };
    let bfd = match parts.bfd.get() {
        Some(b) => b.sessions().await.unwrap_or_default(),
        None => Vec::new(),
    };
    encode_status(&peers, fib.as_ref(), &bfd)
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

fn encode_status(
    peers: &[serde_json::Value],
    fib: Option<&serde_json::Value>,
    bfd: &[bfd::SessionInfo],
) -> String {
    let mut registry = Registry::default();
    let labels = |p: &serde_json::Value| PeerLabels {
        peer: label_escape(p["address"].as_str().unwrap_or_default()),
        remote_as: label_escape(&p["remote_as"].to_string()),
    };
    for (name, help, key) in PEER_GAUGES {
        let family = Family::<PeerLabels, Gauge>::default();
        for p in peers {
            let value = match key {
                "up" => u64::from(p["state"] == "Established"),
                _ => field(p, key),
            };
            family.get_or_create(&labels(p)).set(gauge_value(value));
        }
        registry.register(name, help, family);
    }
    for (name, help, key) in PEER_COUNTERS {
        let family = Family::<PeerLabels, Total>::default();
        for p in peers {
            family
                .get_or_create(&labels(p))
                .0
                .store(field(p, key), Ordering::Relaxed);
        }
        registry.register(name, help, family);
    }
    if let Some(status) = fib {
        for (name, key, help) in FIB_GAUGES {
            let v = &status[key];
            let n = v
                .as_u64()
                .or_else(|| v.as_array().map(|a| a.len() as u64))
                .unwrap_or(0);
            let gauge = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
            gauge.set(gauge_value(n));
            registry.register(name, help, gauge);
        }
    }
    register_bfd(&mut registry, bfd);
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        let peers = vec![
            serde_json::json!({
                "address": "fe80::1", "remote_as": 65001, "state": "Established",
                "uptime": 42, "updates_received": 7, "updates_sent": 3,
                "counts": {"received": 10, "accepted": 9, "advertised": 2},
            }),
            serde_json::json!({
                "address": "2001:db8::\"x", "remote_as": 65002, "state": "Active",
                "uptime": null, "updates_received": 0, "updates_sent": 0,
                "counts": {"received": 0, "accepted": 0, "advertised": 0},
            }),
        ];
        let fib = serde_json::json!({"installed": 9, "pending": 0, "failed": [], "foreign": ["10.0.0.0/8"]});
        encode_status(&peers, Some(&fib), &[])
    }

    #[test]
    fn names_and_values_stay() {
        let page = sample();
        for line in [
            "via6_bgp_peer_up{peer=\"fe80::1\",remote_as=\"65001\"} 1",
            "via6_bgp_peer_up{peer=\"2001:db8::\\\"x\",remote_as=\"65002\"} 0",
            "via6_bgp_peer_uptime_seconds{peer=\"fe80::1\",remote_as=\"65001\"} 42",
            "via6_bgp_peer_prefixes_accepted{peer=\"fe80::1\",remote_as=\"65001\"} 9",
            "via6_bgp_peer_updates_received_total{peer=\"fe80::1\",remote_as=\"65001\"} 7",
            "via6_bgp_peer_updates_sent_total{peer=\"fe80::1\",remote_as=\"65001\"} 3",
            "# TYPE via6_bgp_peer_updates_sent_total counter",
            "via6_fib_routes_installed 9",
            "via6_fib_routes_foreign_conflicts 1",
            "# EOF",
        ] {
            assert!(page.lines().any(|l| l == line), "no {line:?} in\n{page}");
        }
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
