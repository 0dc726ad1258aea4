//! A kernel route monitor (`ip monitor route`) inside a test namespace,
//! for asserting that something never happened over a whole interval (a
//! route deleted and added back between two samples passes any sampling
//! check, not this one).
//!
//! Readiness and completeness are proven with marker routes rather than
//! sleeps: the monitor counts as listening once it has printed a marker
//! added after it started, and its output counts as complete once it has
//! printed a second marker made at the end. On a busy machine that takes
//! as long as it takes, and never yields a false "nothing changed".

use std::time::{Duration, Instant};

use interop::{Daemon, DaemonKind, Error, Host, Lab, Result};

/// The marker route: a blackhole needs no interface, and this TEST-NET-1
/// address is never announced by the tests.
const MARK: &str = "192.0.2.250/32";

/// How long the monitor may take to print a marker: generous, because the
/// machine may be busy; a healthy one prints it in milliseconds.
const MARK_WAIT: Duration = Duration::from_secs(30);

/// One kernel route event as `ip monitor route` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEvent {
    pub deleted: bool,
    /// The destination as printed (`198.51.100.0/24`, `10.0.8.42`).
    pub prefix: String,
    pub line: String,
}

impl RouteEvent {
    /// Parses one line: `[Deleted ]TYPE? PREFIX ...`. Lines that carry no
    /// destination (continuation lines of multipath routes) give `None`.
    pub fn parse(line: &str) -> Option<RouteEvent> {
        let mut words = line.split_whitespace().peekable();
        let deleted = words.peek() == Some(&"Deleted");
        if deleted {
            words.next();
        }
        // An optional route type comes before the destination.
        let types = [
            "unicast",
            "local",
            "broadcast",
            "multicast",
            "blackhole",
            "unreachable",
            "prohibit",
            "throw",
            "anycast",
            "nat",
        ];
        let mut first = words.next()?;
        if types.contains(&first) {
            first = words.next()?;
        }
        let looks_like_prefix = first.contains('.') || first.contains(':') || first == "default";
        looks_like_prefix.then(|| RouteEvent {
            deleted,
            prefix: first.to_string(),
            line: line.to_string(),
        })
    }
}

/// `ip monitor route` running in a host, its output in the lab's
/// directory (and so in the evidence of a failed run).
pub struct RouteMonitor<'a> {
    lab: &'a Lab,
    host: Host,
    daemon: Daemon,
    /// Whether the marker route is in the kernel now.
    marked: bool,
}

impl<'a> RouteMonitor<'a> {
    /// Starts the monitor and returns once it has been seen to print a
    /// route change made after it started. The change is repeated until
    /// one is printed: the first may come before the monitor subscribed.
    pub fn start(lab: &'a Lab, host: &Host, name: &str) -> Result<RouteMonitor<'a>> {
        let sock = lab.dir().join(format!("{name}.none"));
        let daemon = lab.spawn_daemon(
            host,
            name,
            DaemonKind::Other,
            sock,
            &["ip", "monitor", "route"],
        )?;
        let mut m = RouteMonitor {
            lab,
            host: host.clone(),
            daemon,
            marked: false,
        };
        let started = Instant::now();
        loop {
            m.toggle_marker()?;
            let seen = m.wait_for_markers(1, Duration::from_secs(2));
            if seen.is_ok() || started.elapsed() > MARK_WAIT {
                return seen.map(|()| m);
            }
        }
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.daemon.log).unwrap_or_default()
    }

    /// Adds the marker route when it is absent, deletes it when present.
    fn toggle_marker(&mut self) -> Result<()> {
        let verb = if self.marked { "del" } else { "add" };
        self.lab
            .ip(&self.host, &["-4", "route", verb, "blackhole", MARK])?;
        self.marked = !self.marked;
        Ok(())
    }

    fn marker_events(&self) -> usize {
        let marker = MARK.trim_end_matches("/32");
        self.events_so_far()
            .iter()
            .filter(|e| e.prefix == marker)
            .count()
    }

    /// Waits until the monitor has printed at least `n` marker events.
    fn wait_for_markers(&self, n: usize, within: Duration) -> Result<()> {
        // The plain wait: a short retry at start is not a failure worth
        // the lab's evidence dump.
        interop::wait_until(
            within,
            &format!("route monitor in {}: {n} marker events", self.host.name),
            || {
                if !self.lab.is_running(&self.daemon) {
                    return Err(Error::Check("ip monitor route exited".into()));
                }
                Ok(self.marker_events() >= n)
            },
        )
    }

    fn events_so_far(&self) -> Vec<RouteEvent> {
        self.text().lines().filter_map(RouteEvent::parse).collect()
    }

    /// Ends the interval: changes the marker once more and waits until the
    /// monitor printed that, so every change made before this call has
    /// been printed too (netlink delivers in order); then stops the
    /// monitor and returns every event it saw, markers excluded.
    pub fn finish(mut self) -> Result<Vec<RouteEvent>> {
        let n = self.marker_events();
        self.toggle_marker()?;
        self.wait_for_markers(n + 1, MARK_WAIT)?;
        self.lab.stop(&self.daemon, libc::SIGTERM)?;
        let marker = MARK.trim_end_matches("/32");
        Ok(self
            .events_so_far()
            .into_iter()
            .filter(|e| e.prefix != marker)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::RouteEvent;

    #[test]
    fn parses_deletions_types_and_plain_lines() {
        let e = RouteEvent::parse("Deleted 198.51.100.0/24 via inet6 fe80::1 dev eth0 proto bgp")
            .expect("a route line");
        assert!(e.deleted);
        assert_eq!(e.prefix, "198.51.100.0/24");
        let e = RouteEvent::parse("blackhole 192.0.2.250").expect("a blackhole");
        assert!(!e.deleted);
        assert_eq!(e.prefix, "192.0.2.250");
        let e = RouteEvent::parse("Deleted local 10.0.8.42 dev lo table local").expect("local");
        assert_eq!((e.deleted, e.prefix.as_str()), (true, "10.0.8.42"));
        assert_eq!(
            RouteEvent::parse("\tnexthop via inet6 fe80::1 dev eth0"),
            None
        );
    }
}
