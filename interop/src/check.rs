//! Checks for [`crate::Lab::wait_until`]: each returns `Ok(true)` when the
//! condition holds and otherwise an `Err` that says what was seen, so a
//! timeout names the last observation.

use serde_json::Value;

use crate::bird::Bird;
use crate::error::{Error, Result};
use crate::lab::{Host, Lab};
use crate::via6::{has_entry, json_entries, Via6d};

fn not_yet(msg: String) -> Result<bool> {
    Err(Error::Check(msg))
}

/// The kernel of `host` has `prefix` and its line(s) contain every needle
/// (e.g. `via inet6 fe80::1 dev eth0`, `proto bgp`).
pub fn kernel_route_has(lab: &Lab, host: &Host, prefix: &str, needles: &[&str]) -> Result<bool> {
    let r = lab.kernel_route(host, prefix)?;
    if !r.is_empty() && needles.iter().all(|n| r.contains(n)) {
        return Ok(true);
    }
    not_yet(format!(
        "kernel of {}: {prefix} is {r:?}, want {needles:?}",
        host.name
    ))
}

/// The kernel of `host` has no route for exactly `prefix`.
pub fn kernel_route_absent(lab: &Lab, host: &Host, prefix: &str) -> Result<bool> {
    let r = lab.kernel_route(host, prefix)?;
    if r.is_empty() {
        return Ok(true);
    }
    not_yet(format!("kernel of {}: {prefix} still {r:?}", host.name))
}

/// BIRD has `prefix` and `show route PREFIX all` contains every needle.
pub fn bird_route_has(bird: &Bird, prefix: &str, needles: &[&str]) -> Result<bool> {
    let r = bird.route(prefix)?;
    if !r.is_empty() && needles.iter().all(|n| r.contains(n)) {
        return Ok(true);
    }
    not_yet(format!(
        "BIRD {}: {prefix} is {r:?}, want {needles:?}",
        bird.daemon.name
    ))
}

/// BIRD has no route for `prefix`.
pub fn bird_route_absent(bird: &Bird, prefix: &str) -> Result<bool> {
    let r = bird.route(prefix)?;
    if r.is_empty() {
        return Ok(true);
    }
    not_yet(format!("BIRD {}: {prefix} still\n{r}", bird.daemon.name))
}

/// BIRD's BGP protocol `name` is Established.
pub fn bird_established(bird: &Bird, name: &str) -> Result<bool> {
    let s = bird.bgp_state(name)?;
    if s == "Established" {
        return Ok(true);
    }
    not_yet(format!("BIRD {} protocol {name}: {s}", bird.daemon.name))
}

/// `via6ctl --json VIEW` (`routes` or `fib`) has an entry for `prefix`
/// mentioning every needle.
pub fn via6_has(v: &Via6d, view: &str, prefix: &str, needles: &[&str]) -> Result<bool> {
    let j = v.ctl_json(&[view])?;
    if has_entry(&j, prefix, needles) {
        return Ok(true);
    }
    let seen: Vec<String> = json_entries(&j, prefix)
        .iter()
        .map(|e| e.to_string())
        .collect();
    not_yet(format!(
        "via6ctl {view}: {prefix} entries {seen:?}, want {needles:?}"
    ))
}

/// `via6ctl --json VIEW` has no entry for `prefix`.
pub fn via6_lacks(v: &Via6d, view: &str, prefix: &str) -> Result<bool> {
    let j = v.ctl_json(&[view])?;
    let seen = json_entries(&j, prefix);
    if seen.is_empty() {
        return Ok(true);
    }
    let seen: Vec<String> = seen.iter().map(|e| e.to_string()).collect();
    not_yet(format!("via6ctl {view}: {prefix} still {seen:?}"))
}

/// The `via6ctl --json neighbors` entry for `address` (`fe80::1%eth0` or
/// `fe80::1`): looked up with and without the scope.
pub fn via6_neighbor(v: &Via6d, address: &str) -> Result<Value> {
    let j = v.ctl_json(&["neighbors"])?;
    let bare = address.split('%').next().unwrap_or(address);
    let found = json_entries(&j, address)
        .into_iter()
        .chain(json_entries(&j, bare))
        .next()
        .cloned();
    found.ok_or_else(|| Error::Check(format!("via6ctl neighbors: no entry for {address} in {j}")))
}

/// via6's session with `address` is Established.
pub fn via6_established(v: &Via6d, address: &str) -> Result<bool> {
    let n = via6_neighbor(v, address)?;
    if n.to_string().contains("\"Established\"") {
        return Ok(true);
    }
    not_yet(format!("via6ctl neighbors: {address} is {n}"))
}

/// Every value stored under `key` anywhere inside `v`.
pub fn json_find_key<'a>(v: &'a Value, key: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    fn walk<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == key {
                        out.push(x);
                    }
                    walk(x, key, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, key, out)),
            _ => {}
        }
    }
    walk(v, key, &mut out);
    out
}

/// Whether via6 negotiated extended next hop (RFC 8950) for IPv4 unicast
/// with `address`: its neighbour entry lists `ipv4-unicast` under
/// `extended_next_hop`.
pub fn via6_extended_next_hop(v: &Via6d, address: &str) -> Result<bool> {
    let n = via6_neighbor(v, address)?;
    Ok(json_find_key(&n, "extended_next_hop").iter().any(|x| {
        x.as_array()
            .is_some_and(|a| a.iter().any(|f| f.as_str() == Some("ipv4-unicast")))
    }))
}

/// The `received` column of a BIRD channel statistics row (`Import
/// updates`, `Export updates`, ...).
pub fn bird_counter(bird: &Bird, proto: &str, family: &str, row: &str) -> Result<u64> {
    bird_counter_column(bird, proto, family, row, "received")
}

/// One cell of a BIRD channel's `Route change stats` table, found by the
/// column's name in the header line rather than by position or spacing
/// (BIRD 2.0.12 has `received rejected filtered ignored accepted`; a
/// release that adds or moves a column still reads right).
pub fn bird_counter_column(
    bird: &Bird,
    proto: &str,
    family: &str,
    row: &str,
    column: &str,
) -> Result<u64> {
    let ch = bird.channel(proto, family)?;
    stats_cell(&ch, row, column).ok_or_else(|| Error::Parse {
        cmd: format!("birdc show protocols all {proto}"),
        reason: format!("no `{row}:` / `{column}` in channel {family}:\n{ch}"),
    })
}

/// `stats_cell(text, "Import updates", "accepted")`: the header line ends
/// with the column names after `Route change stats:`; the row's cells
/// (numbers or `---`) follow `Import updates:` in the same order.
fn stats_cell(channel: &str, row: &str, column: &str) -> Option<u64> {
    let header = channel
        .lines()
        .find_map(|l| l.trim().strip_prefix("Route change stats:"))?;
    let idx = header.split_whitespace().position(|c| c == column)?;
    let cells = channel
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{row}:")))?;
    cells.split_whitespace().nth(idx)?.parse().ok()
}

/// The `installed` count of `via6ctl --json fib` (routes via6 has in the
/// kernel), checked together with an empty `failed` list.
pub fn via6_fib_installed(v: &Via6d) -> Result<u64> {
    let j = v.ctl_json(&["fib"])?;
    let failed = j
        .get("failed")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if failed > 0 {
        return Err(Error::Check(format!(
            "via6ctl fib reports failed routes: {j}"
        )));
    }
    j.get("installed")
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::Parse {
            cmd: "via6ctl --json fib".into(),
            reason: format!("no `installed` count in {j}"),
        })
}

/// `via6ctl fib` says exactly `want` routes are installed.
pub fn via6_fib_count(v: &Via6d, want: u64) -> Result<bool> {
    let n = via6_fib_installed(v)?;
    if n == want {
        return Ok(true);
    }
    not_yet(format!("via6ctl fib: installed {n}, want {want}"))
}

/// The session state via6 reports for `address` (`Established`, `Active`,
/// ...). Unlike [`via6_established`] an unreachable or crashed via6d is
/// an error here, never a state: a check that a session stays down must
/// not pass because the daemon is gone.
pub fn via6_state(v: &Via6d, address: &str) -> Result<String> {
    let n = via6_neighbor(v, address)?;
    json_find_key(&n, "state")
        .first()
        .and_then(|s| s.as_str())
        .map(str::to_string)
        .ok_or_else(|| Error::Parse {
            cmd: "via6ctl --json neighbors".into(),
            reason: format!("no `state` for {address} in {n}"),
        })
}

#[cfg(test)]
mod tests {
    use super::stats_cell;

    #[test]
    fn stats_cells_by_column_name() {
        let v2012 = "    Route change stats:     received   rejected   filtered    ignored   accepted\n      Import updates:              0          0          0          0          0\n      Import withdraws:            1          0        ---          1          0\n      Export updates:              1          0          0        ---          1\n";
        assert_eq!(stats_cell(v2012, "Export updates", "accepted"), Some(1));
        assert_eq!(stats_cell(v2012, "Import withdraws", "received"), Some(1));
        assert_eq!(stats_cell(v2012, "Import withdraws", "filtered"), None);
        // A later layout with an extra column before `accepted`.
        let later = "  Route change stats:     received   rejected   filtered    ignored    limited   accepted\n    Export updates:             7          0          0        ---          0          5\n";
        assert_eq!(stats_cell(later, "Export updates", "accepted"), Some(5));
        assert_eq!(stats_cell(later, "Export updates", "received"), Some(7));
    }
}
