//! Scenario 14: policy. via6's import prefix-list keeps part of BIRD's
//! routes out of its RIB's best paths and the kernel; its export policy
//! restricts what BIRD sees.

use interop::check::{
    bird_route_absent, bird_route_has, kernel_route_absent, kernel_route_has, via6_fib_count,
    via6_has,
};
use interop::{holds_for, scenario};

/// How long an absence must last after the positive barrier.
const STAY: std::time::Duration = std::time::Duration::from_secs(3);
use interop::topo::{self, default_bird, default_via6, T};

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
        let p = topo::pair(lab, &b, &v)?;

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
        // BIRD sent 10.9.0.0/24 in the same burst; import policy rejects it.
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
        Ok(())
    });
}
