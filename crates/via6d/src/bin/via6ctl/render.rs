//! How `via6ctl` shows the daemon's typed replies: aligned tables for
//! humans, and for `--json` the same structs as JSON.

use std::fmt::Write as _;

use via6d::control::protocol::{
    BfdRow, FibReport, NeighborRow, Response, RouteRow, SessionState, StatusReport,
};

/// `--json`: the reply's data (the rows, the report), as the daemon typed
/// it; replies without data show their type.
pub fn json(reply: &Response) -> Result<String, serde_json::Error> {
    let v = serde_json::to_value(reply)?;
    let shown = match v.get("data") {
        Some(data) => data.clone(),
        None => v,
    };
    serde_json::to_string_pretty(&shown)
}

/// The human form of a reply.
pub fn human(reply: &Response, now: u64) -> String {
    match reply {
        Response::Neighbors(rows) => table(rows, NEIGHBOR_COLUMNS, now),
        Response::Routes(rows) => table(rows, ROUTE_COLUMNS, now),
        Response::Bfd(rows) => table(rows, BFD_COLUMNS, now),
        Response::Fib(f) => fib(f),
        Response::Status(s) => status(s),
        Response::Reset { neighbor, hard } => match hard {
            true => format!("reset {neighbor} (hard)\n"),
            false => format!("reset {neighbor}\n"),
        },
        Response::Refresh { neighbor } => format!("route refresh sent to {neighbor}\n"),
        Response::Shutdown => "shutting down\n".into(),
        Response::Announced {
            prefix,
            communities,
            replaced,
        } => {
            let mut s = format!("announced {prefix}");
            if !communities.is_empty() {
                let _ = write!(s, " with communities {}", communities.join(" "));
            }
            if *replaced {
                s.push_str(" (replaces the earlier announcement)");
            }
            s + "\n"
        }
        Response::Withdrawn { prefix } => format!("withdrawn {prefix}\n"),
        Response::Watching => "watching\n".into(),
    }
}

/// One `warning: ...` line per warning.
pub fn warnings(w: &[String]) -> String {
    w.iter().map(|w| format!("warning: {w}\n")).collect()
}

fn status(s: &StatusReport) -> String {
    let listen = s.listen.map_or("none".to_string(), |l| l.to_string());
    let mut out = format!(
        "router_id: {}\nasn: {}\nlisten: {listen}\nneighbors: {}\n",
        s.router_id, s.asn, s.neighbors
    );
    out.push_str(&warnings(&s.warnings));
    out
}

fn fib(f: &FibReport) -> String {
    let mut out = String::new();
    for (k, v) in [
        ("installed", f.installed.to_string()),
        ("pending", f.pending.to_string()),
        ("link_down", f.link_down.to_string()),
        ("stale", f.stale.to_string()),
        ("initial_sync_done", f.initial_sync_done.to_string()),
        ("source_address_added", f.source_address_added.to_string()),
        ("hop_sets", f.hop_sets.to_string()),
        ("nexthop_objects", f.nexthop_objects.to_string()),
        ("failed_count", f.failed_count.to_string()),
        ("conflict_count", f.conflict_count.to_string()),
    ] {
        let _ = writeln!(out, "{k}: {v}");
    }
    if !f.failed.is_empty() {
        out.push_str("failed:\n");
        let rows = f
            .failed
            .iter()
            .map(|r| vec![r.prefix.to_string(), r.error.clone()])
            .collect();
        out.push_str(&aligned(&["PREFIX", "ERROR"], rows));
    }
    if !f.conflicts.is_empty() {
        out.push_str("conflicts:\n");
        let rows = f
            .conflicts
            .iter()
            .map(|r| vec![r.prefix.to_string(), r.existing.clone()])
            .collect();
        out.push_str(&aligned(&["PREFIX", "EXISTING"], rows));
    }
    out
}

/// A column of a human table: header and how to get the cell from a row
/// (and the time now, for ages).
type Column<T> = (&'static str, fn(&T, u64) -> String);

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or("-".into(), T::to_string)
}

pub fn uptime(v: Option<u64>) -> String {
    match v {
        None => "-".into(),
        Some(s) if s >= 86_400 => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
        Some(s) => format!("{:02}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60),
    }
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `3m`, `2h`: how long ago, coarsely.
pub fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// The last error with its age, or `-` once the session has been
/// Established since: an old error beside a good session only misleads
/// (`--json` keeps it, with `last_error_at`).
pub fn last_error(n: &NeighborRow, now: u64) -> String {
    let Some(error) = &n.last_error else {
        return "-".into();
    };
    let Some(at) = n.last_error_at else {
        return error.clone();
    };
    let ago = now.saturating_sub(at);
    let up_since_error = n.state == SessionState::Established && n.uptime.is_some_and(|u| u <= ago);
    if up_since_error {
        return "-".into();
    }
    format!("{error} ({} ago)", age(ago))
}

const NEIGHBOR_COLUMNS: &[Column<NeighborRow>] = &[
    ("NEIGHBOR", |n, _| match &n.interface {
        Some(i) => format!("{}%{i}", n.address),
        None => n.address.to_string(),
    }),
    // 0 is how `remote-as: external` is held (AS 0 is never a peer's).
    ("AS", |n, _| match n.remote_as {
        0 => "external".into(),
        a => a.to_string(),
    }),
    ("STATE", |n, _| n.state.to_string()),
    ("UPTIME", |n, _| uptime(n.uptime)),
    ("RCVD", |n, _| n.counts.received.to_string()),
    ("ACCEPTED", |n, _| n.counts.accepted.to_string()),
    ("ADVERTISED", |n, _| n.counts.advertised.to_string()),
    ("EXT-NEXTHOP", |n, _| match &n.negotiated {
        Some(g) if !g.extended_next_hop.is_empty() => g.extended_next_hop.join(","),
        _ => "-".into(),
    }),
    // Graceful restart: the peer's restart time when negotiated, and the
    // paths kept from before its restart, with the seconds they have left.
    ("GR", |n, _| {
        match n
            .negotiated
            .as_ref()
            .and_then(|g| g.graceful_restart.as_ref())
        {
            Some(r) => format!("{}s", r.restart_time),
            None => "-".into(),
        }
    }),
    ("STALE", |n, _| match n.counts.stale_for_secs {
        Some(left) => format!("{} ({left}s)", n.counts.stale),
        None => "-".into(),
    }),
    ("LAST ERROR", last_error),
];

const BFD_COLUMNS: &[Column<BfdRow>] = &[
    ("PEER", |b, _| match &b.interface {
        Some(i) => format!("{}%{i}", b.peer),
        None => b.peer.to_string(),
    }),
    ("STATE", |b, _| b.state.clone()),
    ("REMOTE", |b, _| b.remote_state.clone()),
    ("DIAG", |b, _| b.diagnostic.clone()),
    ("TX/RX ms", |b, _| {
        format!("{}/{}", b.min_tx_ms, b.min_rx_ms)
    }),
    ("MULT", |b, _| b.multiplier.to_string()),
    ("DETECT ms", |b, _| b.detection_time_ms.to_string()),
    ("UPTIME", |b, _| uptime(b.uptime)),
];

/// `*` best, `m` multipath, `L` long-lived stale, `s` stale, `r`
/// announced at run time.
pub fn route_flags(r: &RouteRow) -> String {
    let mut f = String::new();
    if r.best {
        f.push('*');
    }
    if r.multipath {
        f.push('m');
    }
    if r.long_lived_stale {
        f.push('L');
    } else if r.stale {
        f.push('s');
    }
    if r.runtime {
        f.push('r');
    }
    if f.is_empty() {
        f.push('-');
    }
    f
}

const ROUTE_COLUMNS: &[Column<RouteRow>] = &[
    ("PREFIX", |r, _| r.prefix.to_string()),
    ("FLAGS", |r, _| route_flags(r)),
    ("NEXT HOP", |r, _| opt(&r.next_hop)),
    ("LINK-LOCAL", |r, _| opt(&r.next_hop_link_local)),
    ("DEV", |r, _| opt(&r.interface)),
    ("FROM", |r, _| match (r.peer_address, r.runtime) {
        (Some(a), _) => a.to_string(),
        (None, true) => "runtime".into(),
        (None, false) => "local".into(),
    }),
    ("AS PATH", |r, _| {
        if r.as_path.is_empty() {
            "-".into()
        } else {
            let p: Vec<String> = r.as_path.iter().map(u32::to_string).collect();
            p.join(" ")
        }
    }),
    ("COMMUNITIES", |r, _| match r.communities.is_empty() {
        true => "-".into(),
        false => r.communities.join(" "),
    }),
    ("NOT INSTALLED / NOT ADVERTISED", |r, _| {
        let mut why: Vec<String> = r.not_installed.iter().cloned().collect();
        why.extend(r.not_advertised.iter().cloned());
        why.join("; ")
    }),
];

fn table<T>(rows: &[T], columns: &[Column<T>], now: u64) -> String {
    if rows.is_empty() {
        return "(none)\n".into();
    }
    let cells = rows
        .iter()
        .map(|r| columns.iter().map(|(_, f)| f(r, now)).collect())
        .collect();
    let headers: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    aligned(&headers, cells)
}

/// Rows under headers, each column as wide as its widest cell.
fn aligned(headers: &[&str], table: Vec<Vec<String>>) -> String {
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            table
                .iter()
                .map(|r| r.get(i).map_or(0, String::len))
                .max()
                .unwrap_or(0)
                .max(h.len())
        })
        .collect();
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", parts.join("  ").trim_end())
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for r in table {
        out.push_str(&line(r));
    }
    out
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
