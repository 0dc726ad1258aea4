//! `via6d --config FILE` runs the daemon; `via6d check FILE` validates.
//! Exit codes: 0 ok, 1 runtime failure, 2 bad usage or config.

use std::path::PathBuf;
use std::process::ExitCode;

use via6d::config;

const USAGE: &str = "\
usage: via6d --config FILE     run the daemon
       via6d check FILE        validate a configuration and exit
       via6d --version";

enum Command {
    Run(PathBuf),
    Check(PathBuf),
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    match args {
        [flag, file] if flag == "--config" || flag == "-c" => Ok(Command::Run(file.into())),
        [cmd, file] if cmd == "check" => Ok(Command::Check(file.into())),
        [flag] if flag.starts_with("--config=") => {
            Ok(Command::Run(flag.trim_start_matches("--config=").into()))
        }
        _ => Err(USAGE.to_string()),
    }
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(args.first().map(String::as_str), Some("--version" | "-V")) {
        println!("via6d {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if matches!(args.first().map(String::as_str), Some("--help" | "-h")) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let command = match parse_args(&args) {
        Ok(c) => c,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Check(path) => match config::load(&path) {
            Ok(c) => {
                for w in &c.warnings {
                    eprintln!("warning: {w}");
                }
                let listen = c
                    .speaker
                    .listen
                    .map_or("not listening".to_string(), |a| format!("listening on {a}"));
                println!(
                    "{}: ok ({} neighbors, {} originated prefixes, {listen})",
                    path.display(),
                    c.speaker.neighbors.len(),
                    c.speaker.originate_v4.len() + c.speaker.originate_v6.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Run(path) => {
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
    }
}
