//! `via6d --config FILE` runs the daemon; `via6d check FILE` validates;
//! `via6d man` prints the manual page.
//! Exit codes: 0 ok, 1 runtime failure, 2 bad usage or config.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use via6d::config;

/// via6d: a BGP speaker that routes IPv4 via IPv6 next hops (RFC 8950).
///
/// Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration.
/// SIGHUP reloads the configuration, SIGTERM stops (Cease to every peer).
#[derive(Debug, Parser)]
#[command(
    name = "via6d",
    version,
    arg_required_else_help = true,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Run the daemon with this configuration file.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Validate a configuration and exit: 0 when it loads (warnings on
    /// stderr), 2 with FILE:LINE: KEY: why when it does not.
    Check {
        /// The configuration file (YAML).
        file: PathBuf,
    },
    /// Print the manual page (roff, section 8: a daemon run by the
    /// administrator), the one the Debian package installs.
    Man,
}

fn init_logging(cfg: &config::Config) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| cfg.raw.log.level.clone())
        .unwrap_or_else(|| "info".into());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cfg.raw.log.format {
        config::LogFormat::Json => builder.json().init(),
        config::LogFormat::Human => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match (cli.command, cli.config) {
        (Some(Command::Check { file }), _) => check(&file),
        (Some(Command::Man), _) => man(),
        (None, Some(file)) => run(file),
        (None, None) => {
            // arg_required_else_help covers a bare `via6d`; this is the rest.
            let _ = <Cli as clap::CommandFactory>::command().print_help();
            ExitCode::from(2)
        }
    }
}

/// The page is generated from the same definitions as `--help`, so the
/// two cannot drift apart.
fn man() -> ExitCode {
    use std::io::Write as _;
    let mut out = Vec::new();
    let page = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).section("8");
    if let Err(e) = page.render(&mut out) {
        eprintln!("via6d: {e}");
        return ExitCode::from(1);
    }
    match std::io::stdout().write_all(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("via6d: {e}");
            ExitCode::from(1)
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match config::load(path) {
        Ok(c) => {
            for w in via6d::daemon::warnings(&c) {
                eprintln!("warning: {w}");
            }
            let listen = c
                .speaker
                .listen
                .map_or("not listening".to_string(), |a| format!("listening on {a}"));
            println!(
                "{}: ok ({} neighbors, {} originated prefixes, {listen}, control socket {})",
                path.display(),
                c.speaker.neighbors.len(),
                c.speaker.originate_v4.len() + c.speaker.originate_v6.len(),
                c.raw.control_socket.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

fn run(path: PathBuf) -> ExitCode {
    // Before any table arrives (see the function for the numbers).
    fib::map_large_allocations();
    let cfg = match config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&cfg);
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("via6d: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(via6d::daemon::run(path, cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "via6d failed");
            eprintln!("via6d: {e}");
            ExitCode::from(1)
        }
    }
}
