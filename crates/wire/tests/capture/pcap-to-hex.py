#!/usr/bin/env python3
"""Turns a tcpdump capture of one BGP session (Ethernet, IPv6, TCP) into
one hex line per BGP message: "<dir> <hex>", dir "a>b" for messages sent
by address A (argv[2]) and "b>a" for the other way. TCP segments are put
in sequence order per direction and retransmissions dropped."""
import ipaddress
import struct
import sys


def segments(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        sys.exit(f"unsupported link type {linktype}")
    pos = 24
    while pos + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[pos:pos + 16])
        frame = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        if struct.unpack("!H", frame[12:14])[0] != 0x86DD:
            continue
        ip6 = frame[14:]
        if ip6[6] != 6:  # next header TCP, no extension headers expected
            continue
        src = ipaddress.IPv6Address(ip6[8:24])
        payload_len = struct.unpack("!H", ip6[4:6])[0]
        tcp = ip6[40:40 + payload_len]
        seq = struct.unpack("!I", tcp[4:8])[0]
        off = (tcp[12] >> 4) * 4
        body = tcp[off:]
        if body:
            yield src, seq, body


def main():
    pcap, a = sys.argv[1], ipaddress.IPv6Address(sys.argv[2])
    streams = {}
    for src, seq, body in segments(pcap):
        streams.setdefault(src, {}).setdefault(seq, body)
    out = []
    for src, segs in streams.items():
        stream = b"".join(segs[s] for s in sorted(segs))
        d = "a>b" if src == a else "b>a"
        pos = 0
        while pos + 19 <= len(stream):
            length = struct.unpack("!H", stream[pos + 16:pos + 18])[0]
            out.append((d, stream[pos:pos + length]))
            pos += length
    for d, m in out:
        print(d, m.hex())


main()
