//! What an operator sees, end to end, between two via6d on a link with
//! only IPv6 link-local addresses: a passive neighbour comes up with no
//! `listen:` at all, forwarding switched off is reported by `via6ctl`, and
//! an old error beside a session that came up since is shown with its age
//! and then hidden from the table (kept in `--json`). Runs as root in
//! network namespaces.

use std::net::Ipv4Addr;
use std::time::Duration;

use interop::check::{via6_established, via6_neighbor};
use interop::lab::{Host, Lab};
use interop::via6::{Via6Config, Via6Neighbor, Via6d};
use interop::{scenario, Error, Result};

const T: Duration = Duration::from_secs(30);

const LISTEN_LINE: &str = "listen: { address: \"::\", port: 179 }\n";

fn check(cond: bool, what: impl Into<String>) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(Error::Check(what.into()))
    }
}

fn config(router_id: u8, asn: u32, peer: &str, peer_as: u32) -> Via6Config {
    let mut c = Via6Config::new(Ipv4Addr::new(192, 0, 2, router_id), asn);
    c.neighbors.push(Via6Neighbor::open(peer, peer_as));
    c
}

fn hosts(lab: &Lab) -> Result<(Host, Host)> {
    let a = lab.add_host("a")?;
    let b = lab.add_host("b")?;
    lab.link(&a, "eth0", &b, "eth0")?;
    Ok((a, b))
}

fn forwarding(lab: &Lab, host: &Host, on: bool) -> Result<()> {
    let v = if on { "1" } else { "0" };
    lab.sysctl(host, "net.ipv4.ip_forward", v)?;
    lab.sysctl(host, "net.ipv6.conf.all.forwarding", v)
}

const FETCH_METRICS: &str =
    "exec 3<>/dev/tcp/127.0.0.1/9179; printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3";

/// `promtool check metrics` finds nothing to say about the body of an
/// HTTP response.
fn promtool_accepts(response: &str) -> Result<()> {
    use std::io::Write as _;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| Error::Check(format!("not an HTTP response: {response}")))?;
    check(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        format!("metrics headers: {head}"),
    )?;
    check(
        body.contains("via6_bgp_peer_up{peer=\"fe80::2\",remote_as=\"65002\"} 1"),
        format!("metrics without the session: {body}"),
    )?;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::io(
                "promtool (install Debian's `prometheus` package; scripts/test-all does)",
                e,
            )
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(body.as_bytes())
            .map_err(|e| Error::io("write to promtool", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io("promtool", e))?;
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    check(
        out.status.success() && said.trim().is_empty(),
        format!("promtool check metrics: {said}\n{body}"),
    )
}

#[test]
fn a_passive_neighbor_comes_up_without_listen_and_forwarding_off_is_reported() {
    scenario("e2e-ops-listen", |lab| {
        let (a_host, b_host) = hosts(lab)?;
        forwarding(lab, &a_host, false)?;
        // A never connects out and its file has no `listen:`.
        let mut a_cfg = config(1, 65001, "fe80::2%eth0", 65002);
        a_cfg.neighbors[0].passive = Some(true);
        a_cfg.extra = "metrics: { listen: \"127.0.0.1:9179\" }\n".into();
        let yaml = a_cfg.render(&Via6d::socket_for(lab, "via6-a"));
        check(
            yaml.contains(LISTEN_LINE),
            "the renderer's listen line moved",
        )?;
        let a = Via6d::start_yaml(lab, &a_host, "via6-a", &yaml.replace(LISTEN_LINE, ""))?;
        let _b = Via6d::start(
            lab,
            &b_host,
            "via6-b",
            &config(2, 65002, "fe80::1%eth0", 65001),
        )?;
        lab.wait_until(T, "A Established with B (B connected to A)", || {
            via6_established(&a, "fe80::2%eth0")
        })?;

        promtool_accepts(&lab.exec(&a_host, &["bash", "-c", FETCH_METRICS])?)?;

        // A re-advertises (export accept-all) with forwarding off: both
        // families are reported, in `status` and under `neighbors`.
        let status = a.ctl_json(&["status"])?;
        check(
            status["listen"] == "[::]:179",
            format!("status: listen {}", status["listen"]),
        )?;
        let warnings = status["warnings"].to_string();
        check(
            warnings.contains("IPv4 forwarding is off (net.ipv4.ip_forward=0)")
                && warnings.contains("IPv6 forwarding is off"),
            format!("status warnings: {warnings}"),
        )?;
        let table = a.ctl(&["neighbors"])?;
        check(
            table.contains("warning: IPv4 forwarding is off"),
            format!("neighbors: {table}"),
        )?;
        // Read afresh: switched on, the warnings go.
        forwarding(lab, &a_host, true)?;
        let status = a.ctl_json(&["status"])?;
        check(
            status["warnings"] == serde_json::json!([]),
            format!("warnings with forwarding on: {}", status["warnings"]),
        )?;
        check(
            !a.ctl(&["neighbors"])?.contains("warning:"),
            "neighbors still warns with forwarding on",
        )
    });
}

#[test]
fn an_old_error_is_aged_then_hidden_once_the_session_is_up() {
    scenario("e2e-ops-error", |lab| {
        let (a_host, b_host) = hosts(lab)?;
        // B connects to a port nobody listens on: every attempt is refused.
        let mut b_cfg = config(2, 65002, "fe80::1%eth0", 65001);
        b_cfg.neighbors[0].extra = vec!["port: 1790".into(), "connect-retry: 1".into()];
        let b = Via6d::start(lab, &b_host, "via6-b", &b_cfg)?;
        lab.wait_until(T, "B's connect refused", || {
            let n = via6_neighbor(&b, "fe80::1%eth0")?;
            Ok(n["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("refused")))
        })?;
        let table = b.ctl(&["neighbors"])?;
        check(
            table.contains("Connection refused (") && table.contains("s ago)"),
            format!("no age beside the error: {table}"),
        )?;
        // A connects to B's listener: up, while B's own attempts still fail.
        let _a = Via6d::start(
            lab,
            &a_host,
            "via6-a",
            &config(1, 65001, "fe80::2%eth0", 65002),
        )?;
        lab.wait_until(T, "B Established", || via6_established(&b, "fe80::1%eth0"))?;
        let n = via6_neighbor(&b, "fe80::1%eth0")?;
        check(
            n["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("refused"))
                && n["last_error_at"].as_u64().is_some(),
            format!("--json lost the error or its time: {n}"),
        )?;
        let table = b.ctl(&["neighbors"])?;
        check(
            table.contains("Established") && !table.contains("refused"),
            format!("a stale error beside Established: {table}"),
        )
    });
}

#[test]
fn the_default_listener_takes_an_ipv4_neighbor_too() {
    scenario("e2e-ops-listen4", |lab| {
        let (a_host, b_host) = hosts(lab)?;
        lab.add_addr(&a_host, "eth0", "192.0.2.101/24")?;
        lab.add_addr(&b_host, "eth0", "192.0.2.102/24")?;
        // A: passive, no `listen:`; B connects over IPv4, which reaches
        // A's [::]:179 as an IPv4-mapped address.
        let mut a_cfg = config(1, 65001, "192.0.2.102", 65002);
        a_cfg.neighbors[0].passive = Some(true);
        let yaml = a_cfg.render(&Via6d::socket_for(lab, "via6-a"));
        let a = Via6d::start_yaml(lab, &a_host, "via6-a", &yaml.replace(LISTEN_LINE, ""))?;
        let _b = Via6d::start(
            lab,
            &b_host,
            "via6-b",
            &config(2, 65002, "192.0.2.101", 65001),
        )?;
        lab.wait_until(T, "A Established with B over IPv4", || {
            via6_established(&a, "192.0.2.102")
        })?;
        let n = via6_neighbor(&a, "192.0.2.102")?;
        check(
            n["remote_address"]
                .as_str()
                .is_some_and(|r| r.starts_with("192.0.2.102:")),
            format!("remote address not the IPv4 peer: {n}"),
        )
    });
}
