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
    let c = parse_str(GOOD).expect("the README example must load");
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
fn graceful_restart_keys() {
    let c = parse_str(GOOD).unwrap();
    let d = c.speaker.neighbors[0].graceful_restart;
    assert!(d.enabled, "on by default, as in BIRD, FRR and GoBGP");
    assert_eq!(d.restart_time, 120);
    let text = GOOD.replace(
        "    remote-as: 65001\n",
        "    remote-as: 65001\n    graceful-restart: false\n    restart-time: 30\n",
    );
    let n = parse_str(&text).unwrap().speaker.neighbors[0].graceful_restart;
    assert!(!n.enabled);
    assert_eq!(n.restart_time, 30);
    assert_eq!(d.long_lived_stale_time, 0, "long-lived off by default");
    let llgr = GOOD.replace(
        "    remote-as: 65001\n",
        "    remote-as: 65001\n    long-lived-stale-time: 86400\n",
    );
    let n = parse_str(&llgr).unwrap().speaker.neighbors[0].graceful_restart;
    assert_eq!(n.long_lived_stale_time, 86400);
    let e = parse_str(&llgr.replace("86400", "16777216"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("long-lived-stale-time"), "{e}");
    let bad = GOOD.replace(
        "    remote-as: 65001\n",
        "    remote-as: 65001\n    restart-time: 4096\n",
    );
    let e = parse_str(&bad).unwrap_err().to_string();
    assert!(e.contains("restart-time") && e.contains("1..=4095"), "{e}");
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

#[test]
fn listening_is_on_by_default_and_none_turns_it_off() {
    let no_listen = GOOD.replace("listen: { address: \"::\", port: 179 }\n", "");
    let c = parse_str(&no_listen).unwrap();
    assert_eq!(c.speaker.listen, Some(DEFAULT_LISTEN));
    assert_eq!(DEFAULT_LISTEN.to_string(), "[::]:179");
    let off = GOOD.replace("listen: { address: \"::\", port: 179 }", "listen: none");
    assert_eq!(parse_str(&off).unwrap().speaker.listen, None);
    let port = GOOD.replace("port: 179 }", "port: 1179 }");
    assert_eq!(
        parse_str(&port).unwrap().speaker.listen,
        Some("[::]:1179".parse().unwrap())
    );
    let alone = "router-id: 192.0.2.2\nasn: 65002\n";
    assert_eq!(parse_str(alone).unwrap().speaker.listen, None);
    let e = parse_str(&GOOD.replace("port: 179 }", "port: 70000 }"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("test.yaml:3:"), "{e}");
    let e = parse_str(&off.replace("listen: none", "listen: nothing"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("test.yaml:3:") && e.contains("none or"),
        "{e}"
    );
}

#[test]
fn a_passive_neighbor_nobody_listens_for_is_refused() {
    let text = GOOD
        .replace("listen: { address: \"::\", port: 179 }", "listen: none")
        .replace("passive: false", "passive: true");
    let e = parse_str(&text).unwrap_err().to_string();
    assert!(
        e.starts_with("test.yaml:11: neighbors[1].passive: passive neighbor 2001:db8::1 can never connect: `listen: none`"),
        "{e}"
    );
    // Without `listen:` the default listener takes it.
    let default = text.replace("listen: none\n", "");
    assert!(parse_str(&default).is_ok());
    // A listener of the other family cannot take it either.
    let v4 = text.replace("listen: none", "listen: { address: 192.0.2.2 }");
    let e = parse_str(&v4).unwrap_err().to_string();
    assert!(
        e.contains("neighbors[1].passive") && e.contains("192.0.2.2 cannot accept"),
        "{e}"
    );
    let mapped = v4.replace("address: 192.0.2.2", "address: \"2001:db8::2\"");
    assert!(parse_str(&mapped).is_ok());
}

#[test]
fn neighbor_keys_are_found_in_their_own_entry() {
    use super::locate::neighbor_key_line;
    assert_eq!(neighbor_key_line(GOOD, 0, ""), Some(5));
    assert_eq!(neighbor_key_line(GOOD, 1, ""), Some(7));
    assert_eq!(neighbor_key_line(GOOD, 1, "remote-as"), Some(8));
    assert_eq!(neighbor_key_line(GOOD, 0, "passive"), None);
    assert_eq!(neighbor_key_line(GOOD, 2, ""), None);
}

#[test]
fn interface_peering_without_listening_warns() {
    let off = format!("{FABRIC}listen: none\n");
    let w = parse_str(&off).unwrap().warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("interface peering with `listen: none`"),
        "{w:?}"
    );
    assert!(parse_str(FABRIC).unwrap().warnings.is_empty());
}
