//! Running commands with a deadline, so a hung tool fails a scenario
//! instead of hanging the whole test run.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Default budget for one command (`birdc`, `via6ctl`, `ip`).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// Renders a command line for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion within `timeout`; kills it past the deadline.
/// Returns the output whatever the exit status.
pub fn output_within(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let line = describe(cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| Error::Spawn {
        cmd: line.clone(),
        source,
    })?;
    // Drain pipes on threads so a chatty command cannot block on a full pipe.
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(p) = out_pipe.as_mut() {
            let _ = p.read_to_end(&mut v);
        }
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.read_to_end(&mut v);
        }
        v
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Command {
                    cmd: line,
                    status: format!("killed after {timeout:?}"),
                    stderr: String::new(),
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(Error::io(format!("waiting for `{line}`"), e)),
        }
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Runs `cmd`, fails unless it exits 0, returns stdout as text.
pub fn run(cmd: &mut Command) -> Result<String> {
    let line = describe(cmd);
    let out = output_within(cmd, COMMAND_TIMEOUT)?;
    if !out.status.success() {
        return Err(Error::Command {
            cmd: line,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Shorthand: `run(Command::new(args[0]).args(&args[1..]))`.
pub fn run_args(args: &[&str]) -> Result<String> {
    let (prog, rest) = args
        .split_first()
        .ok_or_else(|| Error::Check("empty command".into()))?;
    run(Command::new(prog).args(rest))
}
