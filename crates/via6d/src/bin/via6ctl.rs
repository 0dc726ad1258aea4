//! `via6ctl`: asks a running via6d over its control socket, and reads MRT
//! files offline. Exit codes: 0 ok, 1 runtime failure, 2 bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

use via6d::control::{self, Request};

const USAGE: &str = "\
usage: via6ctl [--socket PATH] [--json] neighbors
       via6ctl [--socket PATH] [--json] routes [PREFIX] [--limit N | --all]
       via6ctl [--socket PATH] [--json] fib
       via6ctl [--socket PATH] [--json] bfd
       via6ctl [--socket PATH] neighbor ADDRESS reset|refresh
       via6ctl mrt stats FILE
The socket defaults to /run/via6d.sock (or $VIA6_SOCKET).";

struct Args {
    socket: PathBuf,
    json: bool,
    /// `routes`: at most this many paths (`None` = all).
    limit: Option<usize>,
    words: Vec<String>,
}

/// A full table is a million rows: show the first thousand unless asked.
const DEFAULT_ROUTE_LIMIT: usize = 1000;

fn parse_args() -> Result<Args, String> {
    let mut socket = std::env::var_os("VIA6_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/via6d.sock"));
    let mut json = false;
    let mut limit = Some(DEFAULT_ROUTE_LIMIT);
    let mut words = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" | "-j" => json = true,
            "--all" => limit = None,
            "--limit" => {
                let n = it.next().ok_or("--limit needs a number")?;
                limit = Some(
                    n.parse()
                        .map_err(|_| format!("--limit {n:?}: not a number"))?,
                );
            }
            "--socket" | "-s" => socket = it.next().ok_or("--socket needs a path")?.into(),
            "--help" | "-h" => return Err(String::new()),
            s if s.starts_with("--socket=") => socket = s.trim_start_matches("--socket=").into(),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ => words.push(a),
        }
    }
    Ok(Args {
        socket,
        json,
        limit,
        words,
    })
}

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
    ("LAST ERROR", |n| cell(&n["last_error"])),
];

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
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("via6ctl: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if msg.is_empty() { 0 } else { 2 });
        }
    };
    let words: Vec<&str> = args.words.iter().map(String::as_str).collect();
    if let ["mrt", "stats", file] = words.as_slice() {
        return mrt_stats(file);
    }
    let request = match words.as_slice() {
        ["neighbors"] | ["neighbours"] => Request::Neighbors,
        ["routes"] => Request::Routes {
            prefix: None,
            limit: args.limit,
        },
        ["routes", prefix] => match prefix.parse() {
            Ok(p) => Request::Routes {
                prefix: Some(p),
                limit: args.limit,
            },
            Err(_) => {
                eprintln!("via6ctl: {prefix:?} is not a prefix such as 198.51.100.0/24");
                return ExitCode::from(2);
            }
        },
        ["fib"] => Request::Fib,
        ["bfd"] => Request::Bfd,
        ["neighbor" | "neighbour", addr, action @ ("reset" | "refresh")] => {
            let Ok(neighbor) = addr.split('%').next().unwrap_or(addr).parse() else {
                eprintln!("via6ctl: {addr:?} is not an IP address");
                return ExitCode::from(2);
            };
            if *action == "reset" {
                Request::Reset { neighbor }
            } else {
                Request::Refresh { neighbor }
            }
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
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
    match runtime.block_on(control::call(&args.socket, &request)) {
        Ok(v) => {
            if let (Request::Routes { limit: Some(n), .. }, Some(rows)) = (&request, v.as_array()) {
                if rows.len() >= *n {
                    eprintln!(
                        "via6ctl: showing the first {n} paths; use --limit N, --all or a prefix"
                    );
                }
            }
            if args.json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                match request {
                    Request::Neighbors => print_columns(&v, NEIGHBOR_COLUMNS),
                    Request::Routes { .. } => print_columns(&v, ROUTE_COLUMNS),
                    Request::Bfd => print_columns(&v, BFD_COLUMNS),
                    _ => print_human(&v),
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("via6ctl: {e}");
            ExitCode::from(1)
        }
    }
}

fn mrt_stats(file: &str) -> ExitCode {
    match wire::mrt::stats(std::path::Path::new(file)) {
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
            eprintln!("via6ctl: {file}: {e}");
            ExitCode::from(1)
        }
    }
}
