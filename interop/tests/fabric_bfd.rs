//! A spine that stops forwarding without losing carrier (scenarios C5 and
//! C6): the unnumbered fabric of C3 (2 spines, 4 leaves, interface
//! peering, hold time 9 s, graceful restart off), ping flows from leaf
//! l1 to leaf l2 spread over both spines by ECMP, and then one spine
//! silenced with nftables (input, output and forward dropped, links up).
//!
//! - C5: BFD at 300 ms x 3 on every session. Every leaf's kernel holds
//!   only the other spine's next hop within 1 s of the block, the flow
//!   that crossed the silenced spine gets answers again within 1 s and
//!   loses nothing after that; the leaves' logs say BFD closed the
//!   sessions.
//! - C6: the same without BFD, for comparison: only the hold timer (6 to
//!   9 s after the block) moves the traffic.
//!
//! Times and losses are printed (`-- --nocapture`).

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use interop::dataplane::{forwarded, ping_once, wait_ping, Silencer};
use interop::fabric::{
    fill, leaf_routes_via, leaves_route_via, port, socket_for, start_via6d_yaml,
    with_neighbor_lines, Fabric, BFD_300MS, LEAF_TEMPLATE, SPINE_TEMPLATE,
};
use interop::traffic::{timed_events, timed_monitor, Background, Flow};
use interop::{scenario, Error, Lab, Result, Via6d};

/// Budget for the fabric to come up, and for the hold timer in C6.
const UP: Duration = Duration::from_secs(60);
/// The goal: traffic on the other spine within 1 s. Detection alone takes
/// 600-900 ms at 300 ms x 3 (the last packet lands up to one interval
/// before the block), so a run reports whether it met it; quiet runs do,
/// by about 100 ms (interop/README.md, "A silent spine").
const BFD_GOAL: Duration = Duration::from_millis(1000);
/// What fails the test: a failover that cannot be BFD's. Without BFD the
/// hold timer takes 6-9 s (C6); 1.5 s leaves a loaded machine room for
/// its run queue without letting anything but BFD explain the time.
const BFD_BOUND: Duration = Duration::from_millis(1500);
/// Ping sources on leaf l1's `lo`, inside its announced 10.11.0.0/24 so
/// that l2 routes the answers back: `10.11.0.1` (l1's gateway) to `.8`.
/// The multipath hash (L3: source and destination) spreads them over
/// both spines.
const SOURCES: u8 = 8;
/// Ping interval, seconds: 100 echo requests a second per flow.
const INTERVAL: &str = "0.01";

/// C5 and C6 time a failover on a shared machine: one at a time, so
/// that neither's eight ping flows slow the other's daemons.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn source(i: u8) -> String {
    format!("10.11.0.{}", i + 1)
}

/// The fabric of C3 from its templates, with `neighbor_lines` added to
/// every neighbour entry; returns the fabric and the daemons (spines
/// first).
fn start(lab: &Lab, neighbor_lines: &[&str]) -> Result<(Fabric, Vec<Via6d>)> {
    let f = Fabric::build(lab, 2, 4)?;
    let spine = with_neighbor_lines(SPINE_TEMPLATE, neighbor_lines)?;
    let leaf = with_neighbor_lines(LEAF_TEMPLATE, neighbor_lines)?;
    let mut daemons = Vec::new();
    for (n, h) in (1..=2u8).zip(f.spines.iter()) {
        let name = format!("via6d-s{n}");
        let yaml = fill(&spine, None, n, &socket_for(lab, &name));
        daemons.push(start_via6d_yaml(lab, h, &name, &yaml)?);
    }
    for (plan, h) in &f.leaves {
        let name = format!("via6d-l{}", plan.index);
        let yaml = fill(&leaf, Some(plan), 0, &socket_for(lab, &name));
        daemons.push(start_via6d_yaml(lab, h, &name, &yaml)?);
    }
    lab.wait_until(UP, "every leaf: ECMP via swp1 and swp2", || {
        leaves_route_via(lab, &f, &["swp1", "swp2"])
    })?;
    Ok((f, daemons))
}

/// Whether every daemon has one BFD session Up per link (4 on a spine,
/// 2 on a leaf), each detecting a silent peer within 900 ms.
fn bfd_up(daemons: &[Via6d]) -> Result<bool> {
    for d in daemons {
        let v = d.ctl_json(&["bfd"])?;
        let sessions = v.as_array().cloned().unwrap_or_default();
        let want = if d.daemon.name.contains("-s") { 4 } else { 2 };
        let up = sessions
            .iter()
            .filter(|s| s["state"] == "Up" && s["detection_time_ms"] == 900)
            .count();
        if up != want {
            return Err(Error::Check(format!(
                "{}: {up} of {want} BFD sessions Up at 900 ms: {v}",
                d.daemon.name
            )));
        }
    }
    Ok(true)
}

/// Which spine each source's ping crosses, from the spines' forwarding
/// counters (nothing else crosses a spine): one answered ping per source,
/// counted as (forwarded by s1, forwarded by s2), 2 packets in all.
fn spread(lab: &Lab, f: &Fabric, dst: &str) -> Result<Vec<(u64, u64)>> {
    let l1 = &f.leaves[0].1;
    let (s1, s2) = (&f.spines[0], &f.spines[1]);
    let mut out = Vec::new();
    for i in 0..SOURCES {
        let before = (forwarded(lab, s1)?, forwarded(lab, s2)?);
        ping_once(lab, l1, &source(i), dst)?;
        let d = (
            forwarded(lab, s1)?.saturating_sub(before.0),
            forwarded(lab, s2)?.saturating_sub(before.1),
        );
        if d.0 + d.1 != 2 {
            return Err(Error::Check(format!(
                "ping from {} forwarded {d:?} times by (s1, s2), want 2 in all",
                source(i)
            )));
        }
        out.push(d);
    }
    Ok(out)
}

/// The flow to watch and the spine to silence: a source whose request
/// and answer both cross one spine (that spine), else one whose packets
/// cross s1 at least one way (s1).
fn pick(spread: &[(u64, u64)]) -> Option<(usize, u8)> {
    let both = spread.iter().position(|d| d.0 == 2 || d.1 == 2);
    match both {
        Some(i) => Some((i, if spread[i].0 == 2 { 1 } else { 2 })),
        None => spread.iter().position(|d| d.0 > 0).map(|i| (i, 1)),
    }
}

/// What one silenced spine did to the fabric.
struct Outcome {
    spine: u8,
    /// Per leaf: time from the block until its kernel routes every other
    /// leaf's prefixes through the other spine only, from its route
    /// monitor, and when polling saw that state.
    failover: Vec<(String, Duration, Duration)>,
    /// Every flow by source, and the index of the one picked.
    flows: Vec<(String, Flow)>,
    picked: usize,
    /// Just before the block, as wall-clock seconds (ping's `-D` clock):
    /// every time is counted from here.
    blocked_at: f64,
    /// How long `nft` took to put the block in place (part of every
    /// time above).
    nft: Duration,
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn answers(b: &Background) -> usize {
    b.text().matches("bytes from").count()
}

/// Times, from just before the block, the moment each leaf routes only
/// through `port`: one thread per leaf polling its kernel every 20 ms,
/// so each time is an upper bound (by tens of ms on a busy machine);
/// [`kernel_times`] reads the exact one.
fn time_failover(
    lab: &Lab,
    f: &Fabric,
    t0: Instant,
    port: &str,
) -> Result<Vec<(String, Duration)>> {
    std::thread::scope(|s| {
        let polls: Vec<_> = f
            .leaves
            .iter()
            .map(|leaf| {
                s.spawn(move || loop {
                    if leaf_routes_via(lab, f, leaf, &[port]).unwrap_or(false) {
                        return Ok((leaf.1.name.clone(), t0.elapsed()));
                    }
                    if t0.elapsed() > UP {
                        return Err(Error::Check(format!(
                            "after {UP:?} leaf {} does not route through {port} only",
                            leaf.1.name
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                })
            })
            .collect();
        polls
            .into_iter()
            .map(|p| {
                p.join()
                    .map_err(|_| Error::Check("a polling thread panicked".into()))?
            })
            .collect()
    })
}

/// When each leaf's kernel changed its last route to another leaf's
/// prefix after the block, from its [`timed_monitor`]: the exact time
/// of the failover that polling (`polled`, an upper bound) confirmed.
fn kernel_times(
    f: &Fabric,
    monitors: &[Background],
    blocked_at: f64,
    polled: Vec<(String, Duration)>,
) -> Result<Vec<(String, Duration, Duration)>> {
    let mut out = Vec::new();
    for ((leaf, mon), (name, seen)) in f.leaves.iter().zip(monitors).zip(polled) {
        let remote: Vec<String> = f
            .leaves
            .iter()
            .filter(|(q, _)| q.index != leaf.0.index)
            .flat_map(|(q, _)| q.prefixes())
            .map(|p| p.trim_end_matches("/32").to_string())
            .collect();
        let text = mon.text();
        let until = blocked_at + seen.as_secs_f64() + 0.2;
        let last = timed_events(&text)
            .into_iter()
            .filter(|(t, _)| *t > blocked_at && *t <= until)
            .filter(|(_, rest)| {
                let mut w = rest.split_whitespace();
                let first = w.next().filter(|x| *x != "Deleted").or_else(|| w.next());
                first.is_some_and(|p| remote.iter().any(|r| r == p))
            })
            .map(|(t, _)| t)
            .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
        let last = last.ok_or_else(|| {
            Error::Check(format!(
                "leaf {name}: its route monitor saw no change of a remote prefix after the block:\n{text}"
            ))
        })?;
        out.push((name, Duration::from_secs_f64(last - blocked_at), seen));
    }
    Ok(out)
}

/// Runs flows from every source of l1 to l2, silences the spine the
/// picked flow crosses, times each leaf's failover, lets the picked flow
/// get 100 more answers and reads the flows back.
fn silent_spine(lab: &Lab, f: &Fabric) -> Result<Outcome> {
    let (l1, l2) = (&f.leaves[0], &f.leaves[1]);
    for i in 1..SOURCES {
        lab.add_addr(&l1.1, "lo", &format!("{}/32", source(i)))?;
    }
    let dst = l2.0.gateway.to_string();
    for i in 0..SOURCES {
        wait_ping(lab, &l1.1, &source(i), &dst)?;
    }
    let spread = spread(lab, f, &dst)?;
    let (picked, spine) = pick(&spread).ok_or_else(|| {
        Error::Check(format!(
            "no source crosses a spine: (s1, s2) per source {spread:?}"
        ))
    })?;
    eprintln!(
        "pings per source, forwarded by (s1, s2): {spread:?}; watching {}, silencing s{spine}",
        source(picked as u8)
    );
    let mut flows = Vec::new();
    for i in 0..SOURCES {
        let src = source(i);
        let args = ["ping", "-4", "-n", "-D", "-i", INTERVAL, "-I", &src, &dst];
        flows.push((
            src.clone(),
            Background::start(lab, &l1.1, &format!("flow-{src}"), &args)?,
        ));
    }
    lab.wait_until(
        Duration::from_secs(20),
        "every flow answered 50 times",
        || Ok(flows.iter().all(|(_, b)| answers(b) >= 50)),
    )?;

    let monitors = f
        .leaves
        .iter()
        .map(|(_, h)| timed_monitor(lab, h))
        .collect::<Result<Vec<_>>>()?;

    let silencer = Silencer::prepare(lab, &f.spines[usize::from(spine - 1)])?;
    let blocked_at = now_secs();
    let t0 = Instant::now();
    silencer.silence()?;
    let nft = t0.elapsed();
    let polled = time_failover(lab, f, t0, &port(3 - spine))?;
    let failover = kernel_times(f, &monitors, blocked_at, polled)?;
    let mark = answers(&flows[picked].1);
    lab.wait_until(
        Duration::from_secs(20),
        "100 more answers on the watched flow",
        || Ok(answers(&flows[picked].1) >= mark + 100),
    )?;
    let mut read = Vec::new();
    for (src, b) in flows {
        read.push((src, Flow::parse(&b.finish())?));
    }
    Ok(Outcome {
        spine,
        failover,
        flows: read,
        picked,
        blocked_at,
        nft,
    })
}

/// Prints what happened; returns the longest leaf failover and when the
/// picked flow got answers again after the block.
fn report(label: &str, o: &Outcome) -> Result<(Duration, Duration)> {
    let times: Vec<String> = o
        .failover
        .iter()
        .map(|(l, d, seen)| format!("{l} {} ms (polled {})", d.as_millis(), seen.as_millis()))
        .collect();
    let slowest = o.failover.iter().map(|x| x.1).max().unwrap_or_default();
    eprintln!(
        "{label}: s{} silenced (nft {} ms); kernel routes via the other spine only: {}",
        o.spine,
        o.nft.as_millis(),
        times.join(", ")
    );
    for (i, (src, flow)) in o.flows.iter().enumerate() {
        let (gap, _) = flow.longest_gap();
        eprintln!(
            "{label}: flow {src}{}: sent {}, lost {}, longest gap {} ms",
            if i == o.picked { " (watched)" } else { "" },
            flow.sent,
            flow.lost(),
            gap.as_millis()
        );
    }
    let (src, flow) = &o.flows[o.picked];
    let (_, seq) = flow.longest_gap();
    let resumed = flow
        .answers
        .iter()
        .find(|a| a.0 == seq)
        .map(|a| a.1)
        .ok_or_else(|| Error::Check(format!("flow {src}: no answer ended a gap")))?;
    let back = Duration::from_secs_f64((resumed - o.blocked_at).max(0.0));
    eprintln!(
        "{label}: watched flow {src}: answers again {} ms after the block, lost {} after that",
        back.as_millis(),
        flow.lost_from(seq)
    );
    if flow.lost() == 0 {
        return Err(Error::Check(format!(
            "flow {src} lost nothing: it did not cross s{}",
            o.spine
        )));
    }
    if flow.lost_from(seq) != 0 {
        return Err(Error::Check(format!(
            "flow {src} still loses packets after it came back ({} from icmp_seq {seq})",
            flow.lost_from(seq)
        )));
    }
    Ok((slowest, back))
}

/// Checks that every leaf's log says its session on `port` went down
/// with `reason` (via6d logs `session down ... error=Some("sent
/// NOTIFICATION 6/10 (Cease: BFD down)")`).
fn leaves_closed(daemons: &[Via6d], port: &str, reason: &str) -> Result<()> {
    for d in daemons.iter().filter(|d| d.daemon.name.contains("-l")) {
        let log = std::fs::read_to_string(&d.daemon.log)
            .map_err(|e| Error::io(format!("read {}", d.daemon.log.display()), e))?;
        let down: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("session down") && l.contains(&format!("%{port}")))
            .collect();
        if !down.iter().any(|l| l.contains(reason)) {
            return Err(Error::Check(format!(
                "{}: its session on {port} did not go down with {reason:?}: {down:?}",
                d.daemon.name
            )));
        }
    }
    Ok(())
}

/// Scenario C5: BFD (300 ms x 3) on every session of the unnumbered
/// fabric; a spine goes silent with its carrier up.
#[test]
fn c05_bfd_spine_goes_silent() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    scenario("c05-fabric-bfd-silent-spine", |lab| {
        let (f, daemons) = start(lab, &[BFD_300MS])?;
        lab.wait_until(Duration::from_secs(20), "every BFD session Up", || {
            bfd_up(&daemons)
        })?;
        let o = silent_spine(lab, &f)?;
        let (slowest, back) = report("c05", &o)?;
        eprintln!(
            "c05: within the {} ms goal: {}",
            BFD_GOAL.as_millis(),
            slowest <= BFD_GOAL && back <= BFD_GOAL
        );
        if slowest > BFD_BOUND || back > BFD_BOUND {
            return Err(Error::Check(format!(
                "failover took {} ms in the kernels and {} ms for the flow, bound {} ms",
                slowest.as_millis(),
                back.as_millis(),
                BFD_BOUND.as_millis()
            )));
        }
        leaves_closed(&daemons, &port(o.spine), "6/10 (Cease: BFD down)")
    });
}

/// Scenario C6: C5 without BFD, for comparison: the silent spine is
/// noticed only when the hold timer (9 s, keepalives every 3 s) runs out.
#[test]
fn c06_no_bfd_only_the_hold_timer_notices() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    scenario("c06-fabric-no-bfd-silent-spine", |lab| {
        let (f, daemons) = start(lab, &[])?;
        let o = silent_spine(lab, &f)?;
        let (slowest, back) = report("c06", &o)?;
        let fastest = o.failover.iter().map(|x| x.1).min().unwrap_or_default();
        let hold = Duration::from_secs(5)..=Duration::from_secs(12);
        if !hold.contains(&fastest) || !hold.contains(&slowest) || !hold.contains(&back) {
            return Err(Error::Check(format!(
                "without BFD the kernels failed over in {} to {} ms and the flow in {} ms; \
                 a 9 s hold timer with keepalives every 3 s means 6 to 9 s",
                fastest.as_millis(),
                slowest.as_millis(),
                back.as_millis()
            )));
        }
        leaves_closed(&daemons, &port(o.spine), "4/0 (hold timer expired)")
    });
}

#[test]
fn pick_watches_a_flow_that_crosses_one_spine_both_ways() {
    assert_eq!(pick(&[(1, 1), (0, 2), (2, 0)]), Some((1, 2)));
    assert_eq!(pick(&[(2, 0), (0, 2)]), Some((0, 1)));
    assert_eq!(pick(&[(1, 1), (1, 1)]), Some((0, 1)));
    assert_eq!(pick(&[]), None);
}
