//! `via6ctl`: asks a running via6d over its control socket, and reads MRT
//! files offline. Exit codes: 0 ok, 1 runtime failure, 2 bad usage.

#[path = "via6ctl/render.rs"]
mod render;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use via6d::control::protocol::{Request, Response};
use via6d::control::{self, ControlError};

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
    /// Originate a prefix (IPv4 or IPv6) until `withdraw`, next hop and
    /// attributes as for the configuration's `originate:`. Kept across
    /// reloads, gone when via6d stops. Announcing it again replaces its
    /// communities.
    Announce {
        /// e.g. 10.99.0.0/24 or 2001:db8:99::/48 (host bits are cleared).
        #[arg(value_parser = parse_prefix)]
        prefix: ipnet::IpNet,
        /// A community (RFC 1997) ASN:VALUE, e.g. 65000:100; repeatable.
        #[arg(long = "community", value_name = "ASN:VALUE", value_parser = parse_community)]
        communities: Vec<u32>,
    },
    /// Stop originating a prefix announced with `announce` (an error for
    /// one that was not).
    Withdraw {
        #[arg(value_parser = parse_prefix)]
        prefix: ipnet::IpNet,
    },
    /// Print session and route events as JSON lines until interrupted.
    Watch,
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

/// The configuration's own community parser, so both accept the same.
fn parse_community(s: &str) -> Result<u32, String> {
    via6d::config::Community::try_from(s.to_string()).map(|c| c.0)
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
        Command::Announce {
            prefix,
            communities,
        } => Request::Announce {
            prefix,
            communities,
        },
        Command::Withdraw { prefix } => Request::Withdraw { prefix },
        Command::Watch => Request::Watch,
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
    if request == Request::Watch {
        return runtime.block_on(watch(&cli.socket));
    }
    let reply = match runtime.block_on(control::call(&cli.socket, &request)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("via6ctl: {e}");
            return ExitCode::from(1);
        }
    };
    if let (Request::Routes { limit: Some(n), .. }, Response::Routes(rows)) = (&request, &reply) {
        if rows.len() >= *n {
            eprintln!("via6ctl: showing the first {n} paths; use --limit N, --all or a prefix");
        }
    }
    if cli.json {
        return match render::json(&reply) {
            Ok(text) => print_bytes(format!("{text}\n").as_bytes()),
            Err(e) => {
                eprintln!("via6ctl: {e}");
                ExitCode::from(1)
            }
        };
    }
    // Warnings under the neighbours; an older daemon may not answer.
    let status = match reply {
        Response::Neighbors(_) => {
            match runtime.block_on(control::call(&cli.socket, &Request::Status)) {
                Ok(Response::Status(s)) => Some(s),
                _ => None,
            }
        }
        _ => None,
    };
    let mut text = render::human(&reply, render::now_unix());
    if let Some(s) = status {
        text.push_str(&render::warnings(&s.warnings));
    }
    print_bytes(text.as_bytes())
}

/// `via6ctl watch`: each event as one JSON line, re-encoded from the typed
/// event, until interrupted or via6d stops.
async fn watch(socket: &std::path::Path) -> ExitCode {
    let mut stream = match control::watch(socket).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("via6ctl: {e}");
            return ExitCode::from(1);
        }
    };
    loop {
        let line = tokio::select! {
            l = stream.next() => l,
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
        };
        match line {
            Ok(Some(event)) => {
                let Ok(text) = serde_json::to_string(&event) else {
                    continue;
                };
                use std::io::Write as _;
                let mut out = std::io::stdout().lock();
                // A closed pipe (`| head`) ends the watch.
                if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
                    return ExitCode::SUCCESS;
                }
            }
            Ok(None) => {
                eprintln!("via6ctl: {}", ControlError::WatchEnded);
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("via6ctl: {e}");
                return ExitCode::from(1);
            }
        }
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
    fn announce_takes_communities_as_the_configuration_does() {
        let cli = Cli::try_parse_from([
            "via6ctl",
            "announce",
            "10.99.0.0/24",
            "--community",
            "65000:100",
            "--community",
            "1:2",
        ])
        .unwrap();
        let Command::Announce {
            prefix,
            communities,
        } = cli.command
        else {
            panic!("not announce: {cli:?}");
        };
        assert_eq!(prefix, "10.99.0.0/24".parse::<ipnet::IpNet>().unwrap());
        assert_eq!(communities, vec![(65000 << 16) | 100, (1 << 16) | 2]);
        for bad in ["65536:1", "no-export", "1:2:3", "65000"] {
            let r = Cli::try_parse_from(["via6ctl", "announce", "10.0.0.0/8", "--community", bad]);
            assert!(r.is_err(), "{bad} accepted");
        }
        let w = Cli::try_parse_from(["via6ctl", "withdraw", "2001:db8:99::/48"]).unwrap();
        assert!(matches!(w.command, Command::Withdraw { .. }));
    }
}
