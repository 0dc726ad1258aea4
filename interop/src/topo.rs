//! Topologies the scenarios share. Addressing plan:
//! - BIRD hosts: link-local `fe80::1` (second BIRD `fe80::3`), loopback
//!   `10.255.0.1/32` (`10.255.0.3/32`), AS 65001 (65003), announcing
//!   `10.1.0.0/24` (`10.3.0.0/24`) and `2001:db8:1::/48` (`2001:db8:3::/48`);
//! - via6 host: `fe80::2` on every link, router id `10.255.0.2`, AS 65002,
//!   originating `198.51.100.0/24` and `2001:db8:100::/48`.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::bird::{Bird, BirdConfig, BirdPeer};
use crate::error::Result;
use crate::lab::{Host, Lab, Link};
use crate::via6::{Via6Config, Via6Neighbor, Via6d};

/// Budget for a session to come up or a route to appear or leave.
pub const T: Duration = Duration::from_secs(40);

pub const BIRD_AS: u32 = 65001;
pub const VIA6_AS: u32 = 65002;
pub const BIRD2_AS: u32 = 65003;
pub const BIRD_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
pub const VIA6_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
pub const BIRD2_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 3);
pub const BIRD_ID: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 1);
pub const VIA6_ID: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 2);
pub const BIRD2_ID: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 3);
pub const BIRD_V4: &str = "10.1.0.0/24";
pub const BIRD_V6: &str = "2001:db8:1::/48";
pub const VIA6_V4: &str = "198.51.100.0/24";
pub const VIA6_V6: &str = "2001:db8:100::/48";

/// BIRD's protocol name for its session with via6.
pub const PEER: &str = "via6";

/// BIRD host -- via6 host over one link-local-only veth (`eth0` both).
pub struct Pair {
    /// via6's name for its BIRD neighbour (first `neighbors:` entry).
    pub bird_neighbor: String,
    pub bird_host: Host,
    pub via6_host: Host,
    pub link: Link,
    pub bird: Bird,
    pub via6: Via6d,
}

impl Pair {
    /// via6's name for its BIRD neighbour, e.g. `fe80::1%eth0`.
    pub fn bird_addr(&self) -> String {
        self.bird_neighbor.clone()
    }
}

/// The default BIRD side: announces [`BIRD_V4`] and [`BIRD_V6`], one
/// link-local session to via6 with extended next hop on IPv4.
pub fn default_bird() -> BirdConfig {
    let mut c = BirdConfig::new(BIRD_ID, BIRD_AS);
    c.static_v4 = vec![BIRD_V4.into()];
    c.static_v6 = vec![BIRD_V6.into()];
    c.peers.push(BirdPeer::link_local(
        PEER,
        &VIA6_LL.to_string(),
        "eth0",
        VIA6_AS,
    ));
    c
}

/// The default via6 side: originates [`VIA6_V4`] and [`VIA6_V6`], one
/// neighbour `fe80::1%eth0` accepting and exporting everything.
pub fn default_via6() -> Via6Config {
    let mut c = Via6Config::new(VIA6_ID, VIA6_AS);
    c.neighbors
        .push(Via6Neighbor::open(&format!("{BIRD_LL}%eth0"), BIRD_AS));
    c.originate_v4 = vec![VIA6_V4.into()];
    c.originate_v6 = vec![VIA6_V6.into()];
    c
}

/// Builds the pair, starts both daemons and waits until both sides see
/// the session Established.
pub fn pair(lab: &Lab, bird_cfg: &BirdConfig, via6_cfg: &Via6Config) -> Result<Pair> {
    pair_with(lab, bird_cfg, via6_cfg, |_, _, _| Ok(()))
}

/// Like [`pair`], with `setup(lab, bird_host, via6_host)` run after the
/// link exists and before the daemons start (extra addresses, sysctls).
pub fn pair_with<F>(
    lab: &Lab,
    bird_cfg: &BirdConfig,
    via6_cfg: &Via6Config,
    setup: F,
) -> Result<Pair>
where
    F: FnOnce(&Lab, &Host, &Host) -> Result<()>,
{
    let bird_host = lab.add_host("bird")?;
    let via6_host = lab.add_host("via6")?;
    let link = lab.link_ll(&bird_host, "eth0", BIRD_LL, &via6_host, "eth0", VIA6_LL)?;
    lab.add_addr(&bird_host, "lo", &format!("{BIRD_ID}/32"))?;
    setup(lab, &bird_host, &via6_host)?;
    let bird = Bird::start(lab, &bird_host, "bird", bird_cfg)?;
    let via6 = Via6d::start(lab, &via6_host, "via6d", via6_cfg)?;
    let bird_neighbor = via6_cfg
        .neighbors
        .first()
        .map(|n| n.address.clone())
        .unwrap_or_else(|| link.a.scoped());
    let p = Pair {
        bird_neighbor,
        bird_host,
        via6_host,
        link,
        bird,
        via6,
    };
    let addr = p.bird_addr();
    lab.wait_until(T, "BIRD and via6 Established", || {
        Ok(crate::check::bird_established(&p.bird, PEER)?
            && crate::check::via6_established(&p.via6, &addr)?)
    })?;
    Ok(p)
}

/// In `via6ctl --json routes`: the link-local half of the next hop and the
/// gateway handed to the FIB are BIRD's `fe80::1`.
pub const NH_LL1: &str = "\"next_hop_link_local\":\"fe80::1\"";
/// The FIB gateway of a route from BIRD.
pub const GW_LL1: &str = "\"gateway\":\"fe80::1\"";

/// Host addresses inside the prefixes each side announces, for pings:
/// BIRD's host gets `10.1.0.1` and `2001:db8:1::1` on `lo`, via6's host
/// `198.51.100.1` and `2001:db8:100::1`.
pub const BIRD_HOST_V4: &str = "10.1.0.1";
pub const BIRD_HOST_V6: &str = "2001:db8:1::1";
pub const VIA6_HOST_V4: &str = "198.51.100.1";
pub const VIA6_HOST_V6: &str = "2001:db8:100::1";

/// Puts the host addresses above on both sides' `lo` (for
/// [`pair_with`]'s setup).
pub fn host_addresses(lab: &Lab, bird_host: &Host, via6_host: &Host) -> Result<()> {
    lab.add_addr(bird_host, "lo", &format!("{BIRD_HOST_V4}/32"))?;
    lab.add_addr(bird_host, "lo", &format!("{BIRD_HOST_V6}/128"))?;
    lab.add_addr(via6_host, "lo", &format!("{VIA6_HOST_V4}/32"))?;
    lab.add_addr(via6_host, "lo", &format!("{VIA6_HOST_V6}/128"))
}

/// `ping -4` and `ping -6` from via6's host address to BIRD's: the
/// request follows via6's route, the reply BIRD's.
pub fn pings_cross(lab: &Lab, p: &Pair) -> Result<()> {
    crate::dataplane::wait_ping(lab, &p.via6_host, VIA6_HOST_V4, BIRD_HOST_V4)?;
    crate::dataplane::wait_ping(lab, &p.via6_host, VIA6_HOST_V6, BIRD_HOST_V6)
}
