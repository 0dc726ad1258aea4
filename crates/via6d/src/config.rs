//! The YAML configuration: the contract users see (README.md,
//! "Configuration"). Parsing is strict (`deny_unknown_fields`) and every
//! error names the file, the line and the key.
//!
//! Field-level checks live in `try_from` types so that serde_yaml reports
//! them with their position; checks that span several fields run after
//! parsing (`validate`) and locate the offending entry in the text.

mod forwarding;
mod locate;
mod neighbor;
mod sections;
#[cfg(test)]
mod tests;
mod validate;
mod values;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use forwarding::{forwarding_warnings, Forwarding};
pub use neighbor::Neighbor;
pub use sections::{
    Fib, Log, LogFormat, Metrics, Originate, Policy, PolicyActionName, PolicyMatch, PolicySet,
    PolicyTerm,
};
pub use values::{
    Asn, Community, FamilyName, HoldTime, InterfaceName, InterfacePattern, LongLivedStaleTime,
    NeighborAddress, NextHopForm, Password, PrefixEntry, RemoteAs, RestartTime, RouteProtocol,
    Table,
};

use locate::locate_value;

/// Where via6d and via6ctl look for the control socket unless told: the
/// directory systemd makes for the service (`RuntimeDirectory=via6d`).
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/via6d/via6d.sock";

/// Where BGP listens unless `listen:` says otherwise: every address, both
/// families (IPv4 peers arrive as IPv4-mapped), the standard port.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 179);

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
    /// Omitted: [`DEFAULT_LISTEN`] as soon as a neighbour is configured
    /// (peers connect to us as often as we to them); `none`: connect out only.
    #[serde(default)]
    pub listen: Option<ListenSetting>,
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
    PathBuf::from(DEFAULT_CONTROL_SOCKET)
}
fn default_max_paths() -> usize {
    1
}

/// `listen:` as written: `none`, or an address and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenSetting {
    None,
    At(Listen),
}

impl<'de> Deserialize<'de> for ListenSetting {
    /// By hand rather than `untagged`, so that a bad port or address keeps
    /// its line and key in the message.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ListenSetting;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("none or { address: \"::\", port: 179 }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ListenSetting, E> {
                match v {
                    "none" => Ok(ListenSetting::None),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ListenSetting, A::Error> {
                Listen::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(ListenSetting::At)
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Listen {
    #[serde(default = "default_listen_address")]
    pub address: IpAddr,
    #[serde(default = "neighbor::default_port")]
    pub port: u16,
}

fn default_listen_address() -> IpAddr {
    DEFAULT_LISTEN.ip()
}

impl RawConfig {
    /// Where BGP listens: as written, else [`DEFAULT_LISTEN`] when any
    /// neighbour is configured; `None` when it does not listen.
    pub fn listen_address(&self) -> Option<SocketAddr> {
        match &self.listen {
            Some(ListenSetting::None) => None,
            Some(ListenSetting::At(l)) => Some(SocketAddr::new(l.address, l.port)),
            None => (!self.neighbors.is_empty()).then_some(DEFAULT_LISTEN),
        }
    }
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
    validate::validate(path, text, raw)
}
