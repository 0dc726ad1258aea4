//! Polling with a deadline: scenarios wait on conditions, never on fixed
//! sleeps, so they are as fast as the daemons and fail with what was seen.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Budget for a daemon (BIRD, FRR, via6d, tcpdump) to answer on its
/// control socket after being started. They answer in well under a
/// second on an idle machine; on 2 cores shared with compilers a process
/// start can take seconds, and the wait ends as soon as the daemon
/// answers, so the budget is generous.
pub const DAEMON_START: Duration = Duration::from_secs(30);

/// Calls `check` until it returns `Ok(true)` or `timeout` passes, polling
/// every 100 ms at first and every 500 ms later. `Err` from `check` means
/// "not yet"; its text becomes the last observation in the timeout error.
/// This free function has no lab, so its timeout carries no evidence; use
/// [`crate::Lab::wait_until`] inside scenarios.
pub fn wait_until<F>(timeout: Duration, what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Result<bool>,
{
    let start = Instant::now();
    let mut interval = Duration::from_millis(100);
    loop {
        let last = match check() {
            Ok(true) => return Ok(()),
            Ok(false) => "condition false".to_string(),
            Err(e) => e.to_string(),
        };
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(Error::Timeout {
                what: what.to_string(),
                waited,
                last,
                evidence: String::new(),
            });
        }
        std::thread::sleep(interval.min(timeout.saturating_sub(waited)));
        if waited > Duration::from_secs(3) {
            interval = Duration::from_millis(500);
        }
    }
}

/// Checks that `check` keeps returning `Ok(true)` for `duration`, polling
/// every 100 ms: used to show something stays absent after the positive
/// barrier that proves the peer has spoken. Fails at the first
/// observation that breaks the condition.
pub fn holds_for<F>(duration: Duration, what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Result<bool>,
{
    let start = Instant::now();
    loop {
        let broken = match check() {
            Ok(true) => None,
            Ok(false) => Some("condition false".to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(last) = broken {
            return Err(Error::Check(format!(
                "{what}: broken after {:?}: {last}",
                start.elapsed()
            )));
        }
        if start.elapsed() >= duration {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_once_condition_holds() {
        let mut n = 0;
        let r = wait_until(Duration::from_secs(5), "third call", || {
            n += 1;
            Ok(n >= 3)
        });
        assert!(r.is_ok());
        assert_eq!(n, 3);
    }

    #[test]
    fn holds_for_fails_when_condition_breaks() {
        let mut n = 0;
        let r = holds_for(Duration::from_secs(5), "stays", || {
            n += 1;
            Ok(n < 3)
        });
        assert!(matches!(r, Err(Error::Check(_))), "{r:?}");
        assert!(holds_for(Duration::from_millis(200), "stays", || Ok(true)).is_ok());
    }

    #[test]
    fn times_out_with_last_observation() {
        let r = wait_until(Duration::from_millis(250), "never", || {
            Err(Error::Check("still 0 routes".into()))
        });
        match r {
            Err(Error::Timeout { what, last, .. }) => {
                assert_eq!(what, "never");
                assert!(last.contains("still 0 routes"), "{last}");
            }
            other => panic!("expected timeout, got {other:?}"),
        }
    }
}
