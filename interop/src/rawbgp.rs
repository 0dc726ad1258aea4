//! A tiny raw BGP speaker for scenarios that need bytes no real
//! implementation sends (RFC 7606 malformed attributes). Messages are built
//! by hand from RFC 4271 §4, RFC 4760 §3 and RFC 8950 §3; the socket is
//! opened inside a lab host's network namespace.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddrV6, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, Result};

/// RFC 4271 §4.1 message types.
pub const OPEN: u8 = 1;
pub const UPDATE: u8 = 2;
pub const NOTIFICATION: u8 = 3;
pub const KEEPALIVE: u8 = 4;

/// Path attribute flags (RFC 4271 §4.3).
pub const OPTIONAL: u8 = 0x80;
pub const TRANSITIVE: u8 = 0x40;
const EXTENDED_LENGTH: u8 = 0x10;

/// RFC 6793 §9: the 2-octet stand-in for a 4-octet AS.
const AS_TRANS: u16 = 23456;

/// A whole message: marker, length, type, body (RFC 4271 §4.1).
pub fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = 19 + body.len();
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&(len as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

/// One capability TLV (RFC 5492 §4).
pub fn capability(code: u8, value: &[u8]) -> Vec<u8> {
    let mut c = vec![code, value.len() as u8];
    c.extend_from_slice(value);
    c
}

/// Capabilities of a dual-stack speaker with RFC 8950 for IPv4 unicast:
/// MP IPv4 and IPv6 unicast (1), route refresh (2), extended next hop (5)
/// with the triple (AFI 1, SAFI 1, next-hop AFI 2), 4-octet AS (65).
pub fn default_capabilities(asn: u32) -> Vec<u8> {
    let mut caps = Vec::new();
    caps.extend(capability(1, &[0, 1, 0, 1]));
    caps.extend(capability(1, &[0, 2, 0, 1]));
    caps.extend(capability(2, &[]));
    caps.extend(capability(5, &[0, 1, 0, 1, 0, 2]));
    caps.extend(capability(65, &asn.to_be_bytes()));
    caps
}

/// OPEN (RFC 4271 §4.2) with all capabilities in one optional parameter.
pub fn open(asn: u32, hold: u16, router_id: Ipv4Addr, caps: &[u8]) -> Vec<u8> {
    let my_as = u16::try_from(asn).unwrap_or(AS_TRANS);
    let mut b = vec![4];
    b.extend_from_slice(&my_as.to_be_bytes());
    b.extend_from_slice(&hold.to_be_bytes());
    b.extend_from_slice(&router_id.octets());
    b.push((caps.len() + 2) as u8);
    b.push(2);
    b.push(caps.len() as u8);
    b.extend_from_slice(caps);
    message(OPEN, &b)
}

/// KEEPALIVE: header only.
pub fn keepalive() -> Vec<u8> {
    message(KEEPALIVE, &[])
}

/// One path attribute; the extended-length flag is set when needed.
pub fn attribute(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    let mut a = Vec::new();
    if value.len() > 255 {
        a.push(flags | EXTENDED_LENGTH);
        a.push(code);
        a.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        a.push(flags);
        a.push(code);
        a.push(value.len() as u8);
    }
    a.extend_from_slice(value);
    a
}

/// ORIGIN IGP and an AS_SEQUENCE of 4-octet ASes.
pub fn base_attributes(as_path: &[u32]) -> Vec<u8> {
    let mut a = attribute(TRANSITIVE, 1, &[0]);
    let mut seg = vec![2, as_path.len() as u8];
    for asn in as_path {
        seg.extend_from_slice(&asn.to_be_bytes());
    }
    a.extend(attribute(TRANSITIVE, 2, &seg));
    a
}

/// Prefix in NLRI encoding: length, then the significant octets.
pub fn nlri_v4(prefix: Ipv4Addr, len: u8) -> Vec<u8> {
    let n = usize::from(len.min(32)).div_ceil(8);
    let mut v = vec![len];
    v.extend_from_slice(prefix.octets().get(..n).unwrap_or(&[]));
    v
}

/// MP_REACH_NLRI (RFC 4760 §3) for IPv4 unicast with a 32-byte IPv6 next
/// hop `[global, link_local]` (RFC 8950 §3; BIRD's `[::, LL]`).
pub fn mp_reach_v4(global: Ipv6Addr, link_local: Ipv6Addr, prefixes: &[(Ipv4Addr, u8)]) -> Vec<u8> {
    let mut v = vec![0, 1, 1, 32];
    v.extend_from_slice(&global.octets());
    v.extend_from_slice(&link_local.octets());
    v.push(0);
    for (p, l) in prefixes {
        v.extend(nlri_v4(*p, *l));
    }
    attribute(OPTIONAL, 14, &v)
}

/// UPDATE with no classic withdrawn routes or NLRI: everything in `attrs`.
pub fn update(attrs: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0];
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(attrs);
    message(UPDATE, &b)
}

/// What the peer sent so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    /// Body of the peer's OPEN.
    pub open: Option<Vec<u8>>,
    pub keepalives: u64,
    pub updates: u64,
    /// (code, subcode, data) of a NOTIFICATION.
    pub notification: Option<(u8, u8, Vec<u8>)>,
    /// The TCP connection ended (or framing broke).
    pub closed: bool,
}

/// A connected raw speaker. It answers the peer's OPEN with a KEEPALIVE
/// and sends KEEPALIVEs every `hold / 3` seconds once the OPEN arrived.
pub struct RawSpeaker {
    stream: Arc<Mutex<TcpStream>>,
    received: Arc<Mutex<Received>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Connects from inside namespace `ns` to `[peer%ifname]:port`. The
/// calling thread is not moved: a helper thread enters the namespace
/// (`setns(2)` changes only the calling thread) and opens the socket,
/// which stays in that namespace.
pub fn connect_in_netns(ns: &str, ifname: &str, peer: Ipv6Addr, port: u16) -> Result<TcpStream> {
    let ns_path = format!("/run/netns/{ns}");
    let ifname = ifname.to_string();
    let handle = std::thread::spawn(move || -> Result<TcpStream> {
        let f =
            std::fs::File::open(&ns_path).map_err(|e| Error::io(format!("open {ns_path}"), e))?;
        // SAFETY: setns(2) on a valid namespace fd affects only this thread.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(Error::io(
                format!("setns {ns_path}"),
                std::io::Error::last_os_error(),
            ));
        }
        let c = std::ffi::CString::new(ifname.clone())
            .map_err(|_| Error::Check(format!("bad interface name {ifname:?}")))?;
        // SAFETY: c is a valid NUL-terminated string.
        let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
        if index == 0 {
            return Err(Error::Check(format!("no interface {ifname} in {ns_path}")));
        }
        let addr = SocketAddrV6::new(peer, port, 0, index);
        TcpStream::connect_timeout(&addr.into(), Duration::from_secs(3))
            .map_err(|e| Error::io(format!("connect to [{peer}%{ifname}]:{port}"), e))
    });
    handle
        .join()
        .map_err(|_| Error::Check("namespace thread panicked".into()))?
}

fn read_message(s: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 19];
    s.read_exact(&mut head)?;
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    if head.get(..16) != Some(&[0xff; 16][..]) {
        return Err(bad("bad marker"));
    }
    let len = usize::from(u16::from_be_bytes([head[16], head[17]]));
    if !(19..=65535).contains(&len) {
        return Err(bad("bad length"));
    }
    let mut body = vec![0u8; len - 19];
    s.read_exact(&mut body)?;
    Ok((head[18], body))
}

impl RawSpeaker {
    /// Wraps a connected stream, sends `open_msg`, and starts the reader
    /// and keepalive threads.
    pub fn start(stream: TcpStream, open_msg: &[u8], hold: u16) -> Result<RawSpeaker> {
        let mut reader = stream
            .try_clone()
            .map_err(|e| Error::io("clone raw BGP socket", e))?;
        let stream = Arc::new(Mutex::new(stream));
        let received = Arc::new(Mutex::new(Received::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut sp = RawSpeaker {
            stream: stream.clone(),
            received: received.clone(),
            stop: stop.clone(),
            threads: Vec::new(),
        };
        sp.send(open_msg)?;
        let mut threads = Vec::new();
        {
            let (stream, received, stop) = (stream.clone(), received.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match read_message(&mut reader) {
                        Ok((OPEN, body)) => {
                            lock(&received).open = Some(body);
                            let _ = lock(&stream).write_all(&keepalive());
                        }
                        Ok((KEEPALIVE, _)) => lock(&received).keepalives += 1,
                        Ok((UPDATE, _)) => lock(&received).updates += 1,
                        Ok((NOTIFICATION, body)) => {
                            let code = body.first().copied().unwrap_or(0);
                            let sub = body.get(1).copied().unwrap_or(0);
                            let data = body.get(2..).unwrap_or(&[]).to_vec();
                            lock(&received).notification = Some((code, sub, data));
                        }
                        Ok(_) => {}
                        Err(_) => {
                            lock(&received).closed = true;
                            break;
                        }
                    }
                }
            }));
        }
        {
            let (stream, received, stop) = (stream, received, stop);
            let every = Duration::from_secs(u64::from((hold / 3).max(1)));
            threads.push(std::thread::spawn(move || {
                let tick = Duration::from_millis(100);
                let mut since = Duration::ZERO;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    since += tick;
                    let up = lock(&received).open.is_some();
                    if up && since >= every {
                        since = Duration::ZERO;
                        if lock(&stream).write_all(&keepalive()).is_err() {
                            break;
                        }
                    }
                }
            }));
        }
        sp.threads = threads;
        Ok(sp)
    }

    /// Sends raw bytes (one or more whole messages).
    pub fn send(&self, bytes: &[u8]) -> Result<()> {
        lock(&self.stream)
            .write_all(bytes)
            .map_err(|e| Error::io("send to BGP peer", e))
    }

    /// A snapshot of what the peer sent.
    pub fn received(&self) -> Received {
        lock(&self.received).clone()
    }
}

impl Drop for RawSpeaker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = lock(&self.stream).shutdown(Shutdown::Both);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_is_19_bytes_type_4() {
        let k = keepalive();
        assert_eq!(k.len(), 19);
        assert_eq!(&k[16..], &[0, 19, 4]);
    }

    #[test]
    fn open_carries_as_trans_and_capabilities() {
        let caps = default_capabilities(4_200_000_001);
        let m = open(4_200_000_001, 9, Ipv4Addr::new(10, 0, 0, 1), &caps);
        assert_eq!(m[18], OPEN);
        assert_eq!(usize::from(u16::from_be_bytes([m[16], m[17]])), m.len());
        assert_eq!(&m[19..22], &[4, 0x5b, 0xa0]); // version 4, AS_TRANS
        assert_eq!(&m[22..24], &[0, 9]);
        // Capability 5: (AFI 1, SAFI 1, next-hop AFI 2), RFC 8950 §3.
        assert!(m.windows(8).any(|w| w == [5, 6, 0, 1, 0, 1, 0, 2]));
    }

    #[test]
    fn mp_reach_v4_with_link_local_only_next_hop() {
        let a = mp_reach_v4(
            Ipv6Addr::UNSPECIFIED,
            "fe80::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED),
            &[(Ipv4Addr::new(10, 1, 0, 0), 24)],
        );
        // flags, type 14, len = 4 + 32 + 1 + 4
        assert_eq!(&a[..3], &[OPTIONAL, 14, 41]);
        assert_eq!(&a[3..7], &[0, 1, 1, 32]);
        assert_eq!(a[7 + 16], 0xfe);
        assert_eq!(&a[a.len() - 5..], &[0, 24, 10, 1, 0]);
    }

    #[test]
    fn long_attribute_uses_extended_length() {
        let a = attribute(OPTIONAL | TRANSITIVE, 99, &[0; 300]);
        assert_eq!(a[0], OPTIONAL | TRANSITIVE | EXTENDED_LENGTH);
        assert_eq!(&a[2..4], &300u16.to_be_bytes());
    }
}
