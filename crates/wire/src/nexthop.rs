//! Next-hop shapes: between the bytes of MP_REACH_NLRI (RFC 4760 §3,
//! RFC 2545 §3, RFC 8950 §3) and the normalised [`NextHop`].

use std::net::Ipv6Addr;

use crate::types::{Ipv6NextHop, LinkLocalForm, MpNextHop, NextHop};

impl MpNextHop {
    /// The protocol-level next hop, whatever wire shape carried it.
    ///
    /// `[::, LL]` (BIRD), `[LL]` (GoBGP) and `[LL, LL]` (FRR) all become
    /// `{global: None, link_local: LL}`; `[G]` becomes `{G, None}` and
    /// `[G, LL]` stays `{G, LL}`. `::` is never kept as an address: it
    /// means "no address" and must never reach the FIB.
    pub fn normalize(&self) -> NextHop {
        match *self {
            MpNextHop::V4(a) => NextHop::V4(a),
            MpNextHop::V6(a) => NextHop::V6(classify_one(a)),
            MpNextHop::V6Pair(first, second) => {
                let mut nh = classify_one(first);
                if second.is_unicast_link_local() {
                    // RFC 2545 §3: the second address is the link-local one.
                    nh.link_local = Some(second);
                } else if !second.is_unspecified() && nh.global.is_none() {
                    // A non-link-local second address with no usable first
                    // one is still an address the peer can be reached at.
                    nh.global = Some(second);
                }
                NextHop::V6(nh)
            }
        }
    }

    /// Lays out an IPv6 next hop for sending. With both halves this is
    /// `[G, LL]` (RFC 2545 §3); with only a global address `[G]`; with only
    /// a link-local address the shape `form` picks (`[::, LL]` by default,
    /// BIRD's form). An empty next hop becomes `[::]`, which the encoder of
    /// announcements refuses.
    pub fn from_ipv6(nh: Ipv6NextHop, form: LinkLocalForm) -> MpNextHop {
        match (nh.global, nh.link_local) {
            (Some(g), Some(ll)) => MpNextHop::V6Pair(g, ll),
            (Some(g), None) => MpNextHop::V6(g),
            (None, Some(ll)) => match form {
                LinkLocalForm::Native => MpNextHop::V6Pair(Ipv6Addr::UNSPECIFIED, ll),
                LinkLocalForm::Single => MpNextHop::V6(ll),
                LinkLocalForm::Double => MpNextHop::V6Pair(ll, ll),
            },
            (None, None) => MpNextHop::V6(Ipv6Addr::UNSPECIFIED),
        }
    }

    /// Bytes of the Network Address of Next Hop field.
    pub fn wire_len(&self) -> usize {
        match self {
            MpNextHop::V4(_) => 4,
            MpNextHop::V6(_) => 16,
            MpNextHop::V6Pair(..) => 32,
        }
    }

    pub(crate) fn put(&self, out: &mut Vec<u8>) {
        match self {
            MpNextHop::V4(a) => out.extend_from_slice(&a.octets()),
            MpNextHop::V6(a) => out.extend_from_slice(&a.octets()),
            MpNextHop::V6Pair(a, b) => {
                out.extend_from_slice(&a.octets());
                out.extend_from_slice(&b.octets());
            }
        }
    }
}

fn classify_one(a: Ipv6Addr) -> Ipv6NextHop {
    if a.is_unspecified() {
        Ipv6NextHop {
            global: None,
            link_local: None,
        }
    } else if a.is_unicast_link_local() {
        Ipv6NextHop {
            global: None,
            link_local: Some(a),
        }
    } else {
        Ipv6NextHop {
            global: Some(a),
            link_local: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }
    fn nh(g: Option<&str>, ll: Option<&str>) -> NextHop {
        NextHop::V6(Ipv6NextHop {
            global: g.map(a),
            link_local: ll.map(a),
        })
    }

    #[test]
    fn normalize_all_shapes() {
        let ll = a("fe80::1");
        let g = a("2001:db8::1");
        assert_eq!(
            MpNextHop::V6Pair(Ipv6Addr::UNSPECIFIED, ll).normalize(),
            nh(None, Some("fe80::1"))
        );
        assert_eq!(MpNextHop::V6(ll).normalize(), nh(None, Some("fe80::1")));
        assert_eq!(
            MpNextHop::V6Pair(ll, ll).normalize(),
            nh(None, Some("fe80::1"))
        );
        assert_eq!(MpNextHop::V6(g).normalize(), nh(Some("2001:db8::1"), None));
        assert_eq!(
            MpNextHop::V6Pair(g, ll).normalize(),
            nh(Some("2001:db8::1"), Some("fe80::1"))
        );
        assert_eq!(
            MpNextHop::V6Pair(g, Ipv6Addr::UNSPECIFIED).normalize(),
            nh(Some("2001:db8::1"), None)
        );
        assert_eq!(
            MpNextHop::V6(Ipv6Addr::UNSPECIFIED).normalize(),
            nh(None, None)
        );
        assert_eq!(
            MpNextHop::V4("192.0.2.1".parse().unwrap()).normalize(),
            NextHop::V4("192.0.2.1".parse().unwrap())
        );
    }

    #[test]
    fn from_ipv6_forms() {
        let ll = a("fe80::2");
        let only_ll = Ipv6NextHop {
            global: None,
            link_local: Some(ll),
        };
        assert_eq!(
            MpNextHop::from_ipv6(only_ll, LinkLocalForm::Native),
            MpNextHop::V6Pair(Ipv6Addr::UNSPECIFIED, ll)
        );
        assert_eq!(
            MpNextHop::from_ipv6(only_ll, LinkLocalForm::Single),
            MpNextHop::V6(ll)
        );
        assert_eq!(
            MpNextHop::from_ipv6(only_ll, LinkLocalForm::Double),
            MpNextHop::V6Pair(ll, ll)
        );
        let both = Ipv6NextHop {
            global: Some(a("2001:db8::2")),
            link_local: Some(ll),
        };
        assert_eq!(
            MpNextHop::from_ipv6(both, LinkLocalForm::Single),
            MpNextHop::V6Pair(a("2001:db8::2"), ll)
        );
        for form in [
            LinkLocalForm::Native,
            LinkLocalForm::Single,
            LinkLocalForm::Double,
        ] {
            assert_eq!(
                MpNextHop::from_ipv6(only_ll, form).normalize(),
                NextHop::V6(only_ll)
            );
        }
    }
}
