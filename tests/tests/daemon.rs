//! The daemon's life cycle, end to end, between two via6d instances on a
//! link that carries only IPv6 link-local addresses: routes in both
//! kernels as `via inet6`, `ping -4` across, SIGTERM cleanup with Cease/2,
//! restart after SIGKILL without duplicates or stale routes, SIGHUP
//! reload, and the metrics page. Runs as root in network namespaces.

use std::net::Ipv4Addr;
use std::time::Duration;

use e2e::monitor::RouteMonitor;
use interop::lab::{Host, Lab};
use interop::via6::{Via6Config, Via6Neighbor, Via6d};
use interop::{scenario, Error, Result};

const T: Duration = Duration::from_secs(30);

/// A: AS 65001 owning 198.51.100.0/24 (198.51.100.1 on lo answers ping).
fn config_a(extra_prefixes: &[&str]) -> Via6Config {
    let mut c = Via6Config::new(Ipv4Addr::new(192, 0, 2, 1), 65001);
    c.neighbors.push(Via6Neighbor::open("fe80::2%eth0", 65002));
    c.originate_v4 = vec!["198.51.100.0/24".into()];
    c.originate_v4
        .extend(extra_prefixes.iter().map(|p| p.to_string()));
    c.source_address = Some(Ipv4Addr::new(198, 51, 100, 1));
    c
}

/// B: AS 65002, an IPv6-only host whose only IPv4 address is 10.0.8.42,
/// which via6d itself puts on lo.
fn config_b() -> Via6Config {
    let mut c = Via6Config::new(Ipv4Addr::new(192, 0, 2, 2), 65002);
    c.neighbors.push(Via6Neighbor::open("fe80::1%eth0", 65001));
    c.originate_v4 = vec!["10.0.8.42/32".into()];
    c.source_address = Some(Ipv4Addr::new(10, 0, 8, 42));
    c
}

struct Pair {
    a_host: Host,
    b_host: Host,
    a: Via6d,
    b: Via6d,
}

fn pair(lab: &Lab, a_cfg: &Via6Config, b_cfg: &Via6Config) -> Result<Pair> {
    let a_host = lab.add_host("a")?;
    let b_host = lab.add_host("b")?;
    lab.link(&a_host, "eth0", &b_host, "eth0")?;
    let a = Via6d::start(lab, &a_host, "via6-a", a_cfg)?;
    let b = Via6d::start(lab, &b_host, "via6-b", b_cfg)?;
    Ok(Pair {
        a_host,
        b_host,
        a,
        b,
    })
}

/// `ip -4 route show [PREFIX] proto bgp` lines in a host; "" = every prefix.
fn bgp_routes(lab: &Lab, host: &Host, prefix: &str) -> Result<Vec<String>> {
    let mut args = vec!["-4", "route", "show"];
    if !prefix.is_empty() {
        args.push(prefix);
    }
    args.extend(["proto", "bgp"]);
    let out = lab.ip(host, &args)?;
    Ok(out.lines().map(str::to_string).collect())
}

fn has_route(lab: &Lab, host: &Host, prefix: &str, needle: &str) -> Result<bool> {
    Ok(bgp_routes(lab, host, prefix)?
        .iter()
        .any(|l| l.contains(needle)))
}

fn check(cond: bool, what: impl Into<String>) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(Error::Check(what.into()))
    }
}

/// SIGHUP to a running via6d (`ip netns exec` execs it, so the pid is its own).
fn hangup(v: &Via6d) -> Result<()> {
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(v.daemon.pid as i32, libc::SIGHUP) };
    check(rc == 0, "SIGHUP could not be sent")
}

/// A text field (`state`, `last_error`) of the peer at `address` in
/// `via6ctl --json neighbors`; "" when the field is empty.
fn neighbor_field(v: &Via6d, address: &str, field: &str) -> Result<String> {
    let j = v.ctl_json(&["neighbors"])?;
    let rows = j.as_array().map(Vec::as_slice).unwrap_or_default();
    rows.iter()
        .find(|r| r["address"].as_str() == Some(address))
        .map(|r| r[field].as_str().unwrap_or_default().to_string())
        .ok_or_else(|| Error::Check(format!("no neighbour {address} in {j}")))
}

fn neighbor_state(v: &Via6d, address: &str) -> Result<String> {
    neighbor_field(v, address, "state")
}

/// The peer `neighbor` (as the log names it, `fe80::2%eth0`) sent
/// NOTIFICATION `code`/`subcode` (RFC 4486 Cease subcodes) at some point:
/// read from via6d's log, which keeps it, unlike `last_error`, which the
/// next failed reconnect overwrites.
fn received_notification(v: &Via6d, neighbor: &str, code: u8, subcode: u8) -> Result<bool> {
    let log = std::fs::read_to_string(&v.daemon.log).map_err(|e| Error::io("read log", e))?;
    let peer = format!("neighbor={neighbor} ");
    let what = format!("notification=NOTIFICATION {code}/{subcode} ");
    // Or carried in a Hard Reset (RFC 8538 §3), as between two via6d.
    let carried = format!(
        "notification=NOTIFICATION 6/9 (Cease: hard reset, for NOTIFICATION {code}/{subcode} "
    );
    let seen: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("peer sent NOTIFICATION") && l.contains(&peer))
        .collect();
    if seen
        .iter()
        .any(|l| l.contains(&what) || l.contains(&carried))
    {
        return Ok(true);
    }
    Err(Error::Check(format!(
        "no NOTIFICATION {code}/{subcode} from {neighbor}; received: {seen:?}"
    )))
}

/// The value of the sample named exactly `key` (name and labels) on a
/// Prometheus text page: the whole key is compared, so
/// `via6_fib_routes_installed 1` never matches a page that says `10`.
fn metric(page: &str, key: &str) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(k, _)| k.trim() == key)
        .and_then(|(_, v)| v.trim().parse().ok())
}

fn wait_both_routes(lab: &Lab, p: &Pair) -> Result<()> {
    lab.wait_until(T, "B: 198.51.100.0/24 via inet6 fe80::1 dev eth0", || {
        has_route(
            lab,
            &p.b_host,
            "198.51.100.0/24",
            "via inet6 fe80::1 dev eth0",
        )
    })?;
    lab.wait_until(T, "A: 10.0.8.42 via inet6 fe80::2 dev eth0", || {
        has_route(lab, &p.a_host, "10.0.8.42", "via inet6 fe80::2 dev eth0")
    })
}

#[test]
fn via6_to_via6_ping_then_sigterm_cleans_up() {
    scenario("e2e-ping-sigterm", |lab| {
        // Without graceful restart SIGTERM is a stop for good (with it,
        // a stop for a restart: interop/tests/graceful.rs).
        let mut b_cfg = config_b();
        for n in &mut b_cfg.neighbors {
            n.extra.push("graceful-restart: false".into());
        }
        let p = pair(lab, &config_a(&[]), &b_cfg)?;
        wait_both_routes(lab, &p)?;
        // The link has no IPv4 address; B's only IPv4 address is on lo.
        let eth0 = lab.ip(&p.b_host, &["-4", "addr", "show", "dev", "eth0"])?;
        check(eth0.trim().is_empty(), format!("eth0 has IPv4: {eth0}"))?;
        let lo = lab.ip(&p.b_host, &["-4", "addr", "show", "dev", "lo"])?;
        check(
            lo.contains("10.0.8.42/32"),
            format!("source address not on lo: {lo}"),
        )?;
        let route = bgp_routes(lab, &p.b_host, "198.51.100.0/24")?.join("\n");
        check(
            route.contains("src 10.0.8.42"),
            format!("no prefsrc: {route}"),
        )?;
        lab.exec(
            &p.b_host,
            &["ping", "-4", "-c", "2", "-W", "2", "198.51.100.1"],
        )?;

        // SIGTERM: Cease/2 to the peer, routes and the lo address gone.
        lab.stop(&p.b.daemon, libc::SIGTERM)?;
        let log = std::fs::read_to_string(&p.b.daemon.log).unwrap_or_default();
        check(
            log.contains("via6d stopped"),
            format!("no clean stop in log:\n{log}"),
        )?;
        check(
            bgp_routes(lab, &p.b_host, "")?.is_empty()
                && lab
                    .ip(&p.b_host, &["-6", "route", "show", "proto", "bgp"])?
                    .trim()
                    .is_empty(),
            "B's kernel still holds bgp routes after SIGTERM",
        )?;
        let lo = lab.ip(&p.b_host, &["-4", "addr", "show", "dev", "lo"])?;
        check(
            !lo.contains("10.0.8.42"),
            format!("lo address left behind: {lo}"),
        )?;
        lab.wait_until(T, "A: B's route withdrawn", || {
            Ok(bgp_routes(lab, &p.a_host, "10.0.8.42")?.is_empty())
        })?;
        lab.wait_until(T, "A saw Cease/2 (administrative shutdown)", || {
            received_notification(&p.a, "fe80::2%eth0", 6, 2)
        })
    });
}

#[test]
fn restart_after_sigkill_leaves_no_duplicates_and_no_stale_routes() {
    scenario("e2e-sigkill", |lab| {
        let mut p = pair(lab, &config_a(&["203.0.113.0/24"]), &config_b())?;
        wait_both_routes(lab, &p)?;
        lab.wait_until(T, "B: 203.0.113.0/24 installed", || {
            has_route(lab, &p.b_host, "203.0.113.0/24", "via inet6 fe80::1")
        })?;
        // SIGKILL: nothing is cleaned, the routes stay and keep forwarding.
        lab.kill(&p.b.daemon)?;
        check(
            has_route(lab, &p.b_host, "198.51.100.0/24", "via inet6 fe80::1")?,
            "routes vanished when via6d was killed",
        )?;
        // Every route change in B's kernel from here to the end of the
        // restart is recorded, so a delete and re-add cannot slip between
        // two samples.
        let monitor = RouteMonitor::start(lab, &p.b_host, "b-routes")?;
        // A stops announcing 203.0.113.0/24 while B is away.
        lab.stop(&p.a.daemon, libc::SIGTERM)?;
        p.a = Via6d::start(lab, &p.a_host, "via6-a", &config_a(&[]))?;
        // Restarted B adopts its own routes.
        p.b = Via6d::start(lab, &p.b_host, "via6-b", &config_b())?;
        wait_both_routes(lab, &p)?;
        // After End-of-RIB the stale route goes; the wanted one is there once.
        lab.wait_until(T, "B: stale 203.0.113.0/24 removed", || {
            Ok(bgp_routes(lab, &p.b_host, "203.0.113.0/24")?.is_empty())
        })?;
        // The restart never deleted the wanted route, not even briefly
        // (the stale one is the only deletion allowed).
        let events = monitor.finish()?;
        let deleted: Vec<&str> = events
            .iter()
            .filter(|e| e.deleted && e.prefix == "198.51.100.0/24")
            .map(|e| e.line.as_str())
            .collect();
        check(
            deleted.is_empty(),
            format!("the restart deleted a wanted route: {deleted:?}"),
        )?;
        check(
            events
                .iter()
                .any(|e| e.deleted && e.prefix == "203.0.113.0/24"),
            format!("the monitor never saw the stale route go: {events:?}"),
        )?;
        let wanted = bgp_routes(lab, &p.b_host, "198.51.100.0/24")?;
        check(wanted.len() == 1, format!("duplicates: {wanted:?}"))?;
        let all = bgp_routes(lab, &p.b_host, "")?;
        check(all.len() == 1, format!("B's bgp routes: {all:?}"))
    });
}

#[test]
fn sighup_reloads_and_a_bad_file_keeps_the_running_config() {
    scenario("e2e-sighup", |lab| {
        let p = pair(lab, &config_a(&[]), &config_b())?;
        wait_both_routes(lab, &p)?;
        // Announce one more prefix from B by reload.
        let mut b2 = config_b();
        b2.originate_v4.push("10.9.9.0/24".into());
        std::fs::write(&p.b.conf, b2.render(&p.b.daemon.socket))
            .map_err(|e| Error::io("rewrite config", e))?;
        hangup(&p.b)?;
        lab.wait_until(T, "A: 10.9.9.0/24 after B's reload", || {
            has_route(lab, &p.a_host, "10.9.9.0/24", "via inet6 fe80::2 dev eth0")
        })?;
        // A broken file is refused; the session and routes stay.
        std::fs::write(&p.b.conf, "router-id: 192.0.2.2\nasn: [not, a, number]\n")
            .map_err(|e| Error::io("break config", e))?;
        hangup(&p.b)?;
        lab.wait_until(T, "B logs the refused reload", || {
            let log = std::fs::read_to_string(&p.b.daemon.log).unwrap_or_default();
            Ok(log.contains("reload refused"))
        })?;
        check(lab.is_running(&p.b.daemon), "via6d died on a bad reload")?;
        let state = neighbor_state(&p.b, "fe80::1")?;
        check(state == "Established", format!("session dropped: {state}"))?;
        check(
            has_route(lab, &p.a_host, "10.9.9.0/24", "via inet6 fe80::2")?,
            "routes lost on a refused reload",
        )
    });
}

#[test]
fn metrics_page_reports_sessions_and_fib() {
    scenario("e2e-metrics", |lab| {
        let mut b = config_b();
        b.extra = "metrics: { listen: \"127.0.0.1:9179\" }\n".into();
        let p = pair(lab, &config_a(&[]), &b)?;
        wait_both_routes(lab, &p)?;
        let fetch = "exec 3<>/dev/tcp/127.0.0.1/9179; printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3";
        lab.wait_until(T, "metrics show the session up and one FIB route", || {
            let page = lab.exec(&p.b_host, &["bash", "-c", fetch])?;
            let up = metric(
                &page,
                "via6_bgp_peer_up{peer=\"fe80::1\",remote_as=\"65001\"}",
            );
            let installed = metric(&page, "via6_fib_routes_installed");
            if up == Some(1.0) && installed == Some(1.0) {
                return Ok(true);
            }
            Err(Error::Check(format!(
                "peer_up {up:?}, routes_installed {installed:?}"
            )))
        })
    });
}

#[test]
fn reset_and_deconfigure_send_the_right_cease() {
    scenario("e2e-reset", |lab| {
        let p = pair(lab, &config_a(&[]), &config_b())?;
        wait_both_routes(lab, &p)?;
        // `via6ctl neighbor ADDR reset`: Cease/4, then the session returns.
        p.b.ctl(&["neighbor", "fe80::1%eth0", "reset"])?;
        lab.wait_until(T, "A saw Cease/4 (administrative reset)", || {
            received_notification(&p.a, "fe80::2%eth0", 6, 4)
        })?;
        lab.wait_until(T, "session back after reset", || {
            Ok(neighbor_state(&p.b, "fe80::1")? == "Established")
        })?;
        wait_both_routes(lab, &p)?;
        // Reload without the neighbour: Cease/3, inside a Hard Reset since
        // both sides set N (RFC 8538); its routes leave B's kernel.
        let mut b2 = config_b();
        b2.neighbors.clear();
        std::fs::write(&p.b.conf, b2.render(&p.b.daemon.socket))
            .map_err(|e| Error::io("rewrite config", e))?;
        hangup(&p.b)?;
        lab.wait_until(
            T,
            "A saw Cease/3 (peer de-configured) as a Hard Reset",
            || {
                Ok(received_notification(&p.a, "fe80::2%eth0", 6, 3)?
                    && received_notification(&p.a, "fe80::2%eth0", 6, 9)?)
            },
        )?;
        lab.wait_until(T, "B's kernel route from A removed", || {
            Ok(bgp_routes(lab, &p.b_host, "")?.is_empty())
        })?;
        check(lab.is_running(&p.b.daemon), "via6d exited on reload")
    });
}
