//! Traffic that runs while a scenario acts: processes in the background
//! (a `ping` flow, `ip monitor route`) and what their output says,
//! packets sent and answered, the longest silence between answers.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::lab::{Host, Lab};

/// A process of the test running inside a host, its stdout in the run
/// directory; killed when dropped.
pub struct Background {
    child: Child,
    out: PathBuf,
}

impl Background {
    /// Starts `args` inside `host`, stdout to `<run dir>/<name>.out`.
    pub fn start(lab: &Lab, host: &Host, name: &str, args: &[&str]) -> Result<Background> {
        let out = lab.dir().join(format!("{name}.out"));
        let file = fs::File::create(&out).map_err(|e| Error::io(format!("create {name}"), e))?;
        let child = lab
            .command(host, args)
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::io(format!("spawn {name}"), e))?;
        Ok(Background { child, out })
    }

    /// What it printed so far.
    pub fn text(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// SIGINT (ping prints its summary), then waits for the exit.
    pub fn finish(mut self) -> String {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.text()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ip monitor route` in `host`, confirmed listening: a marker route is
/// added after it starts and must show up in its output.
pub fn route_monitor(lab: &Lab, host: &Host) -> Result<Background> {
    let name = format!("monitor-{}", host.ns);
    let m = Background::start(lab, host, &name, &["ip", "monitor", "route"])?;
    let marker = "192.0.2.77";
    lab.wait_until(Duration::from_secs(10), "route monitor listening", || {
        let _ = lab.ip(
            host,
            &["route", "replace", &format!("{marker}/32"), "dev", "lo"],
        );
        let _ = lab.ip(
            host,
            &["route", "del", &format!("{marker}/32"), "dev", "lo"],
        );
        Ok(m.text().contains(marker))
    })?;
    Ok(m)
}

/// `ip -ts monitor route nexthop` in `host`, timestamps in UTC, confirmed
/// listening like [`route_monitor`]: every change of the host's routes
/// and nexthop objects with the time the monitor read it.
pub fn timed_monitor(lab: &Lab, host: &Host) -> Result<Background> {
    let name = format!("timed-monitor-{}", host.ns);
    let args = ["env", "TZ=UTC", "ip", "-ts", "monitor", "route", "nexthop"];
    let m = Background::start(lab, host, &name, &args)?;
    let marker = "192.0.2.78";
    lab.wait_until(Duration::from_secs(10), "timed monitor listening", || {
        let route = format!("{marker}/32");
        let _ = lab.ip(host, &["route", "replace", &route, "dev", "lo"]);
        let _ = lab.ip(host, &["route", "del", &route, "dev", "lo"]);
        Ok(m.text().contains(marker))
    })?;
    Ok(m)
}

/// The events a [`timed_monitor`] printed, each line that starts with a
/// time such as `[2026-12-03T17:37:03.977939]`: (seconds since the
/// epoch, the rest of the line).
pub fn timed_events(text: &str) -> Vec<(f64, &str)> {
    text.lines()
        .filter_map(|l| {
            let (ts, rest) = l.strip_prefix('[')?.split_once(']')?;
            Some((utc_seconds(ts)?, rest.trim()))
        })
        .collect()
}

/// `2026-12-03T17:37:03.977939` (UTC) as seconds since the epoch.
fn utc_seconds(s: &str) -> Option<f64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':');
    let h = t.next()?.parse::<i64>().ok()?;
    let min = t.next()?.parse::<i64>().ok()?;
    let sec = t.next()?.parse::<f64>().ok()?;
    // Days from 1970-01-01 in the proleptic Gregorian calendar, with
    // years starting in March so that the leap day comes last.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + min * 60) as f64 + sec)
}

/// Deletions of `prefix` a route monitor saw.
pub fn deletions(monitor: &str, prefix: &str) -> Vec<String> {
    let bare = prefix.trim_end_matches("/32");
    monitor
        .lines()
        .filter(|l| l.starts_with("Deleted") && l.split_whitespace().nth(1) == Some(bare))
        .map(str::to_string)
        .collect()
}

/// `(transmitted, received)` from ping's summary line.
pub fn ping_counts(out: &str) -> Result<(u64, u64)> {
    let line = out
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .ok_or_else(|| Error::Check(format!("no ping summary in:\n{out}")))?;
    let num = |word: &str| {
        let words: Vec<&str> = line.split([',', ' ']).filter(|w| !w.is_empty()).collect();
        words
            .iter()
            .position(|w| w.starts_with(word))
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| words.get(i))
            .and_then(|w| w.parse::<u64>().ok())
            .ok_or_else(|| Error::Check(format!("ping summary: {line}")))
    };
    Ok((num("packets")?, num("received")?))
}

/// A `ping -D` flow read back from its output.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// Echo requests sent (ping's summary).
    pub sent: u64,
    /// Answered sequence numbers, each once, with the wall-clock time of
    /// the answer (seconds since the epoch), in order of arrival.
    pub answers: Vec<(u64, f64)>,
}

impl Flow {
    /// Parses `[1733246400.123456] 64 bytes from 10.12.0.1: icmp_seq=17
    /// ttl=62 time=0.083 ms` lines and the summary; duplicates (`DUP!`)
    /// count once.
    pub fn parse(out: &str) -> Result<Flow> {
        let (sent, _) = ping_counts(out)?;
        let mut answers: Vec<(u64, f64)> = Vec::new();
        for line in out.lines().filter(|l| l.contains("bytes from")) {
            if line.contains("DUP!") {
                continue;
            }
            let at = line
                .strip_prefix('[')
                .and_then(|l| l.split(']').next())
                .and_then(|t| t.parse::<f64>().ok());
            let seq = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("icmp_seq="))
                .and_then(|s| s.parse::<u64>().ok());
            match (seq, at) {
                (Some(seq), Some(at)) => answers.push((seq, at)),
                _ => return Err(Error::Check(format!("ping -D line not understood: {line}"))),
            }
        }
        Ok(Flow { sent, answers })
    }

    /// Requests lost: sequence numbers up to the last answered one that
    /// got no answer (the request still in flight when ping stopped is
    /// not counted).
    pub fn lost(&self) -> u64 {
        let last = self.answers.iter().map(|a| a.0).max().unwrap_or(0);
        last.saturating_sub(self.answers.len() as u64)
    }

    /// The longest time between two answers in a row, and the sequence
    /// number of the answer that ended it.
    pub fn longest_gap(&self) -> (Duration, u64) {
        let mut best = (0.0_f64, 0);
        for w in self.answers.windows(2) {
            if let [(_, t0), (seq, t1)] = w {
                if t1 - t0 > best.0 {
                    best = (t1 - t0, *seq);
                }
            }
        }
        (Duration::from_secs_f64(best.0), best.1)
    }

    /// Requests lost from sequence number `from` on: none once traffic
    /// flows again.
    pub fn lost_from(&self, from: u64) -> u64 {
        let last = self.answers.iter().map(|a| a.0).max().unwrap_or(0);
        let got = self.answers.iter().filter(|a| a.0 >= from).count() as u64;
        (last + 1).saturating_sub(from).saturating_sub(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "\
PING 10.12.0.1 (10.12.0.1) from 10.11.0.2 : 56(84) bytes of data.
[1000.000000] 64 bytes from 10.12.0.1: icmp_seq=1 ttl=62 time=0.1 ms
[1000.010000] 64 bytes from 10.12.0.1: icmp_seq=2 ttl=62 time=0.1 ms
[1000.820000] 64 bytes from 10.12.0.1: icmp_seq=83 ttl=62 time=0.1 ms
[1000.820100] 64 bytes from 10.12.0.1: icmp_seq=83 ttl=62 time=0.1 ms (DUP!)
[1000.830000] 64 bytes from 10.12.0.1: icmp_seq=84 ttl=62 time=0.1 ms

--- 10.12.0.1 ping statistics ---
85 packets transmitted, 4 received, +1 duplicates, 95.2941% packet loss, time 840ms
";

    #[test]
    fn flow_counts_losses_and_the_gap() {
        let f = Flow::parse(OUT).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.sent, 85);
        assert_eq!(f.answers.len(), 4);
        assert_eq!(f.lost(), 80);
        let (gap, seq) = f.longest_gap();
        assert_eq!(seq, 83);
        assert!((gap.as_secs_f64() - 0.81).abs() < 1e-6, "{gap:?}");
        assert_eq!(f.lost_from(83), 0);
        assert_eq!(f.lost_from(2), 80);
    }

    #[test]
    fn monitor_times_are_utc_epoch_seconds() {
        let text = "[2026-12-03T17:37:03.977939] 10.12.0.0/24 nhid 5 via inet6 fe80::1 dev swp2\n\
                    \tnexthop via inet6 fe80::1 dev swp1\n\
                    [1970-01-01T00:00:01.500000] Deleted id 3\n\
                    [2024-02-29T00:00:00.000000] x\n";
        let t = timed_events(text);
        assert_eq!(t.len(), 3, "{t:?}");
        // `date -u -d 2026-12-03T17:37:03 +%s`
        assert!((t[0].0 - 1_796_319_423.977_939).abs() < 1e-6, "{}", t[0].0);
        assert!(t[0].1.starts_with("10.12.0.0/24 nhid 5"), "{}", t[0].1);
        assert_eq!(t[1], (1.5, "Deleted id 3"));
        assert!((t[2].0 - 1_709_164_800.0).abs() < 1e-9, "{}", t[2].0);
    }

    #[test]
    fn flow_needs_a_summary_and_timestamps() {
        assert!(Flow::parse("[1.0] 64 bytes from x: icmp_seq=1\n").is_err());
        let no_ts = "64 bytes from x: icmp_seq=1 ttl=1\n1 packets transmitted, 1 received\n";
        assert!(Flow::parse(no_ts).is_err());
    }
}
