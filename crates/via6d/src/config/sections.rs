//! The sections of the file other than `neighbors:`.

use std::net::{Ipv4Addr, SocketAddr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::Deserialize;

use super::values::{Asn, Community, PrefixEntry, RouteProtocol, Table};

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
