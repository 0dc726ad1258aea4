//! Scenario 14: policy. via6's import prefix-list keeps part of BIRD's
//! routes out of its RIB's best paths and the kernel; its export policy
//! restricts what BIRD sees.

use interop::check::{
    bird_counter_column, bird_route_absent, bird_route_has, kernel_route_absent, kernel_route_has,
    via6_fib_count, via6_has,
};
use interop::dataplane::{ping_once, wait_ping};
use interop::{holds_for, scenario, Error};

/// How long an absence must last after the positive barrier.
const STAY: std::time::Duration = std::time::Duration::from_secs(3);
use interop::topo::{self, default_bird, default_via6, PEER, T};

/// On BIRD's host, inside the prefix via6's import policy rejects.
const REJECTED_HOST: &str = "10.9.0.1";

const POLICIES: &str = r#"policies:
  from-bird:
    terms:
      - match: { prefix-list: ["10.1.0.0/16 le 24", "2001:db8::/32 le 48"] }
        action: accept
  to-bird:
    terms:
      - match: { prefix-list: ["198.51.100.0/24", "2001:db8:100::/48"] }
        action: accept
"#;

#[test]
fn s14_import_and_export_policy() {
    scenario("s14-policy", |lab| {
        let mut b = default_bird();
        b.static_v4 = vec![
            "10.1.0.0/24".into(),
            "10.1.1.0/24".into(),
            "10.9.0.0/24".into(),
        ];
        let mut v = default_via6();
        v.originate_v4 = vec![topo::VIA6_V4.into(), "203.0.113.0/24".into()];
        if let Some(n) = v.neighbors.first_mut() {
            n.import = Some("from-bird".into());
            n.export = Some("to-bird".into());
        }
        v.extra = POLICIES.into();
        let p = topo::pair_with(lab, &b, &v, |lab, bh, vh| {
            topo::host_addresses(lab, bh, vh)?;
            lab.add_addr(bh, "lo", &format!("{REJECTED_HOST}/32"))
        })?;

        lab.wait_until(
            T,
            "via6 kernel: 10.1.0.0/24 and 10.1.1.0/24 (import accepted)",
            || {
                Ok(kernel_route_has(
                    lab,
                    &p.via6_host,
                    "10.1.0.0/24",
                    &["via inet6 fe80::1 dev eth0"],
                )? && kernel_route_has(
                    lab,
                    &p.via6_host,
                    "10.1.1.0/24",
                    &["via inet6 fe80::1 dev eth0"],
                )?)
            },
        )?;
        // BIRD sent 10.9.0.0/24 in the same burst (its ipv4 channel counts
        // all three statics as exported); import policy rejects it.
        let exported = bird_counter_column(&p.bird, PEER, "ipv4", "Export updates", "accepted")?;
        if exported < 3 {
            return Err(Error::Check(format!(
                "BIRD exported {exported} IPv4 routes to via6, want 3 (10.9.0.0/24 among them)"
            )));
        }
        holds_for(
            STAY,
            "10.9.0.0/24 stays out of via6's kernel and FIB",
            || {
                Ok(kernel_route_absent(lab, &p.via6_host, "10.9.0.0/24")?
                    && via6_fib_count(&p.via6, 3)?)
            },
        )?;

        lab.wait_until(
            T,
            "BIRD: 198.51.100.0/24 from via6 (export accepted)",
            || bird_route_has(&p.bird, topo::VIA6_V4, &["via fe80::2 on eth0"]),
        )?;
        // via6 has 203.0.113.0/24 (it originates it) but its export policy
        // keeps it from BIRD.
        via6_has(&p.via6, "routes", "203.0.113.0/24", &[])?;
        holds_for(STAY, "203.0.113.0/24 stays out of BIRD", || {
            bird_route_absent(&p.bird, "203.0.113.0/24")
        })?;
        // Data plane: traffic follows the accepted routes only (the
        // rejected prefix has no route in via6's kernel: ping fails at once).
        wait_ping(lab, &p.via6_host, topo::VIA6_HOST_V4, topo::BIRD_HOST_V4)?;
        if ping_once(lab, &p.via6_host, topo::VIA6_HOST_V4, REJECTED_HOST).is_ok() {
            return Err(Error::Check(format!(
                "{REJECTED_HOST} answers although 10.9.0.0/24 was rejected on import"
            )));
        }
        Ok(())
    });
}
