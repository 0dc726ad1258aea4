//! Prometheus metrics over plain HTTP (`GET /metrics`). Names follow the
//! `bgp_peer_*` style GoBGP and bird_exporter users know, under `via6_`.

use std::fmt::Write as _;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::daemon::Parts;

pub async fn serve(listener: TcpListener, parts: Arc<Parts>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let parts = parts.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let n = match tokio::time::timeout(
                std::time::Duration::from_secs(5),
                stream.read(&mut buf),
            )
            .await
            {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let head = String::from_utf8_lossy(buf.get(..n).unwrap_or_default());
            let response = if head.starts_with("GET /metrics") || head.starts_with("GET / ") {
                let body = render(&parts).await;
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
            };
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

fn label_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders every metric from the same status the control socket serves.
pub async fn render(parts: &Parts) -> String {
    let mut out = String::new();
    let neighbors = serde_json::to_value(parts.speaker.neighbors().await).unwrap_or_default();
    let gauges: [(&str, &str, &str); 6] = [
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
        (
            "via6_bgp_peer_updates_received_total",
            "UPDATE messages received",
            "updates_received",
        ),
    ];
    let peers = neighbors.as_array().cloned().unwrap_or_default();
    for (name, help, field) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for p in &peers {
            let peer = label_escape(&p["address"].to_string().replace('"', ""));
            let asn = &p["remote_as"];
            let value = if field == "up" {
                f64::from(u8::from(p["state"] == "Established"))
            } else {
                p[field]
                    .as_f64()
                    .or_else(|| p["counts"][field].as_f64())
                    .unwrap_or(0.0)
            };
            let _ = writeln!(out, "{name}{{peer=\"{peer}\",remote_as=\"{asn}\"}} {value}");
        }
    }
    out.push_str(&updates_counter(
        &peers,
        "updates_sent",
        "via6_bgp_peer_updates_sent_total",
    ));
    if let Some(b) = parts.bfd.get() {
        out.push_str(&bfd_metrics(&b.sessions().await.unwrap_or_default()));
    }
    if let Some(fib) = &parts.fib {
        let status = serde_json::to_value(fib.status().await).unwrap_or_default();
        for (name, field, help) in [
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
        ] {
            let v = &status[field];
            let n = v
                .as_u64()
                .or_else(|| v.as_array().map(|a| a.len() as u64))
                .unwrap_or(0);
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {n}");
        }
    }
    out
}

fn updates_counter(peers: &[serde_json::Value], field: &str, name: &str) -> String {
    let mut out = format!("# HELP {name} UPDATE messages sent\n# TYPE {name} counter\n");
    for p in peers {
        let peer = label_escape(&p["address"].to_string().replace('"', ""));
        let v = p[field].as_f64().unwrap_or(0.0);
        let _ = writeln!(out, "{name}{{peer=\"{peer}\"}} {v}");
    }
    out
}

/// One series per BFD session, labelled by peer and interface.
fn bfd_metrics(sessions: &[bfd::SessionInfo]) -> String {
    let mut out = String::new();
    type Get = fn(&bfd::SessionInfo) -> f64;
    let series: [(&str, &str, &str, Get); 5] = [
        (
            "via6_bfd_session_up",
            "gauge",
            "1 when the BFD session is Up",
            |s| f64::from(u8::from(s.state == bfd::State::Up)),
        ),
        (
            "via6_bfd_session_detection_time_seconds",
            "gauge",
            "time without packets after which the session goes Down",
            |s| s.detection_time.as_secs_f64(),
        ),
        (
            "via6_bfd_session_uptime_seconds",
            "gauge",
            "seconds since Up",
            |s| s.uptime.map_or(0.0, |d| d.as_secs() as f64),
        ),
        (
            "via6_bfd_packets_sent_total",
            "counter",
            "control packets sent",
            |s| s.tx_packets as f64,
        ),
        (
            "via6_bfd_packets_received_total",
            "counter",
            "control packets received",
            |s| s.rx_packets as f64,
        ),
    ];
    for (name, kind, help, get) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in sessions {
            let _ = writeln!(
                out,
                "{name}{{peer=\"{}\",interface=\"{}\"}} {}",
                s.peer,
                label_escape(s.interface.as_deref().unwrap_or("")),
                get(s)
            );
        }
    }
    out
}
