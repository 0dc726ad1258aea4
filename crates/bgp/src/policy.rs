//! Import and export policy evaluation.
//!
//! A policy decides per route whether it passes and may change LOCAL_PREF,
//! MED and communities. Without a configured policy an eBGP session passes
//! nothing in either direction (RFC 8212 §3); iBGP passes everything.

use std::collections::BTreeMap;

use ipnet::IpNet;

use crate::attrs::Attrs;
use crate::config::{Policy, PolicyAction, PolicyMatch, PolicyRef, PolicySet, PrefixMatch};

/// Which way a route crosses the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Import,
    Export,
}

/// The outcome of evaluating one route.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict<'a> {
    /// Pass, changed by the matching term's `set` when there is one.
    /// `term` identifies that term so results can be cached per route
    /// group.
    Accept {
        term: Option<usize>,
        set: Option<&'a PolicySet>,
    },
    Reject(RejectReason),
}

/// Why a policy turned a route away (shown by `via6ctl routes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// eBGP neighbour without a configured policy (RFC 8212).
    NoPolicyEbgp,
    DenyAll,
    /// `originated` lets only our own prefixes out.
    NotOriginated,
    /// A named policy: a reject term matched, or no term matched.
    Named,
    /// The named policy does not exist.
    UnknownPolicy,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::NoPolicyEbgp => "eBGP neighbour without policy (RFC 8212 default deny)",
            RejectReason::DenyAll => "policy deny-all",
            RejectReason::NotOriginated => "policy originated: not our prefix",
            RejectReason::Named => "rejected by named policy",
            RejectReason::UnknownPolicy => "named policy not found",
        }
    }
}

/// Evaluates `policy` for one route. `originated` tells whether the route
/// is one of our own prefixes.
pub fn evaluate<'a>(
    policy: &PolicyRef,
    policies: &'a BTreeMap<String, Policy>,
    direction: Direction,
    ebgp: bool,
    prefix: IpNet,
    attrs: Option<&Attrs>,
    originated: bool,
) -> Verdict<'a> {
    let plain = Verdict::Accept {
        term: None,
        set: None,
    };
    match policy {
        PolicyRef::Default if ebgp => Verdict::Reject(RejectReason::NoPolicyEbgp),
        PolicyRef::Default | PolicyRef::AcceptAll => plain,
        PolicyRef::DenyAll => Verdict::Reject(RejectReason::DenyAll),
        PolicyRef::Originated => {
            if originated && direction == Direction::Export {
                plain
            } else {
                Verdict::Reject(RejectReason::NotOriginated)
            }
        }
        PolicyRef::Named(name) => match policies.get(name) {
            None => Verdict::Reject(RejectReason::UnknownPolicy),
            Some(p) => {
                for (i, term) in p.terms.iter().enumerate() {
                    if matches(&term.matches, prefix, attrs) {
                        return match term.action {
                            PolicyAction::Accept => Verdict::Accept {
                                term: Some(i),
                                set: Some(&term.set).filter(|s| !is_empty_set(s)),
                            },
                            PolicyAction::Reject => Verdict::Reject(RejectReason::Named),
                        };
                    }
                }
                Verdict::Reject(RejectReason::Named)
            }
        },
    }
}

fn is_empty_set(s: &PolicySet) -> bool {
    s.local_pref.is_none() && s.med.is_none() && s.add_communities.is_empty()
}

/// All present conditions hold. A route without attributes (one of our
/// own) has an empty AS path and no communities.
fn matches(m: &PolicyMatch, prefix: IpNet, attrs: Option<&Attrs>) -> bool {
    if !m.prefixes.is_empty() && !m.prefixes.iter().any(|pm| prefix_matches(pm, prefix)) {
        return false;
    }
    if let Some(asn) = m.as_path_contains {
        if !attrs.is_some_and(|a| a.as_path_contains(asn)) {
            return false;
        }
    }
    if let Some(c) = m.community {
        if !attrs.is_some_and(|a| a.communities().contains(&c)) {
            return false;
        }
    }
    true
}

/// `prefix` lies inside `pm.prefix` with a length in `ge..=le`; without
/// `ge` and `le` only the exact prefix matches.
pub fn prefix_matches(pm: &PrefixMatch, prefix: IpNet) -> bool {
    let outer = pm.prefix.trunc();
    let len = prefix.prefix_len();
    let (lo, hi) = if pm.ge.is_none() && pm.le.is_none() {
        (outer.prefix_len(), outer.prefix_len())
    } else {
        (
            pm.ge.unwrap_or(outer.prefix_len()),
            pm.le.unwrap_or(outer.max_prefix_len()),
        )
    };
    let same_family = matches!(
        (outer, prefix),
        (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))
    );
    same_family && len >= lo && len <= hi && outer.contains(&prefix.trunc())
}

/// Applies a term's `set` to a copy of the attributes.
pub fn apply_set(set: &PolicySet, attrs: &Attrs) -> Attrs {
    let mut a = if set.add_communities.is_empty() {
        attrs.clone()
    } else {
        let mut c = attrs.communities().to_vec();
        c.extend_from_slice(&set.add_communities);
        attrs.with_communities(&c)
    };
    if let Some(lp) = set.local_pref {
        a.set_local_pref(Some(lp));
    }
    if let Some(med) = set.med {
        a.set_med(Some(med));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::encode_path;
    use crate::config::PolicyTerm;
    use crate::store::Id;
    use wire::{AsPath, AsSegment, Origin};

    fn attrs(path: &[u32], communities: &[u32]) -> Attrs {
        Attrs::new(
            Id(0),
            Origin::Igp,
            None,
            None,
            &encode_path(&AsPath {
                segments: vec![AsSegment::Sequence(path.to_vec())],
            }),
            communities,
            None,
        )
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn pm(p: &str, ge: Option<u8>, le: Option<u8>) -> PrefixMatch {
        PrefixMatch {
            prefix: net(p),
            ge,
            le,
        }
    }

    #[test]
    fn prefix_list_exact_ge_le() {
        let exact = pm("10.0.0.0/8", None, None);
        assert!(prefix_matches(&exact, net("10.0.0.0/8")));
        assert!(!prefix_matches(&exact, net("10.1.0.0/16")));
        let range = pm("10.0.0.0/8", Some(16), Some(24));
        assert!(!prefix_matches(&range, net("10.0.0.0/8")));
        assert!(prefix_matches(&range, net("10.1.0.0/16")));
        assert!(prefix_matches(&range, net("10.1.2.0/24")));
        assert!(!prefix_matches(&range, net("10.1.2.128/25")));
        assert!(!prefix_matches(&range, net("11.1.0.0/16")));
        let le_only = pm("10.0.0.0/8", None, Some(9));
        assert!(prefix_matches(&le_only, net("10.0.0.0/8")));
        assert!(prefix_matches(&le_only, net("10.128.0.0/9")));
        let ge_only = pm("2001:db8::/32", Some(48), None);
        assert!(prefix_matches(&ge_only, net("2001:db8:1::/48")));
        assert!(prefix_matches(&ge_only, net("2001:db8:1::1/128")));
        assert!(!prefix_matches(&ge_only, net("10.0.0.0/8")));
    }

    #[test]
    fn defaults_follow_rfc8212() {
        let p = BTreeMap::new();
        let a = attrs(&[65001], &[]);
        let v = |r: &PolicyRef, ebgp| {
            evaluate(
                r,
                &p,
                Direction::Import,
                ebgp,
                net("10.0.0.0/8"),
                Some(&a),
                false,
            )
        };
        assert_eq!(
            v(&PolicyRef::Default, true),
            Verdict::Reject(RejectReason::NoPolicyEbgp)
        );
        assert!(matches!(
            v(&PolicyRef::Default, false),
            Verdict::Accept { .. }
        ));
        assert!(matches!(
            v(&PolicyRef::AcceptAll, true),
            Verdict::Accept { .. }
        ));
        assert_eq!(
            v(&PolicyRef::DenyAll, false),
            Verdict::Reject(RejectReason::DenyAll)
        );
        assert_eq!(
            v(&PolicyRef::Named("nope".into()), false),
            Verdict::Reject(RejectReason::UnknownPolicy)
        );
        // `originated` on export passes only our own prefixes.
        let o = |orig| {
            evaluate(
                &PolicyRef::Originated,
                &p,
                Direction::Export,
                true,
                net("10.0.0.0/8"),
                None,
                orig,
            )
        };
        assert!(matches!(o(true), Verdict::Accept { .. }));
        assert_eq!(o(false), Verdict::Reject(RejectReason::NotOriginated));
    }

    #[test]
    fn named_policy_terms_in_order_with_set() {
        let mut policies = BTreeMap::new();
        policies.insert(
            "in".to_string(),
            Policy {
                terms: vec![
                    PolicyTerm {
                        matches: PolicyMatch {
                            community: Some(0xFFFF_0001),
                            ..Default::default()
                        },
                        action: PolicyAction::Reject,
                        set: PolicySet::default(),
                    },
                    PolicyTerm {
                        matches: PolicyMatch {
                            prefixes: vec![pm("10.0.0.0/8", None, Some(24))],
                            as_path_contains: Some(65010),
                            community: None,
                        },
                        action: PolicyAction::Accept,
                        set: PolicySet {
                            local_pref: Some(200),
                            med: Some(5),
                            add_communities: vec![7],
                        },
                    },
                ],
            },
        );
        let r = PolicyRef::Named("in".into());
        let eval = |prefix: &str, a: &Attrs| {
            evaluate(
                &r,
                &policies,
                Direction::Import,
                true,
                net(prefix),
                Some(a),
                false,
            )
        };
        let good = attrs(&[65001, 65010], &[9]);
        match eval("10.1.0.0/16", &good) {
            Verdict::Accept {
                term: Some(1),
                set: Some(set),
            } => {
                let out = apply_set(set, &good);
                assert_eq!(out.local_pref(), Some(200));
                assert_eq!(out.med(), Some(5));
                assert_eq!(out.communities(), &[7, 9]);
            }
            other => panic!("unexpected {other:?}"),
        }
        // Community match rejects first.
        assert_eq!(
            eval("10.1.0.0/16", &attrs(&[65010], &[0xFFFF_0001])),
            Verdict::Reject(RejectReason::Named)
        );
        // No term matches: AS not in path, or prefix too long.
        assert_eq!(
            eval("10.1.0.0/16", &attrs(&[65001], &[])),
            Verdict::Reject(RejectReason::Named)
        );
        assert_eq!(
            eval("10.1.1.0/25", &good),
            Verdict::Reject(RejectReason::Named)
        );
    }
}
