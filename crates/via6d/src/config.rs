//! The YAML configuration: the contract users see (DESIGN.md, "The
//! contract users see"). Parsing is strict (`deny_unknown_fields`) and every
//! error names the file, the line and the key.
//!
//! Field-level checks live in `try_from` types so that serde_yaml reports
//! them with their position; checks that span several fields run after
//! parsing and locate the offending entry in the text.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Deserialize;

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// Syntax, unknown key, wrong type, or a bad value; serde_yaml's message
    /// names the key path.
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A rule that spans several keys.
    #[error("{file}:{line}: {key}: {message}")]
    Invalid {
        file: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

/// The file as written. Field names are the user contract.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawConfig {
    pub router_id: Ipv4Addr,
    pub asn: Asn,
    #[serde(default)]
    pub listen: Option<Listen>,
    #[serde(default)]
    pub neighbors: Vec<Neighbor>,
    #[serde(default)]
    pub originate: Originate,
    #[serde(default)]
    pub policies: BTreeMap<String, Policy>,
    #[serde(default)]
    pub fib: Fib,
    #[serde(default = "default_control_socket")]
    pub control_socket: PathBuf,
    #[serde(default)]
    pub log: Log,
    #[serde(default)]
    pub metrics: Option<Metrics>,
    /// ECMP width: equal best paths installed as one multipath route.
    #[serde(default = "default_max_paths")]
    pub max_paths: usize,
    /// Allow ECMP across different neighbour ASes (fabrics, RFC 7938 §5.2).
    #[serde(default)]
    pub multipath_relax: bool,
}

fn default_control_socket() -> PathBuf {
    PathBuf::from("/run/via6d.sock")
}
fn default_max_paths() -> usize {
    1
}

/// A TCP MD5 key: 1 to 80 bytes (TCP_MD5SIG_MAXKEYLEN). Its `Debug` is
/// redacted, so a logged config never shows it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Password(pub bgp::Secret);

impl TryFrom<String> for Password {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() || s.len() > bgp::sockopt::MD5_MAX_KEY_LEN {
            // The value itself is never echoed.
            return Err(format!(
                "a password must be 1 to {} bytes",
                bgp::sockopt::MD5_MAX_KEY_LEN
            ));
        }
        Ok(Password(bgp::Secret(s)))
    }
}

/// A 4-octet AS number (RFC 6793): plain (`4200000001`) or asdot (`64086.59904`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "serde_yaml::Value")]
pub struct Asn(pub u32);

impl TryFrom<serde_yaml::Value> for Asn {
    type Error = String;
    fn try_from(v: serde_yaml::Value) -> Result<Self, String> {
        let text = match &v {
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::String(s) => s.clone(),
            _ => return Err("expected an AS number such as 65001 or 4200000001".into()),
        };
        let asn = if let Some((hi, lo)) = text.split_once('.') {
            let hi: u16 = hi
                .parse()
                .map_err(|_| format!("bad asdot AS number {text:?}"))?;
            let lo: u16 = lo
                .parse()
                .map_err(|_| format!("bad asdot AS number {text:?}"))?;
            (u32::from(hi) << 16) | u32::from(lo)
        } else {
            text.parse::<u32>()
                .map_err(|_| format!("{text:?}: AS number is not in 1..=4294967295"))?
        };
        if asn == 0 {
            return Err("\"0\": AS number 0 is reserved (RFC 7607)".into());
        }
        Ok(Asn(asn))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Listen {
    #[serde(default = "default_listen_address")]
    pub address: IpAddr,
    #[serde(default = "default_port")]
    pub port: u16,
}

fn default_listen_address() -> IpAddr {
    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
}
fn default_port() -> u16 {
    179
}

/// A neighbour address; link-local ones carry their interface (`fe80::1%eth0`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct NeighborAddress {
    pub address: IpAddr,
    pub interface: Option<String>,
}

impl TryFrom<String> for NeighborAddress {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let (addr, interface) = match s.split_once('%') {
            Some((a, i)) if !i.is_empty() => (a, Some(i.to_string())),
            Some(_) => return Err(format!("{s:?}: empty interface after '%'")),
            None => (s.as_str(), None),
        };
        let address: IpAddr = addr.parse().map_err(|_| {
            format!("{s:?} is not an IP address (expected e.g. fe80::1%eth0 or 2001:db8::1)")
        })?;
        if let IpAddr::V6(v6) = address {
            if is_link_local(&v6) && interface.is_none() {
                return Err(format!(
                    "{s:?} is link-local: give its interface, e.g. {addr}%eth0"
                ));
            }
        }
        if interface.is_some() && !matches!(address, IpAddr::V6(v6) if is_link_local(&v6)) {
            return Err(format!(
                "{s:?}: an interface is only meaningful for a link-local (fe80::/10) address"
            ));
        }
        if let Some(i) = &interface {
            if i.len() > 15 {
                return Err(format!("interface name {i:?} is longer than 15 characters"));
            }
        }
        Ok(NeighborAddress { address, interface })
    }
}

pub fn is_link_local(a: &Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FamilyName {
    Ipv4Unicast,
    Ipv6Unicast,
}

/// Hold time in seconds: 0 (no keepalives) or at least 3 (RFC 4271 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u32")]
pub struct HoldTime(pub u16);

impl TryFrom<u32> for HoldTime {
    type Error = String;
    fn try_from(v: u32) -> Result<Self, String> {
        match v {
            0 => Ok(HoldTime(0)),
            3..=65535 => Ok(HoldTime(v as u16)),
            _ => Err(format!(
                "\"{v}\": hold time must be 0 or 3..=65535 seconds (RFC 4271 §4.2)"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum NextHopForm {
    /// `[::, LL]` (BIRD's form).
    #[default]
    Native,
    /// `[LL]`.
    Single,
    /// `[LL, LL]`.
    Double,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Neighbor {
    /// The peer's address; or, for interface peering, `interface` or
    /// `interface-pattern` instead (exactly one of the three).
    #[serde(default)]
    pub address: Option<NeighborAddress>,
    /// Interface peering (BGP unnumbered): the peer's link-local address
    /// is learned on this interface from Router Advertisements and
    /// neighbour discovery, and we advertise ourselves there.
    #[serde(default)]
    pub interface: Option<InterfaceName>,
    /// Interface peering on every interface whose name matches (`swp*`,
    /// `*` any run of characters, `?` one).
    #[serde(default)]
    pub interface_pattern: Option<InterfacePattern>,
    pub remote_as: RemoteAs,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub families: Option<Vec<FamilyName>>,
    /// Default: on for IPv6 sessions (RFC 8950).
    #[serde(default)]
    pub extended_next_hop: Option<bool>,
    #[serde(default)]
    pub passive: bool,
    #[serde(default = "default_hold_time")]
    pub hold_time: HoldTime,
    #[serde(default = "default_connect_retry")]
    pub connect_retry: u32,
    #[serde(default)]
    pub import: Option<String>,
    #[serde(default)]
    pub export: Option<String>,
    #[serde(default)]
    pub max_prefix: Option<u32>,
    #[serde(default)]
    pub next_hop_form: NextHopForm,
    /// TCP MD5 signature key (RFC 2385), shared with the peer.
    #[serde(default)]
    pub password: Option<Password>,
    /// GTSM (RFC 5082): only accept the peer's packets at TTL 254 or more.
    #[serde(default)]
    pub ttl_security: bool,
    /// BFD (RFC 5880/5881) for this neighbour's sessions.
    #[serde(default)]
    pub bfd: Option<crate::bfd_sessions::BfdSetting>,
}

/// `remote-as`: a number, `external` (any AS but ours) or `internal`
/// (ours), as FRR spells them for unnumbered peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "serde_yaml::Value")]
pub enum RemoteAs {
    Number(Asn),
    External,
    Internal,
}

impl TryFrom<serde_yaml::Value> for RemoteAs {
    type Error = String;
    fn try_from(v: serde_yaml::Value) -> Result<Self, String> {
        match &v {
            serde_yaml::Value::String(s) if s == "external" => Ok(RemoteAs::External),
            serde_yaml::Value::String(s) if s == "internal" => Ok(RemoteAs::Internal),
            _ => Asn::try_from(v)
                .map(RemoteAs::Number)
                .map_err(|e| format!("{e} (or external, internal)")),
        }
    }
}

/// Linux interface names are at most 15 bytes and contain no `/`, `%`
/// or whitespace.
fn check_ifname(s: &str, what: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 15 {
        return Err(format!("{s:?}: {what} must be 1 to 15 characters"));
    }
    if s.contains(['/', '%', ':']) || s.contains(char::is_whitespace) {
        return Err(format!(
            "{s:?}: {what} contains a character interface names cannot"
        ));
    }
    Ok(())
}

/// An interface name for interface peering.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct InterfaceName(pub String);

impl TryFrom<String> for InterfaceName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        check_ifname(&s, "interface")?;
        if s.contains(['*', '?']) {
            return Err(format!(
                "{s:?}: wildcards belong in interface-pattern, not interface"
            ));
        }
        Ok(InterfaceName(s))
    }
}

/// An interface name pattern (`swp*`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct InterfacePattern(pub String);

impl TryFrom<String> for InterfacePattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        check_ifname(&s, "interface-pattern")?;
        Ok(InterfacePattern(s))
    }
}

fn default_hold_time() -> HoldTime {
    HoldTime(90)
}
fn default_connect_retry() -> u32 {
    5
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Originate {
    #[serde(default)]
    pub ipv4: Vec<Ipv4Net>,
    #[serde(default)]
    pub ipv6: Vec<Ipv6Net>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Policy {
    pub terms: Vec<PolicyTerm>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PolicyTerm {
    #[serde(default, rename = "match")]
    pub matches: PolicyMatch,
    pub action: PolicyActionName,
    #[serde(default)]
    pub set: PolicySet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyActionName {
    Accept,
    Reject,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PolicyMatch {
    /// Entries like `10.0.0.0/8`, `10.0.0.0/8 le 24`, `2001:db8::/32 ge 40 le 48`.
    #[serde(default)]
    pub prefix_list: Vec<PrefixEntry>,
    #[serde(default)]
    pub as_path_contains: Option<Asn>,
    #[serde(default)]
    pub community: Option<Community>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PolicySet {
    #[serde(default)]
    pub local_pref: Option<u32>,
    #[serde(default)]
    pub med: Option<u32>,
    #[serde(default)]
    pub communities: Vec<Community>,
}

/// A prefix-list entry: `PREFIX [ge N] [le N]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PrefixEntry(pub bgp::PrefixMatch);

impl TryFrom<String> for PrefixEntry {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let mut words = s.split_whitespace();
        let prefix: IpNet = words
            .next()
            .ok_or("empty prefix-list entry")?
            .parse()
            .map_err(|_| format!("{s:?}: expected PREFIX [ge N] [le N], e.g. 10.0.0.0/8 le 24"))?;
        let (mut ge, mut le) = (None, None);
        while let Some(word) = words.next() {
            let n: u8 = words
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("{s:?}: {word} needs a prefix length"))?;
            if n > prefix.max_prefix_len() || n < prefix.prefix_len() {
                return Err(format!(
                    "{s:?}: {word} {n} is outside {}..={}",
                    prefix.prefix_len(),
                    prefix.max_prefix_len()
                ));
            }
            match word {
                "ge" => ge = Some(n),
                "le" => le = Some(n),
                _ => return Err(format!("{s:?}: unknown word {word:?} (expected ge or le)")),
            }
        }
        if let (Some(g), Some(l)) = (ge, le) {
            if g > l {
                return Err(format!("{s:?}: ge {g} is greater than le {l}"));
            }
        }
        Ok(PrefixEntry(bgp::PrefixMatch {
            prefix: prefix.trunc(),
            ge,
            le,
        }))
    }
}

/// A standard community `ASN:VALUE` (RFC 1997), each half 0..=65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Community(pub u32);

impl TryFrom<String> for Community {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let parsed = s
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?)));
        match parsed {
            Some((a, b)) => Ok(Community((u32::from(a) << 16) | u32::from(b))),
            None => Err(format!(
                "{s:?} is not a community: expected ASN:VALUE, e.g. 65000:100"
            )),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Fib {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// RTA_PREFSRC for IPv4 routes; added to `lo` as a /32 if absent.
    #[serde(default)]
    pub source_address: Option<Ipv4Addr>,
    #[serde(default)]
    pub table: Table,
    #[serde(default)]
    pub protocol: RouteProtocol,
    /// Route metric; default 20 (IPv6 metric 0 would read back as 1024).
    #[serde(default = "default_metric")]
    pub metric: u32,
    /// Leave routes in the kernel on exit (graceful restart style).
    #[serde(default)]
    pub keep_on_exit: bool,
    /// Seconds to wait for End-of-RIB from every peer before stale routes go.
    #[serde(default = "default_stale_timeout")]
    pub stale_timeout: u64,
    /// A cap on routes in the kernel, whatever the peers send.
    #[serde(default)]
    pub max_routes: Option<usize>,
    /// Install through kernel nexthop objects (`ip route` then shows
    /// `nhid N via inet6 ...`): about twice as fast for a full table.
    #[serde(default = "yes")]
    pub nexthop_objects: bool,
}

fn default_metric() -> u32 {
    fib::FibConfig::default().metric
}
fn yes() -> bool {
    true
}
fn default_stale_timeout() -> u64 {
    120
}

impl Default for Fib {
    fn default() -> Self {
        Fib {
            enabled: true,
            source_address: None,
            table: Table::default(),
            protocol: RouteProtocol::default(),
            metric: default_metric(),
            keep_on_exit: false,
            stale_timeout: default_stale_timeout(),
            max_routes: None,
            nexthop_objects: true,
        }
    }
}

/// Kernel routing table: `main`, `local`, `default` or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "serde_yaml::Value")]
pub struct Table(pub u32);

impl Default for Table {
    fn default() -> Self {
        Table(254)
    }
}

impl TryFrom<serde_yaml::Value> for Table {
    type Error = String;
    fn try_from(v: serde_yaml::Value) -> Result<Self, String> {
        match v {
            serde_yaml::Value::String(s) => match s.as_str() {
                "main" => Ok(Table(254)),
                "local" => Ok(Table(255)),
                "default" => Ok(Table(253)),
                _ => s.parse().map(Table).map_err(|_| {
                    format!("{s:?}: table: expected main, local, default or a number")
                }),
            },
            serde_yaml::Value::Number(n) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(0) | None => Err(format!("\"{n}\": table: expected 1..=4294967295")),
                Some(t) => Ok(Table(t)),
            },
            _ => Err("table: expected main, local, default or a number".into()),
        }
    }
}

/// Kernel route protocol (rtm_protocol): `bgp` (186) or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "serde_yaml::Value")]
pub struct RouteProtocol(pub u8);

impl Default for RouteProtocol {
    fn default() -> Self {
        RouteProtocol(186)
    }
}

impl TryFrom<serde_yaml::Value> for RouteProtocol {
    type Error = String;
    fn try_from(v: serde_yaml::Value) -> Result<Self, String> {
        let n = match v {
            serde_yaml::Value::String(s) if s == "bgp" => return Ok(RouteProtocol(186)),
            serde_yaml::Value::String(s) => s.parse::<u8>().ok(),
            serde_yaml::Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
            _ => None,
        };
        match n {
            // 0-4 are the kernel's own (unspec, redirect, kernel, boot, static).
            Some(p) if p > 4 => Ok(RouteProtocol(p)),
            _ => Err("protocol: expected bgp or a number in 5..=255".into()),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Log {
    /// tracing filter, e.g. `info` or `via6d=debug,bgp=debug`; `RUST_LOG` wins.
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Metrics {
    /// Prometheus HTTP listener, e.g. `127.0.0.1:9179`.
    pub listen: SocketAddr,
}

/// A loaded, validated configuration, split into what each part needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub raw: RawConfig,
    pub speaker: bgp::SpeakerConfig,
    pub fib: Option<fib::FibConfig>,
    /// Things that load but deserve a look (printed by `check` and at start).
    pub warnings: Vec<String>,
}

/// Reads and validates `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    let mut config = parse(path, &text)?;
    // Keys for TCP MD5 are secrets: say so when others can read them.
    let has_secret = config
        .speaker
        .neighbors
        .iter()
        .any(|n| n.password.is_some());
    if has_secret {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o004 != 0 {
                config.warnings.push(format!(
                    "{}: holds neighbor passwords and is readable by every user; chmod o-r it",
                    path.display()
                ));
            }
        }
    }
    Ok(config)
}

/// Parses and validates config text; `path` is used in messages only.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = serde_yaml::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let message = e.to_string();
        // serde_yaml places a bad value at the start of its mapping; point at
        // the key that holds it instead.
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m)
            .to_string();
        let (line, column, message) = match locate_value(text, line, column, &message) {
            Some((l, c, key)) => {
                let message = match message.split_once(": ") {
                    Some((path, rest)) if !path.contains([' ', '"']) => {
                        format!("{path}.{key}: {rest}")
                    }
                    _ => format!("{key}: {message}"),
                };
                (l, c, message)
            }
            None => (line, column, message),
        };
        ConfigError::Parse {
            file: path.to_path_buf(),
            line,
            column,
            message,
        }
    })?;
    validate(path, text, raw)
}

/// Finds the `key: value` line inside the mapping that starts at
/// (`line`, `column`) whose value is the first quoted string of `message`:
/// returns its line, column and key.
fn locate_value(
    text: &str,
    line: usize,
    column: usize,
    message: &str,
) -> Option<(usize, usize, String)> {
    let mut quoted = message.split('"');
    let value = quoted.nth(1)?;
    let indent = column.checked_sub(1)?;
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate().skip(line.checked_sub(1)?) {
        let this_indent = l.len() - l.trim_start().len();
        if i + 1 > line && !l.trim().is_empty() && this_indent < indent {
            break;
        }
        // Each `key: value` pair on the line, block or flow style.
        let mut rest = *l;
        while let Some((before, after)) = rest.split_once(':') {
            let key = before
                .rsplit(|c: char| c.is_whitespace() || c == '{' || c == ',')
                .next()
                .unwrap_or_default();
            let val = after
                .split([',', '}'])
                .next()
                .unwrap_or_default()
                .trim()
                .trim_matches(|c| c == '"' || c == '\'');
            if !key.is_empty() && val == value {
                let col = l.find(key).map_or(1, |c| c + 1);
                return Some((i + 1, col, key.to_string()));
            }
            rest = after;
        }
    }
    None
}

/// 1-based line of the first occurrence of `needle`, 0 when absent.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(0, |i| i + 1)
}

fn policy_ref(name: &Option<String>) -> bgp::PolicyRef {
    match name.as_deref() {
        None => bgp::PolicyRef::Default,
        Some("accept-all") => bgp::PolicyRef::AcceptAll,
        Some("deny-all") => bgp::PolicyRef::DenyAll,
        Some("originated") => bgp::PolicyRef::Originated,
        Some(other) => bgp::PolicyRef::Named(other.to_string()),
    }
}

fn remote_as_text(r: &RemoteAs) -> String {
    match r {
        RemoteAs::Number(a) => a.0.to_string(),
        RemoteAs::External => "external".into(),
        RemoteAs::Internal => "internal".into(),
    }
}

fn validate(path: &Path, text: &str, raw: RawConfig) -> Result<Config, ConfigError> {
    let invalid = |needle: &str, key: &str, message: String| ConfigError::Invalid {
        file: path.to_path_buf(),
        line: line_of(text, needle),
        key: key.to_string(),
        message,
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut neighbors = Vec::new();
    for (i, n) in raw.neighbors.iter().enumerate() {
        let key = format!("neighbors[{i}]");
        // Exactly one of address, interface, interface-pattern. Interface
        // peering is an IPv6 session to `::` (learned later) scoped to the
        // interface (bgp::NeighborConfig::is_unnumbered).
        let (address, interface, field, shown) =
            match (&n.address, &n.interface, &n.interface_pattern) {
                (Some(a), None, None) => {
                    let shown = match &a.interface {
                        Some(ifname) => format!("{}%{ifname}", a.address),
                        None => a.address.to_string(),
                    };
                    (a.address, a.interface.clone(), "address", shown)
                }
                (None, Some(i), None) => (
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                    Some(i.0.clone()),
                    "interface",
                    i.0.clone(),
                ),
                (None, None, Some(p)) => (
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                    Some(p.0.clone()),
                    "interface-pattern",
                    p.0.clone(),
                ),
                _ => {
                    let needle = match (&n.address, &n.interface, &n.interface_pattern) {
                        (_, Some(i), _) => format!("interface: {}", i.0),
                        (_, _, Some(p)) => p.0.clone(),
                        _ => format!("remote-as: {}", remote_as_text(&n.remote_as)),
                    };
                    return Err(invalid(
                        &needle,
                        &key,
                        "give exactly one of address, interface or interface-pattern".into(),
                    ));
                }
            };
        let unnumbered = field != "address";
        if !seen.insert((address, interface.clone())) {
            return Err(invalid(
                &shown,
                &format!("{key}.{field}"),
                format!("neighbor {shown} is configured twice"),
            ));
        }
        if unnumbered && n.extended_next_hop == Some(false) {
            return Err(invalid(
                "extended-next-hop",
                &format!("{key}.extended-next-hop"),
                "interface peering carries IPv4 over a link-local IPv6 session: extended next hop (RFC 8950) stays on".into(),
            ));
        }
        for (dir, name) in [("import", &n.import), ("export", &n.export)] {
            if let bgp::PolicyRef::Named(p) = policy_ref(name) {
                if !raw.policies.contains_key(&p) {
                    return Err(invalid(
                        &format!("{dir}: {p}"),
                        &format!("{key}.{dir}"),
                        format!(
                            "policy {p:?} is not defined (expected accept-all, deny-all, originated, or a name under `policies:`)"
                        ),
                    ));
                }
            }
        }
        let is_v6 = address.is_ipv6();
        let extended_next_hop = n.extended_next_hop.unwrap_or(is_v6);
        if extended_next_hop && !is_v6 {
            return Err(invalid(
                "extended-next-hop",
                &format!("{key}.extended-next-hop"),
                "extended next hop (RFC 8950) needs an IPv6 session".into(),
            ));
        }
        let families = match &n.families {
            None => vec![wire::Family::Ipv4Unicast, wire::Family::Ipv6Unicast],
            Some(list) if list.is_empty() => {
                return Err(invalid(
                    "families",
                    &format!("{key}.families"),
                    "at least one family is needed (ipv4-unicast, ipv6-unicast)".into(),
                ))
            }
            Some(list) => {
                let mut fams: Vec<wire::Family> = list
                    .iter()
                    .map(|f| match f {
                        FamilyName::Ipv4Unicast => wire::Family::Ipv4Unicast,
                        FamilyName::Ipv6Unicast => wire::Family::Ipv6Unicast,
                    })
                    .collect();
                fams.sort();
                fams.dedup();
                fams
            }
        };
        neighbors.push(bgp::NeighborConfig {
            address,
            interface,
            remote_as: match n.remote_as {
                RemoteAs::Number(a) => a.0,
                RemoteAs::Internal => raw.asn.0,
                RemoteAs::External => bgp::REMOTE_AS_EXTERNAL,
            },
            port: n.port,
            families,
            extended_next_hop,
            passive: n.passive,
            hold_time: n.hold_time.0,
            connect_retry: Duration::from_secs(u64::from(n.connect_retry.max(1))),
            import: policy_ref(&n.import),
            export: policy_ref(&n.export),
            max_prefix: n.max_prefix,
            link_local_form: match n.next_hop_form {
                NextHopForm::Native => wire::LinkLocalForm::Native,
                NextHopForm::Single => wire::LinkLocalForm::Single,
                NextHopForm::Double => wire::LinkLocalForm::Double,
            },
            description: n.description.clone(),
            password: n.password.as_ref().map(|p| p.0.clone()),
            ttl_security: n.ttl_security,
        });
    }
    if raw.max_paths == 0 {
        return Err(invalid(
            "max-paths",
            "max-paths",
            "must be at least 1".into(),
        ));
    }
    let policies = raw
        .policies
        .iter()
        .map(|(name, p)| {
            let terms = p
                .terms
                .iter()
                .map(|t| bgp::PolicyTerm {
                    matches: bgp::PolicyMatch {
                        prefixes: t.matches.prefix_list.iter().map(|e| e.0).collect(),
                        as_path_contains: t.matches.as_path_contains.map(|a| a.0),
                        community: t.matches.community.map(|c| c.0),
                    },
                    action: match t.action {
                        PolicyActionName::Accept => bgp::PolicyAction::Accept,
                        PolicyActionName::Reject => bgp::PolicyAction::Reject,
                    },
                    set: bgp::PolicySet {
                        local_pref: t.set.local_pref,
                        med: t.set.med,
                        add_communities: t.set.communities.iter().map(|c| c.0).collect(),
                    },
                })
                .collect();
            (name.clone(), bgp::Policy { terms })
        })
        .collect();
    let speaker = bgp::SpeakerConfig {
        router_id: raw.router_id,
        asn: raw.asn.0,
        listen: raw
            .listen
            .as_ref()
            .map(|l| SocketAddr::new(l.address, l.port)),
        neighbors,
        originate_v4: raw.originate.ipv4.iter().map(|p| p.trunc()).collect(),
        originate_v6: raw.originate.ipv6.iter().map(|p| p.trunc()).collect(),
        policies,
        max_paths: raw.max_paths,
        multipath_relax: raw.multipath_relax,
    };
    let fib = raw.fib.enabled.then(|| fib::FibConfig {
        table: raw.fib.table.0,
        protocol: raw.fib.protocol.0,
        metric: raw.fib.metric,
        source_address: raw.fib.source_address,
        stale_timeout: Duration::from_secs(raw.fib.stale_timeout),
        keep_on_exit: raw.fib.keep_on_exit,
        max_routes: raw.fib.max_routes,
        nexthop_objects: raw.fib.nexthop_objects,
        ..fib::FibConfig::default()
    });
    Ok(Config {
        raw,
        speaker,
        fib,
        warnings: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Config, ConfigError> {
        parse(Path::new("test.yaml"), text)
    }

    const GOOD: &str = "\
router-id: 192.0.2.2
asn: 65002
listen: { address: \"::\", port: 179 }
neighbors:
  - address: fe80::1%eth0
    remote-as: 65001
  - address: 2001:db8::1
    remote-as: 4200000001
    families: [ipv4-unicast, ipv6-unicast]
    extended-next-hop: true
    passive: false
    hold-time: 90
    import: accept-all
    export: originated
originate:
  ipv4: [198.51.100.0/24]
  ipv6: [2001:db8:100::/48]
fib:
  enabled: true
  source-address: 10.0.8.42
  table: main
  protocol: bgp
control-socket: /run/via6d.sock
";

    #[test]
    fn contract_example_loads() {
        let c = parse_str(GOOD).expect("the DESIGN.md example must load");
        assert_eq!(c.speaker.asn, 65002);
        assert_eq!(c.speaker.neighbors.len(), 2);
        let ll = &c.speaker.neighbors[0];
        assert_eq!(ll.interface.as_deref(), Some("eth0"));
        assert!(ll.extended_next_hop, "default on for IPv6 sessions");
        assert_eq!(ll.import, bgp::PolicyRef::Default);
        assert_eq!(c.speaker.neighbors[1].remote_as, 4_200_000_001);
        assert_eq!(c.speaker.neighbors[1].export, bgp::PolicyRef::Originated);
        let fib = c.fib.expect("fib enabled");
        assert_eq!(fib.table, 254);
        assert_eq!(fib.protocol, 186);
        assert_eq!(fib.source_address, Some(Ipv4Addr::new(10, 0, 8, 42)));
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let text = GOOD.replace("    passive: false", "    pasive: false");
        let e = parse_str(&text).unwrap_err().to_string();
        assert!(e.starts_with("test.yaml:11:"), "{e}");
        assert!(e.contains("pasive"), "{e}");
    }

    #[test]
    fn link_local_without_interface_is_refused_with_line() {
        let text = GOOD.replace("fe80::1%eth0", "fe80::1");
        let e = parse_str(&text).unwrap_err().to_string();
        assert!(e.starts_with("test.yaml:5:"), "{e}");
        assert!(e.contains("link-local"), "{e}");
    }

    #[test]
    fn bad_hold_time_is_refused() {
        let text = GOOD.replace("hold-time: 90", "hold-time: 2");
        let e = parse_str(&text).unwrap_err().to_string();
        assert!(
            e.starts_with("test.yaml:12:5: neighbors[1].hold-time:"),
            "{e}"
        );
        assert!(e.contains("\"2\": hold time must be 0 or 3"), "{e}");
    }

    #[test]
    fn undefined_policy_is_refused_with_line() {
        let text = GOOD.replace("import: accept-all", "import: upstream-in");
        let e = parse_str(&text).unwrap_err().to_string();
        assert!(e.starts_with("test.yaml:13:"), "{e}");
        assert!(e.contains("neighbors[1].import"), "{e}");
    }

    #[test]
    fn asn_forms() {
        let text = GOOD.replace("asn: 65002", "asn: 64086.59904");
        let c = parse_str(&text).unwrap();
        assert_eq!(c.speaker.asn, (64086 << 16) | 59904);
        let text = GOOD.replace("asn: 65002", "asn: 0");
        let e = parse_str(&text).unwrap_err().to_string();
        assert!(e.starts_with("test.yaml:2:1: asn:"), "{e}");
        let text = GOOD.replace("port: 179 }", "port: 70000 }");
        let e = parse_str(&text).unwrap_err().to_string();
        assert!(e.starts_with("test.yaml:3:"), "{e}");
        let text = GOOD.replace("asn: 65002", "asn: 4294967296");
        assert!(parse_str(&text).is_err());
    }

    #[test]
    fn prefix_list_entries() {
        let e: PrefixEntry = "10.0.0.0/8 ge 16 le 24".to_string().try_into().unwrap();
        assert_eq!(e.0.ge, Some(16));
        assert_eq!(e.0.le, Some(24));
        assert!(PrefixEntry::try_from("10.0.0.0/8 le 40".to_string()).is_err());
        assert!(PrefixEntry::try_from("10.0.0.0/8 ge 24 le 16".to_string()).is_err());
        assert!(PrefixEntry::try_from("10.0.0.0/8 foo 24".to_string()).is_err());
    }

    #[test]
    fn policies_parse() {
        let text = format!(
            "{GOOD}policies:\n  upstream-in:\n    terms:\n      - match: {{ prefix-list: [\"10.0.0.0/8 le 24\"], community: \"65000:1\" }}\n        action: accept\n        set: {{ local-pref: 200 }}\n"
        )
        .replace("import: accept-all", "import: upstream-in");
        let c = parse_str(&text).unwrap();
        let p = &c.speaker.policies["upstream-in"];
        assert_eq!(p.terms[0].set.local_pref, Some(200));
        assert_eq!(p.terms[0].matches.community, Some((65000 << 16) | 1));
    }

    #[test]
    fn passwords_are_kept_secret() {
        let text = GOOD.replace(
            "    remote-as: 65001\n",
            "    remote-as: 65001\n    password: \"s3cr3t-key\"\n    ttl-security: true\n",
        );
        let c = parse_str(&text).unwrap();
        let n = &c.speaker.neighbors[0];
        assert_eq!(
            n.password.as_ref().map(|p| p.0.as_str()),
            Some("s3cr3t-key")
        );
        assert!(n.ttl_security);
        // Neither the parsed file nor the speaker config prints it.
        assert!(!format!("{:?}", c.raw).contains("s3cr3t-key"));
        assert!(!format!("{:?}", c.speaker).contains("s3cr3t-key"));
        let long = "k".repeat(81);
        let e = parse_str(&text.replace("s3cr3t-key", &long))
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 to 80 bytes") && !e.contains(&long), "{e}");
    }

    #[test]
    fn world_readable_passwords_warn() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("via6-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret.yaml");
        let text = GOOD.replace(
            "    remote-as: 65001\n",
            "    remote-as: 65001\n    password: pw\n",
        );
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(load(&path).unwrap().warnings.len(), 1);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(load(&path).unwrap().warnings.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn shipped_examples_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                load(&path).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 3, "expected the example configs in {}", dir.display());
    }

    const FABRIC: &str = "\
router-id: 10.255.0.11
asn: 65111
neighbors:
  - interface: eth0
    remote-as: external
  - interface-pattern: \"swp*\"
    remote-as: internal
    hold-time: 9
  - address: 2001:db8::1
    remote-as: 65100
";

    #[test]
    fn interface_peering_loads() {
        let c = parse_str(FABRIC).unwrap_or_else(|e| panic!("{e}"));
        let n = &c.speaker.neighbors;
        assert_eq!(n.len(), 3);
        assert!(n[0].is_unnumbered());
        assert_eq!(n[0].interface.as_deref(), Some("eth0"));
        assert_eq!(n[0].address, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_eq!(n[0].remote_as, bgp::REMOTE_AS_EXTERNAL);
        assert!(n[0].extended_next_hop, "on for interface peering");
        assert!(n[0].accepts_peer_as(65111, 65100));
        assert!(!n[0].accepts_peer_as(65111, 65111));
        assert!(n[1].is_interface_pattern());
        assert_eq!(n[1].interface.as_deref(), Some("swp*"));
        assert_eq!(n[1].remote_as, 65111, "internal is our own AS");
        assert!(!n[2].is_unnumbered());
        assert_eq!(n[2].remote_as, 65100);
    }

    #[test]
    fn interface_peering_mistakes_are_refused() {
        let both = FABRIC.replace(
            "  - interface: eth0\n",
            "  - interface: eth0\n    address: fe80::1%eth0\n",
        );
        let e = parse_str(&both).unwrap_err().to_string();
        assert!(
            e.contains("exactly one of address, interface or interface-pattern"),
            "{e}"
        );
        assert!(e.starts_with("test.yaml:4:"), "{e}");
        let neither = FABRIC.replace("  - interface: eth0\n", "  - description: x\n");
        let e = parse_str(&neither).unwrap_err().to_string();
        assert!(e.contains("exactly one of"), "{e}");
        let wild = FABRIC.replace("interface: eth0", "interface: eth*");
        let e = parse_str(&wild).unwrap_err().to_string();
        assert!(e.contains("interface-pattern"), "{e}");
        assert!(e.starts_with("test.yaml:4:"), "{e}");
        let long = FABRIC.replace("interface: eth0", "interface: a-very-long-ifname");
        assert!(parse_str(&long).is_err());
        let off = FABRIC.replace(
            "    remote-as: external\n",
            "    remote-as: external\n    extended-next-hop: false\n",
        );
        let e = parse_str(&off).unwrap_err().to_string();
        assert!(e.contains("extended next hop"), "{e}");
        let twice = FABRIC.replace("interface-pattern: \"swp*\"", "interface: eth0");
        let e = parse_str(&twice).unwrap_err().to_string();
        assert!(e.contains("configured twice"), "{e}");
        let bad_as = FABRIC.replace("remote-as: external", "remote-as: outside");
        let e = parse_str(&bad_as).unwrap_err().to_string();
        assert!(e.contains("external, internal"), "{e}");
    }

    #[test]
    fn duplicate_neighbor_refused() {
        let text = GOOD.replace("2001:db8::1\n", "fe80::1%eth0\n");
        let e = parse_str(&text).unwrap_err().to_string();
        assert!(e.contains("configured twice"), "{e}");
    }
}
