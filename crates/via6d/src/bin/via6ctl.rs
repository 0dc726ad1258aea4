//! `via6ctl`: asks a running via6d over its control socket, and reads MRT
//! files offline. Exit codes: 0 ok, 1 runtime failure, 2 bad usage.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use via6d::control::{self, Request};

/// Asks a running via6d over its control socket; reads MRT files offline.
///
/// Exit codes: 0 ok, 1 runtime failure (no daemon, daemon refused), 2 bad
/// usage.
#[derive(Debug, Parser)]
#[command(name = "via6ctl", version, arg_required_else_help = true)]
struct Cli {
    /// The daemon's control socket (its `control-socket:`).
    #[arg(
        short,
        long,
        global = true,
        env = "VIA6_SOCKET",
        value_name = "PATH",
        default_value = via6d::config::DEFAULT_CONTROL_SOCKET
    )]
    socket: PathBuf,
    /// Print the daemon's answer as JSON instead of a table.
    #[arg(short, long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sessions: state, uptime, counts, negotiated capabilities, last error.
    #[command(visible_alias = "neighbours")]
    Neighbors,
    /// Router id, AS, where BGP listens, and warnings (forwarding off, ...).
    Status,
    /// RIB paths with both halves of each next hop.
    Routes {
        /// Only this prefix, e.g. 198.51.100.0/24.
        #[arg(value_parser = parse_prefix)]
        prefix: Option<ipnet::IpNet>,
        /// At most N paths (a full table is a million rows).
        #[arg(long, value_name = "N", default_value_t = DEFAULT_ROUTE_LIMIT)]
        limit: usize,
        /// Every path, however many.
        #[arg(long, conflicts_with = "limit")]
        all: bool,
    },
    /// What is in the kernel, pending, failed.
    Fib,
    /// BFD sessions (RFC 5880): peer, interface, states, diagnostic,
    /// timers, uptime.
    Bfd,
    /// Act on one session.
    #[command(visible_alias = "neighbour")]
    Neighbor {
        /// Its address; a link-local one may carry its interface (fe80::1%eth0).
        #[arg(value_parser = parse_neighbor)]
        address: IpAddr,
        /// What to do with it.
        action: Action,
        /// With reset: a Hard Reset (RFC 8538), so both sides drop the
        /// session's routes at once even with graceful restart.
        #[arg(long)]
        hard: bool,
    },
    /// Stop via6d for good: peers drop our routes, our kernel routes go.
    /// (SIGTERM stops for a restart where a peer does graceful restart.)
    Shutdown,
    /// Read MRT files (RFC 6396) offline.
    Mrt {
        #[command(subcommand)]
        command: Mrt,
    },
    /// Print a shell completion script.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff).
    Man,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Action {
    /// Cease/4 (administrative reset), then the session starts again.
    Reset,
    /// Ask the peer to send its routes again (RFC 2918 ROUTE-REFRESH).
    Refresh,
}

#[derive(Debug, Subcommand)]
enum Mrt {
    /// Count records, announcements, withdrawals and RIB entries of a file.
    Stats {
        /// An MRT file, gzip-compressed or not.
        file: PathBuf,
    },
}

fn parse_prefix(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not a prefix such as 198.51.100.0/24"))
}

fn parse_neighbor(s: &str) -> Result<IpAddr, String> {
    s.split('%')
        .next()
        .unwrap_or(s)
        .parse()
        .map_err(|_| format!("{s:?} is not an IP address"))
}

/// A full table is a million rows: show the first thousand unless asked.
const DEFAULT_ROUTE_LIMIT: usize = 1000;

/// One cell of a human table: strings bare, null as "-", the rest as JSON.
fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        serde_json::Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Prints an array of objects as aligned columns, other values as
/// `key: value` lines.
fn print_human(v: &serde_json::Value) {
    match v {
        serde_json::Value::Array(rows) if rows.iter().all(|r| r.is_object()) => {
            let Some(first) = rows.first().and_then(|r| r.as_object()) else {
                println!("(none)");
                return;
            };
            let headers: Vec<String> = first.keys().map(|c| c.to_uppercase()).collect();
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| first.keys().map(|c| cell(&r[c.as_str()])).collect())
                .collect();
            print_table(headers, table);
        }
        serde_json::Value::Object(map) => {
            for (k, val) in map {
                match val {
                    serde_json::Value::Array(a)
                        if a.iter().all(|r| r.is_object()) && !a.is_empty() =>
                    {
                        println!("{k}:");
                        print_human(val);
                    }
                    _ => println!("{k}: {}", cell(val)),
                }
            }
        }
        other => println!("{}", cell(other)),
    }
}

/// A column of a human table: header and how to get the cell from a row.
type Column = (&'static str, fn(&serde_json::Value) -> String);

fn uptime(v: &serde_json::Value) -> String {
    match v.as_u64() {
        None => "-".into(),
        Some(s) if s >= 86_400 => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
        Some(s) => format!("{:02}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60),
    }
}

const NEIGHBOR_COLUMNS: &[Column] = &[
    ("NEIGHBOR", |n| match n["interface"].as_str() {
        Some(i) => format!("{}%{i}", cell(&n["address"])),
        None => cell(&n["address"]),
    }),
    // 0 is how `remote-as: external` is held (AS 0 is never a peer's).
    ("AS", |n| match n["remote_as"].as_u64() {
        Some(0) => "external".into(),
        _ => cell(&n["remote_as"]),
    }),
    ("STATE", |n| cell(&n["state"])),
    ("UPTIME", |n| uptime(&n["uptime"])),
    ("RCVD", |n| cell(&n["counts"]["received"])),
    ("ACCEPTED", |n| cell(&n["counts"]["accepted"])),
    ("ADVERTISED", |n| cell(&n["counts"]["advertised"])),
    ("EXT-NEXTHOP", |n| {
        cell(&n["negotiated"]["extended_next_hop"])
    }),
    // Graceful restart: the peer's restart time when negotiated, and the
    // paths kept from before its restart, with the seconds they have left.
    ("GR", |n| {
        match n["negotiated"]["graceful_restart"]["restart_time"].as_u64() {
            Some(t) => format!("{t}s"),
            None => "-".into(),
        }
    }),
    ("STALE", |n| match n["counts"]["stale_for_secs"].as_u64() {
        Some(left) => format!("{} ({left}s)", cell(&n["counts"]["stale"])),
        None => "-".into(),
    }),
    ("LAST ERROR", |n| last_error(n, now_unix())),
];

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `3m`, `2h`: how long ago, coarsely.
fn age(secs: u64) -> String {
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
fn last_error(n: &serde_json::Value, now: u64) -> String {
    let Some(error) = n["last_error"].as_str() else {
        return "-".into();
    };
    let Some(at) = n["last_error_at"].as_u64() else {
        return error.to_string();
    };
    let ago = now.saturating_sub(at);
    let up_since_error =
        n["state"] == "Established" && n["uptime"].as_u64().is_some_and(|u| u <= ago);
    if up_since_error {
        return "-".into();
    }
    format!("{error} ({} ago)", age(ago))
}

const BFD_COLUMNS: &[Column] = &[
    ("PEER", |b| match b["interface"].as_str() {
        Some(i) => format!("{}%{i}", cell(&b["peer"])),
        None => cell(&b["peer"]),
    }),
    ("STATE", |b| cell(&b["state"])),
    ("REMOTE", |b| cell(&b["remote_state"])),
    ("DIAG", |b| cell(&b["diagnostic"])),
    ("TX/RX ms", |b| {
        format!("{}/{}", cell(&b["min_tx_ms"]), cell(&b["min_rx_ms"]))
    }),
    ("MULT", |b| cell(&b["multiplier"])),
    ("DETECT ms", |b| cell(&b["detection_time_ms"])),
    ("UPTIME", |b| uptime(&b["uptime"])),
];

const ROUTE_COLUMNS: &[Column] = &[
    ("PREFIX", |r| cell(&r["prefix"])),
    ("FLAGS", |r| {
        let mut f = String::new();
        if r["best"] == true {
            f.push('*');
        }
        if r["multipath"] == true {
            f.push('m');
        }
        if r["long_lived_stale"] == true {
            f.push('L');
        } else if r["stale"] == true {
            f.push('s');
        }
        if f.is_empty() {
            f.push('-');
        }
        f
    }),
    ("NEXT HOP", |r| cell(&r["next_hop"])),
    ("LINK-LOCAL", |r| cell(&r["next_hop_link_local"])),
    ("DEV", |r| cell(&r["interface"])),
    ("FROM", |r| match r["peer_address"].is_null() {
        true => "local".into(),
        false => cell(&r["peer_address"]),
    }),
    ("AS PATH", |r| {
        let path: Vec<String> = r["as_path"]
            .as_array()
            .map(|a| a.iter().map(cell).collect())
            .unwrap_or_default();
        if path.is_empty() {
            "-".into()
        } else {
            path.join(" ")
        }
    }),
    ("NOT INSTALLED / NOT ADVERTISED", |r| {
        let mut why = Vec::new();
        if let Some(s) = r["not_installed"].as_str() {
            why.push(s.to_string());
        }
        if let Some(a) = r["not_advertised"].as_array() {
            why.extend(a.iter().map(cell));
        }
        why.join("; ")
    }),
];

fn print_columns(rows: &serde_json::Value, columns: &[Column]) {
    let Some(rows) = rows.as_array() else {
        print_human(rows);
        return;
    };
    if rows.is_empty() {
        println!("(none)");
        return;
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|(_, f)| f(r)).collect())
        .collect();
    print_table(columns.iter().map(|(h, _)| h.to_string()).collect(), table);
}

/// Prints rows under headers, each column as wide as its widest cell.
fn print_table(headers: Vec<String>, table: Vec<Vec<String>>) {
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
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(&headers);
    for r in &table {
        line(r);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let request = match cli.command {
        Command::Neighbors => Request::Neighbors,
        Command::Status => Request::Status,
        Command::Routes { prefix, limit, all } => Request::Routes {
            prefix,
            limit: (!all).then_some(limit),
        },
        Command::Fib => Request::Fib,
        Command::Bfd => Request::Bfd,
        Command::Neighbor {
            address,
            action,
            hard,
        } => match action {
            Action::Reset => Request::Reset {
                neighbor: address,
                hard,
            },
            Action::Refresh => Request::Refresh { neighbor: address },
        },
        Command::Shutdown => Request::Shutdown,
        Command::Mrt {
            command: Mrt::Stats { file },
        } => return mrt_stats(&file),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "via6ctl", &mut out);
            return print_bytes(&out);
        }
        Command::Man => {
            let mut out = Vec::new();
            if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut out) {
                eprintln!("via6ctl: {e}");
                return ExitCode::from(1);
            }
            return print_bytes(&out);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("via6ctl: {e}");
            return ExitCode::from(1);
        }
    };
    let reply = runtime.block_on(control::call(&cli.socket, &request));
    match reply {
        Ok(v) => {
            if let (Request::Routes { limit: Some(n), .. }, Some(rows)) = (&request, v.as_array()) {
                if rows.len() >= *n {
                    eprintln!(
                        "via6ctl: showing the first {n} paths; use --limit N, --all or a prefix"
                    );
                }
            }
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                return ExitCode::SUCCESS;
            }
            match request {
                Request::Neighbors => {
                    print_columns(&v, NEIGHBOR_COLUMNS);
                    // Older daemons do not answer `status`: no warnings then.
                    let status = runtime.block_on(control::call(&cli.socket, &Request::Status));
                    if let Ok(status) = status {
                        print_warnings(&status);
                    }
                }
                Request::Routes { .. } => print_columns(&v, ROUTE_COLUMNS),
                Request::Bfd => print_columns(&v, BFD_COLUMNS),
                Request::Status => {
                    print_human(&serde_json::json!({
                        "router_id": v["router_id"],
                        "asn": v["asn"],
                        "listen": v["listen"],
                        "neighbors": v["neighbors"],
                    }));
                    print_warnings(&v);
                }
                _ => print_human(&v),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("via6ctl: {e}");
            ExitCode::from(1)
        }
    }
}

/// One `warning: ...` line per entry of a status reply's `warnings`.
fn print_warnings(status: &serde_json::Value) {
    for w in status["warnings"].as_array().into_iter().flatten() {
        println!("warning: {}", cell(w));
    }
}

/// Writes generated text to stdout; a closed pipe is a failure, not a panic.
fn print_bytes(out: &[u8]) -> ExitCode {
    use std::io::Write as _;
    match std::io::stdout().write_all(out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("via6ctl: {e}");
            ExitCode::from(1)
        }
    }
}

fn mrt_stats(file: &std::path::Path) -> ExitCode {
    match wire::mrt::stats(file) {
        Ok(s) => {
            println!(
                "{}",
                serde_json::json!({
                    "records": s.records,
                    "announced": s.announced,
                    "withdrawn": s.withdrawn,
                    "state_changes": s.state_changes,
                    "rib_entries": s.rib_entries,
                })
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("via6ctl: {}: {e}", file.display());
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn an_error_shows_its_age_until_the_session_is_up_again() {
        let now = 1_000_000;
        let row = |state: &str, uptime: Option<u64>| {
            serde_json::json!({
                "state": state,
                "uptime": uptime,
                "last_error": "connect to [fe80::1%2]:179: Connection refused",
                "last_error_at": now - 180,
            })
        };
        assert_eq!(
            last_error(&row("Active", None), now),
            "connect to [fe80::1%2]:179: Connection refused (3m ago)"
        );
        // Established since the error: the table hides it.
        assert_eq!(last_error(&row("Established", Some(60)), now), "-");
        // Established before it (the error is newer than the session).
        assert!(last_error(&row("Established", Some(600)), now).ends_with("(3m ago)"));
        let no_time = serde_json::json!({"state": "Idle", "last_error": "x"});
        assert_eq!(last_error(&no_time, now), "x");
        assert_eq!(last_error(&serde_json::json!({"state": "Idle"}), now), "-");
        assert_eq!(age(59), "59s");
        assert_eq!(age(7200), "2h");
        assert_eq!(age(3 * 86_400), "3d");
    }
}
