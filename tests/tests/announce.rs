//! Announcing at run time, end to end, between two via6d on a link with
//! only IPv6 link-local addresses: `via6ctl announce` on A puts the prefix
//! in B's kernel (`via inet6 fe80::1 dev eth0`) and a ping from B crosses
//! it, SIGHUP on A keeps it, `via6ctl watch` on A prints its route event,
//! `via6ctl withdraw` takes it out of B's kernel, a second withdraw is
//! refused, a request of another protocol version is refused by name, and
//! a session reset shows as a session event. Runs as root in
//! network namespaces.

use std::io::BufRead as _;
use std::net::Ipv4Addr;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use interop::check::{kernel_route_absent, kernel_route_has, via6_established, via6_has};
use interop::lab::{Host, Lab};
use interop::via6::{Via6Config, Via6Neighbor, Via6d};
use interop::{scenario, Error, Result};

const T: Duration = Duration::from_secs(30);
const PREFIX: &str = "10.99.0.0/24";

fn check(cond: bool, what: impl Into<String>) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(Error::Check(what.into()))
    }
}

/// `via6ctl watch` on a daemon, its lines read by a thread.
struct Watcher {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Watcher {
    fn start(lab: &Lab, host: &Host, v: &Via6d) -> Result<Watcher> {
        let socket = v.daemon.socket.to_string_lossy().into_owned();
        let ctl = v.via6ctl.to_string_lossy().into_owned();
        let mut child = lab
            .command(host, &[&ctl, "--socket", &socket, "watch"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io("via6ctl watch", e))?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| Error::Check("via6ctl watch: no stdout".into()))?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Watcher { child, lines })
    }

    /// The first line within `limit` that `want` accepts; every line
    /// must be a JSON object of protocol version 1.
    fn until(
        &self,
        limit: Duration,
        what: &str,
        want: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value> {
        let end = std::time::Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                return Err(Error::Check(format!("watch: no {what} in {seen:?}")));
            };
            let v: serde_json::Value = serde_json::from_str(&line)
                .map_err(|e| Error::Check(format!("watch line not JSON ({e}): {line}")))?;
            check(
                v["version"] == 1,
                format!("watch line without version 1: {line}"),
            )?;
            if want(&v) {
                return Ok(v);
            }
            seen.push(line);
        }
    }

    /// Every line that came so far.
    fn drain(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn route_event(v: &serde_json::Value, change: &str) -> bool {
    v["event"] == "route" && v["prefix"] == PREFIX && v["change"] == change
}

/// Waits until the watcher sees events: announces (and then withdraws) a
/// probe prefix until its event shows, as the watcher says nothing when
/// it has subscribed.
fn subscribed(a: &Via6d, watch: &Watcher) -> Result<()> {
    const PROBE: &str = "10.97.0.0/24";
    for _ in 0..30 {
        a.ctl(&["announce", PROBE])?;
        let seen = watch.until(Duration::from_secs(1), "probe", |v| v["prefix"] == PROBE);
        if seen.is_ok() {
            a.ctl(&["withdraw", PROBE])?;
            return Ok(());
        }
    }
    Err(Error::Check("via6ctl watch never showed an event".into()))
}

/// One raw line to the control socket and the reply, parsed.
fn raw_request(v: &Via6d, line: &str) -> Result<serde_json::Value> {
    use std::io::Write as _;
    let mut s = std::os::unix::net::UnixStream::connect(&v.daemon.socket)
        .map_err(|e| Error::io("connect to the control socket", e))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| Error::io("control socket timeout", e))?;
    writeln!(s, "{line}").map_err(|e| Error::io("write a request", e))?;
    let mut reply = String::new();
    std::io::BufReader::new(s)
        .read_line(&mut reply)
        .map_err(|e| Error::io("read the reply", e))?;
    serde_json::from_str(&reply).map_err(|e| Error::Check(format!("reply {reply:?}: {e}")))
}

fn config(router_id: u8, asn: u32, peer: &str, peer_as: u32) -> Via6Config {
    let mut c = Via6Config::new(Ipv4Addr::new(192, 0, 2, router_id), asn);
    c.neighbors.push(Via6Neighbor::open(peer, peer_as));
    c
}

#[test]
fn announce_reaches_the_peer_survives_a_reload_and_withdraw_removes_it() {
    scenario("ctl-announce", |lab| {
        let a_host = lab.add_host("ctla")?;
        let b_host = lab.add_host("ctlb")?;
        lab.link(&a_host, "eth0", &b_host, "eth0")?;
        // A answers pings to 10.99.0.1; B sends them from 10.0.8.2, which
        // it originates so that A can answer.
        lab.add_addr(&a_host, "lo", "10.99.0.1/32")?;
        let mut a_cfg = config(1, 65001, "fe80::2%eth0", 65002);
        a_cfg.source_address = Some(Ipv4Addr::new(10, 0, 8, 1));
        let a = Via6d::start(lab, &a_host, "via6-a", &a_cfg)?;
        let mut b_cfg = config(2, 65002, "fe80::1%eth0", 65001);
        b_cfg.source_address = Some(Ipv4Addr::new(10, 0, 8, 2));
        b_cfg.originate_v4 = vec!["10.0.8.2/32".into()];
        let b = Via6d::start(lab, &b_host, "via6-b", &b_cfg)?;
        lab.wait_until(T, "A Established with B", || {
            via6_established(&a, "fe80::2%eth0")
        })?;
        lab.wait_until(T, "B's 10.0.8.2/32 in A's kernel", || {
            kernel_route_has(lab, &a_host, "10.0.8.2/32", &["via inet6 fe80::2"])
        })?;
        let watch = Watcher::start(lab, &a_host, &a)?;
        subscribed(&a, &watch)?;

        let said = a.ctl(&["announce", PREFIX, "--community", "65001:7"])?;
        check(
            said.contains("announced 10.99.0.0/24"),
            format!("announce: {said}"),
        )?;
        lab.wait_until(T, "the announced prefix in B's kernel", || {
            kernel_route_has(lab, &b_host, PREFIX, &["via inet6 fe80::1", "dev eth0"])
        })?;
        lab.wait_until(T, "B's RIB has it with the community", || {
            via6_has(&b, "routes", PREFIX, &["65001:7"])
        })?;
        lab.wait_until(T, "a ping from B to 10.99.0.1 through it", || {
            let ping = lab.exec(&b_host, &["ping", "-4", "-c", "1", "-W", "2", "10.99.0.1"])?;
            check(ping.contains("1 received"), format!("ping: {ping}")).map(|()| true)
        })?;
        // A shows it as run-time.
        let rows = a.ctl_json(&["routes", PREFIX])?;
        check(
            rows.as_array().is_some_and(|r| {
                r.iter()
                    .any(|x| x["runtime"] == true && x["peer"].is_null())
            }),
            format!("A's routes: {rows}"),
        )?;
        let table = a.ctl(&["routes", PREFIX])?;
        check(table.contains("runtime"), format!("A's table: {table}"))?;
        let added = watch.until(T, "route event for the prefix", |v| route_event(v, "added"))?;
        check(
            added["origin"] == "runtime",
            format!("watch: not a runtime route: {added}"),
        )?;

        // A reload with a new config-originated prefix: it arrives, and
        // the run-time one stays.
        a_cfg.originate_v4 = vec!["10.98.0.0/24".into()];
        std::fs::write(&a.conf, a_cfg.render(&a.daemon.socket))
            .map_err(|e| Error::io("rewrite A's config", e))?;
        lab.signal(&a.daemon, libc::SIGHUP)?;
        lab.wait_until(T, "the reloaded config's prefix in B's kernel", || {
            kernel_route_has(lab, &b_host, "10.98.0.0/24", &["via inet6 fe80::1"])
        })?;
        check(
            kernel_route_has(lab, &b_host, PREFIX, &["via inet6 fe80::1"]).is_ok(),
            "the announced prefix left B's kernel with the reload",
        )?;
        let removed: Vec<String> = watch
            .drain()
            .into_iter()
            .filter(|l| l.contains(PREFIX) && l.contains("removed"))
            .collect();
        check(
            removed.is_empty(),
            format!("removed on reload: {removed:?}"),
        )?;

        let said = a.ctl(&["withdraw", PREFIX])?;
        check(
            said.contains("withdrawn 10.99.0.0/24"),
            format!("withdraw: {said}"),
        )?;
        lab.wait_until(T, "the prefix gone from B's kernel", || {
            kernel_route_absent(lab, &b_host, PREFIX)
        })?;
        watch.until(T, "removal event for the prefix", |v| {
            route_event(v, "removed")
        })?;
        // Twice is an error, named.
        let again = a.ctl(&["withdraw", PREFIX]);
        let Err(Error::Command { stderr, .. }) = again else {
            return Err(Error::Check(format!("a second withdraw: {again:?}")));
        };
        check(
            stderr.contains("10.99.0.0/24 was not announced at run time"),
            format!("second withdraw said: {stderr}"),
        )?;
        // A client of another protocol version is refused by name.
        let reply = raw_request(&a, r#"{"version":2,"command":"neighbors"}"#)?;
        check(
            reply["version"] == 1
                && reply["error"]["kind"] == "version-mismatch"
                && reply["error"]["client"] == 2,
            format!("version 2 request answered {reply}"),
        )?;
        // A session event: the session reset leaves Established.
        a.ctl(&["neighbor", "fe80::2%eth0", "reset"])?;
        let e = watch.until(T, "session event", |v| {
            v["event"] == "session" && v["old"] == "Established"
        })?;
        check(
            e["neighbor"] == "fe80::2" && e["interface"] == "eth0",
            format!("session event: {e}"),
        )
    });
}
