#!/usr/bin/env bash
# Captures a BIRD 2 <-> BIRD 2 BGP session with RFC 8950 extended next hop
# over a link-local-only veth pair between two network namespaces, and
# writes every BGP message as one hex line to OUT (default:
# crates/wire/tests/data/bird-enh.hex).
#
# Line format: "<dir> <hex>", dir = "a>b" (AS 4200000001 to AS 65002) or
# "b>a". Needs root, bird (2.0.x), tcpdump, python3.
#
# MODE "global" adds 2001:db8:ff::a/64 and ::b/64 to the link and peers
# over them, so next hops are [global, link-local] (default OUT:
# bird-enh-global.hex).
#
#   sudo crates/wire/tests/capture/capture-bird.sh [OUT] [link-local|global]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
mode="${2:-link-local}"
case "$mode" in
    link-local) out="${1:-$here/../data/bird-enh.hex}"; peer_a="fe80::b%vetha"; peer_b="fe80::a%vethb" ;;
    global) out="${1:-$here/../data/bird-enh-global.hex}"; peer_a="2001:db8:ff::b"; peer_b="2001:db8:ff::a" ;;
    *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
for tool in bird birdc tcpdump python3 ip; do
    command -v "$tool" >/dev/null || { echo "missing prerequisite: $tool" >&2; exit 1; }
done

id="v6c$$"
nsa="${id}a"; nsb="${id}b"
work="$(mktemp -d "/tmp/${id}.XXXX")"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.3
    ip netns del "$nsa" 2>/dev/null || true
    ip netns del "$nsb" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$nsa"
ip netns add "$nsb"
ip link add vetha netns "$nsa" type veth peer name vethb netns "$nsb"
for side in a b; do
    ns="${id}${side}"
    ip -n "$ns" link set lo up
    # No automatic link-local address: only the one we set, so the next
    # hop BIRD sends is known.
    ip -n "$ns" link set "veth$side" addrgenmode none
    ip -n "$ns" link set "veth$side" up
done
ip -n "$nsa" addr add fe80::a/64 dev vetha nodad
ip -n "$nsb" addr add fe80::b/64 dev vethb nodad
if [ "$mode" = global ]; then
    ip -n "$nsa" addr add 2001:db8:ff::a/64 dev vetha nodad
    ip -n "$nsb" addr add 2001:db8:ff::b/64 dev vethb nodad
fi

cat >"$work/a.conf" <<CONF
router id 10.255.0.1;
protocol device { scan time 1; }
protocol static s4 {
    ipv4;
    route 198.51.100.0/24 blackhole;
    route 203.0.113.0/25 blackhole;
    route 203.0.113.128/26 blackhole;
    route 10.20.0.0/16 blackhole;
    route 100.64.1.0/24 blackhole { bgp_med = 50; };
}
protocol static s4w { ipv4; route 192.0.2.64/27 blackhole; route 192.0.2.96/27 blackhole; }
protocol static s6 {
    ipv6;
    route 2001:db8:100::/48 blackhole;
    route 2001:db8:200::/40 blackhole;
}
protocol static s6w { ipv6; route 2001:db8:300::/48 blackhole; }
protocol bgp peer {
    local as 4200000001;
    neighbor $peer_a as 65002;
    interface "vetha";
    connect delay time 1;
    connect retry time 1;
    ipv4 {
        import all;
        export filter {
            bgp_community.add((65001, 100));
            bgp_large_community.add((4200000001, 1, 2));
            accept;
        };
        extended next hop on;
    };
    ipv6 { import all; export all; };
}
CONF
cat >"$work/b.conf" <<CONF
router id 10.255.0.2;
protocol device { scan time 1; }
protocol static s4 { ipv4; route 172.16.8.0/22 blackhole; route 172.16.12.0/24 blackhole; }
protocol static s6 { ipv6; route 2001:db8:b::/48 blackhole; }
protocol bgp peer {
    local as 65002;
    neighbor $peer_b as 4200000001;
    interface "vethb";
    connect delay time 1;
    connect retry time 1;
    ipv4 { import all; export all; extended next hop on; };
    ipv6 { import all; export all; };
}
CONF

ip netns exec "$nsa" tcpdump -i vetha -U -s 0 -w "$work/bgp.pcap" tcp port 179 2>"$work/tcpdump.log" &
pids+=($!)
sleep 1
ip netns exec "$nsa" bird -f -c "$work/a.conf" -s "$work/a.ctl" -P "$work/a.pid" &
pids+=($!)
ip netns exec "$nsb" bird -f -c "$work/b.conf" -s "$work/b.ctl" -P "$work/b.pid" &
pids+=($!)

established=""
for _ in $(seq 1 60); do
    if birdc -s "$work/a.ctl" show protocols peer 2>/dev/null | grep -q Established; then
        established=yes; break
    fi
    sleep 0.5
done
[ -n "$established" ] || { echo "BGP session did not come up" >&2; birdc -s "$work/a.ctl" show protocols all peer >&2 || true; exit 1; }
sleep 3
# Withdrawals, IPv4 and IPv6.
birdc -s "$work/a.ctl" disable s4w >/dev/null
birdc -s "$work/a.ctl" disable s6w >/dev/null
sleep 2
# Administrative shutdown: NOTIFICATION Cease.
birdc -s "$work/a.ctl" disable peer >/dev/null
sleep 2
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true

if [ "$mode" = global ]; then a_addr=2001:db8:ff::a; else a_addr=fe80::a; fi
python3 "$here/pcap-to-hex.py" "$work/bgp.pcap" "$a_addr" >"$out"
echo "wrote $(wc -l <"$out") messages to $out"
