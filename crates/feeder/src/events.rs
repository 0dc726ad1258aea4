//! Timestamped JSON lines on stdout, one per event, for the benchmark
//! harness: `{"event":"established","t":1764324000.123456,...}`. `t` is
//! wall-clock seconds (CLOCK_REALTIME) so a shell can compare it with its
//! own `$EPOCHREALTIME`.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in seconds since the epoch.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A JSON string literal for `s`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A field value already in JSON form.
pub enum Val<'a> {
    N(u64),
    F(f64),
    S(&'a str),
}

/// One event line with extra fields, flushed at once.
pub fn emit(event: &str, fields: &[(&str, Val<'_>)]) {
    let mut line = format!("{{\"event\":{},\"t\":{:.6}", quote(event), now());
    for (k, v) in fields {
        let v = match v {
            Val::N(n) => n.to_string(),
            Val::F(f) => format!("{f:.6}"),
            Val::S(s) => quote(s),
        };
        line.push_str(&format!(",{}:{}", quote(k), v));
    }
    line.push('}');
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

pub fn simple(event: &str) {
    emit(event, &[]);
}

pub fn notification(code: u8, subcode: u8) {
    emit(
        "notification",
        &[
            ("code", Val::N(u64::from(code))),
            ("subcode", Val::N(u64::from(subcode))),
        ],
    );
}

pub fn error(message: &str) {
    emit("error", &[("message", Val::S(message))]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_json_specials() {
        assert_eq!(quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
