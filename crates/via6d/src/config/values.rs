//! Single values of the configuration, each checked where serde reads it
//! so that a bad one is reported with its line and key.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

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
            if v6.is_unicast_link_local() && interface.is_none() {
                return Err(format!(
                    "{s:?} is link-local: give its interface, e.g. {addr}%eth0"
                ));
            }
        }
        if interface.is_some() && !matches!(address, IpAddr::V6(v6) if v6.is_unicast_link_local()) {
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

/// Graceful restart time in seconds: 1..=4095, the 12 bits of the
/// capability (RFC 4724 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u32")]
pub struct RestartTime(pub u16);

impl TryFrom<u32> for RestartTime {
    type Error = String;
    fn try_from(v: u32) -> Result<Self, String> {
        match v {
            1..=4095 => Ok(RestartTime(v as u16)),
            _ => Err(format!(
                "\"{v}\": restart time must be 1..=4095 seconds (RFC 4724 §3)"
            )),
        }
    }
}

/// Long-lived stale time in seconds: 0 (off) to 16777215, the 24 bits of
/// the capability (RFC 9494 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(try_from = "u32")]
pub struct LongLivedStaleTime(pub u32);

impl TryFrom<u32> for LongLivedStaleTime {
    type Error = String;
    fn try_from(v: u32) -> Result<Self, String> {
        if v <= bgp::graceful::MAX_LONG_LIVED_STALE_TIME {
            Ok(LongLivedStaleTime(v))
        } else {
            Err(format!(
                "\"{v}\": long-lived stale time must be 0..=16777215 seconds (RFC 9494 §3)"
            ))
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
