//! Command line of `via6-feeder`.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use wire::LinkLocalForm;

use crate::error::FeederError;

pub const USAGE: &str = "\
usage: via6-feeder (--connect ADDR[%IF] | --listen ADDR[%IF]) [options]
  --connect ADDR[%IF]     connect to the receiver (retries until --connect-timeout)
  --listen ADDR[%IF]      wait for the receiver to connect
  --port N                TCP port (179)
  --prefixes FILE         one prefix per line, gzip or plain
  --mrt FILE              MRT RIB dump (TABLE_DUMP_V2 or TABLE_DUMP)
  --limit N               take only the first N distinct prefixes
  --ipv6                  also send the file's IPv6 prefixes
  --local-as N            our AS, first hop of every path (65001)
  --remote-as N           refuse a peer with another AS
  --router-id A           (192.0.2.1)
  --hold-time N           proposed hold time (90)
  --next-hop-ll ADDR      link-local next hop (default: the interface's)
  --next-hop-global ADDR  send [global, LL] instead of [::, LL]
  --ll-form F             native ([::, LL], default) | single ([LL]) | double ([LL, LL])
  --seed N                attribute generator seed (1)
  --connect-timeout SECS  (60)
  --flap SHARE            after End-of-RIB, withdraw and re-announce SHARE of the
                          table (e.g. 10% or 0.1)
  --flap-rounds N         (1)
  --flap-interval SECS    pause between withdraw and re-announce (1)
  --withdraw-after WHEN   then withdraw everything; WHEN is `signal` (SIGUSR1) or seconds
  --exit                  close with a Cease once every action is done
  --dry-run               encode the table, print its size, do not connect
Events go to stdout as JSON lines with wall-clock `t`.";

/// Wait for SIGUSR1 or a delay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger {
    Signal,
    After(Duration),
}

/// Where the table comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Text(PathBuf),
    Mrt(PathBuf),
}

/// Passive or active, and to/on which address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Connect,
    Listen,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    pub mode: Mode,
    pub address: Ipv6Addr,
    pub interface: Option<String>,
    pub port: u16,
    pub source: Source,
    pub limit: Option<usize>,
    pub ipv6: bool,
    pub local_as: u32,
    pub remote_as: Option<u32>,
    pub router_id: Ipv4Addr,
    pub hold_time: u16,
    pub next_hop_ll: Option<Ipv6Addr>,
    pub next_hop_global: Option<Ipv6Addr>,
    pub ll_form: LinkLocalForm,
    pub seed: u64,
    pub connect_timeout: Duration,
    pub flap: Option<f64>,
    pub flap_rounds: u32,
    pub flap_interval: Duration,
    pub withdraw: Option<Trigger>,
    pub exit: bool,
    pub dry_run: bool,
}

fn usage(msg: impl Into<String>) -> FeederError {
    FeederError::Usage(msg.into())
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, FeederError> {
    v.parse()
        .map_err(|_| usage(format!("{flag}: {v:?} is not a valid value")))
}

fn secs(flag: &str, v: &str) -> Result<Duration, FeederError> {
    let s: f64 = num(flag, v)?;
    if !(0.0..=86_400.0).contains(&s) {
        return Err(usage(format!("{flag}: {v} is outside 0..86400 seconds")));
    }
    Ok(Duration::from_secs_f64(s))
}

/// `fe80::1%eth0` or `2001:db8::1`.
fn scoped(flag: &str, v: &str) -> Result<(Ipv6Addr, Option<String>), FeederError> {
    let (a, i) = match v.split_once('%') {
        Some((a, i)) if !i.is_empty() => (a, Some(i.to_string())),
        Some(_) => return Err(usage(format!("{flag}: empty interface in {v:?}"))),
        None => (v, None),
    };
    let addr: Ipv6Addr = num(flag, a)?;
    if addr.is_unicast_link_local() && i.is_none() {
        return Err(usage(format!(
            "{flag}: {v} is link-local: add its interface, e.g. {v}%eth0"
        )));
    }
    Ok((addr, i))
}

/// `10%` or `0.1`.
fn share(v: &str) -> Result<f64, FeederError> {
    let s = match v.strip_suffix('%') {
        Some(p) => num::<f64>("--flap", p)? / 100.0,
        None => num::<f64>("--flap", v)?,
    };
    if !(0.0..=1.0).contains(&s) {
        return Err(usage(format!("--flap: {v} is not a share of 0..100%")));
    }
    Ok(s)
}

pub fn parse(argv: &[String]) -> Result<Args, FeederError> {
    let mut mode = None;
    let mut source = None;
    let mut a = Args {
        mode: Mode::Connect,
        address: Ipv6Addr::UNSPECIFIED,
        interface: None,
        port: 179,
        source: Source::Text(PathBuf::new()),
        limit: None,
        ipv6: false,
        local_as: 65001,
        remote_as: None,
        router_id: Ipv4Addr::new(192, 0, 2, 1),
        hold_time: 90,
        next_hop_ll: None,
        next_hop_global: None,
        ll_form: LinkLocalForm::Native,
        seed: 1,
        connect_timeout: Duration::from_secs(60),
        flap: None,
        flap_rounds: 1,
        flap_interval: Duration::from_secs(1),
        withdraw: None,
        exit: false,
        dry_run: false,
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let flag = flag.as_str();
        let mut val = || {
            it.next()
                .map(String::as_str)
                .ok_or_else(|| usage(format!("{flag} needs a value")))
        };
        match flag {
            "--connect" | "--listen" => {
                let (addr, ifn) = scoped(flag, val()?)?;
                a.address = addr;
                a.interface = ifn;
                mode = Some(if flag == "--connect" {
                    Mode::Connect
                } else {
                    Mode::Listen
                });
            }
            "--port" => a.port = num(flag, val()?)?,
            "--prefixes" => source = Some(Source::Text(val()?.into())),
            "--mrt" => source = Some(Source::Mrt(val()?.into())),
            "--limit" => a.limit = Some(num(flag, val()?)?),
            "--ipv6" => a.ipv6 = true,
            "--local-as" => a.local_as = num(flag, val()?)?,
            "--remote-as" => a.remote_as = Some(num(flag, val()?)?),
            "--router-id" => a.router_id = num(flag, val()?)?,
            "--hold-time" => {
                a.hold_time = num(flag, val()?)?;
                if a.hold_time > 0 && a.hold_time < 3 {
                    return Err(usage("--hold-time: 0 or at least 3 (RFC 4271 §4.2)"));
                }
            }
            "--next-hop-ll" => a.next_hop_ll = Some(scoped(flag, val()?)?.0),
            "--next-hop-global" => a.next_hop_global = Some(num(flag, val()?)?),
            "--ll-form" => {
                a.ll_form = match val()? {
                    "native" => LinkLocalForm::Native,
                    "single" => LinkLocalForm::Single,
                    "double" => LinkLocalForm::Double,
                    v => return Err(usage(format!("--ll-form: {v:?}: native, single or double"))),
                }
            }
            "--seed" => a.seed = num(flag, val()?)?,
            "--connect-timeout" => a.connect_timeout = secs(flag, val()?)?,
            "--flap" => a.flap = Some(share(val()?)?),
            "--flap-rounds" => a.flap_rounds = num(flag, val()?)?,
            "--flap-interval" => a.flap_interval = secs(flag, val()?)?,
            "--withdraw-after" => {
                a.withdraw = Some(match val()? {
                    "signal" => Trigger::Signal,
                    v => Trigger::After(secs(flag, v)?),
                })
            }
            "--exit" => a.exit = true,
            "--dry-run" => a.dry_run = true,
            "-h" | "--help" => return Err(usage(USAGE)),
            other => return Err(usage(format!("unknown option {other:?}\n{USAGE}"))),
        }
    }
    a.source = source.ok_or_else(|| usage("give --prefixes FILE or --mrt FILE"))?;
    match mode {
        Some(m) => a.mode = m,
        None if a.dry_run => {}
        None => return Err(usage("give --connect ADDR or --listen ADDR")),
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Args, FeederError> {
        let v: Vec<String> = s.split_whitespace().map(String::from).collect();
        parse(&v)
    }

    #[test]
    fn typical_bench_line_parses() {
        let a = p("--connect fe80::2%eth0 --prefixes t.gz --limit 1000 --withdraw-after signal --flap 10%")
            .unwrap();
        assert_eq!(a.mode, Mode::Connect);
        assert_eq!(a.interface.as_deref(), Some("eth0"));
        assert_eq!(a.limit, Some(1000));
        assert_eq!(a.withdraw, Some(Trigger::Signal));
        assert_eq!(a.flap, Some(0.1));
    }

    #[test]
    fn link_local_without_interface_is_refused() {
        let e = p("--connect fe80::2 --prefixes t").unwrap_err();
        assert!(e.to_string().contains("%eth0"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        assert!(p("--listen :: --prefixes t --flap 150%").is_err());
        assert!(p("--listen :: --prefixes t --hold-time 2").is_err());
        let e = p("--listen :: --prefixes t --bogus").unwrap_err();
        assert!(e.to_string().contains("--bogus"));
        assert!(p("--listen ::").is_err());
        assert!(p("--prefixes t").is_err());
        assert!(p("--prefixes t --dry-run").is_ok());
    }
}
