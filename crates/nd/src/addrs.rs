//! The host's interface addresses, read with getifaddrs(3) through `nix`:
//! the one walker of that list in via6 (sessions need their local
//! addresses for the next hops they send; discovery needs its own
//! addresses to ignore its own packets). No netlink: that is `fib`'s.

use std::io;
use std::net::IpAddr;

use nix::ifaddrs::getifaddrs;
use nix::net::if_::if_nametoindex;

/// One address of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    pub name: String,
    pub index: u32,
    pub addr: IpAddr,
}

/// The interface index of `name`, or `None` when there is no such
/// interface.
pub fn if_index(name: &str) -> Option<u32> {
    if_nametoindex(name).ok().filter(|&ix| ix != 0)
}

/// Every IPv4 and IPv6 address of every interface.
pub fn interface_addresses() -> io::Result<Vec<IfAddr>> {
    let list = getifaddrs().map_err(io::Error::from)?;
    let mut out = Vec::new();
    for ifa in list {
        let Some(sa) = ifa.address else { continue };
        let addr = if let Some(v4) = sa.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = sa.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        let index = if_index(&ifa.interface_name).unwrap_or(0);
        out.push(IfAddr {
            name: ifa.interface_name,
            index,
            addr,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_its_addresses() {
        let all = interface_addresses().expect("getifaddrs");
        let lo: Vec<_> = all.iter().filter(|a| a.name == "lo").collect();
        assert!(
            lo.iter().any(|a| a.addr == IpAddr::from([127, 0, 0, 1])),
            "{all:?}"
        );
        assert!(lo.iter().all(|a| Some(a.index) == if_index("lo")));
        assert_eq!(if_index("no-such-if0"), None);
    }
}
