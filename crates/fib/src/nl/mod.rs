//! Minimal rtnetlink plumbing: a raw `NETLINK_ROUTE` socket, a message
//! builder that packs many requests into one buffer, and bounds-checked
//! parsers for the few replies the FIB needs.
//!
//! Messages are built by hand because the hot path is "append a ~90 byte
//! route request to a 256 KiB buffer" a million times; a typed message
//! model would allocate per route for no gain.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

mod objects;
mod route;
#[cfg(test)]
mod tests;

pub use objects::*;
pub use route::*;

// Message types (linux/rtnetlink.h).
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
pub const RTM_GETROUTE: u16 = 26;
pub const RTM_NEWNEXTHOP: u16 = 104;
pub const RTM_DELNEXTHOP: u16 = 105;
pub const RTM_GETNEXTHOP: u16 = 106;

// Header flags (linux/netlink.h).
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_REPLACE: u16 = 0x100;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
/// Set on an error message when extended-ack TLVs follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// Set on an error message when the echoed request was cut to its header.
const NLM_F_CAPPED: u16 = 0x100;
const NLMSGERR_ATTR_MSG: u16 = 1;

// Route attributes.
pub const RTA_DST: u16 = 1;
pub const RTA_OIF: u16 = 4;
pub const RTA_GATEWAY: u16 = 5;
pub const RTA_PRIORITY: u16 = 6;
pub const RTA_PREFSRC: u16 = 7;
pub const RTA_MULTIPATH: u16 = 9;
pub const RTA_TABLE: u16 = 15;
pub const RTA_VIA: u16 = 18;
pub const RTA_NH_ID: u16 = 30;

// Nexthop object attributes (linux/nexthop.h).
pub const NHA_ID: u16 = 1;
pub const NHA_GROUP: u16 = 2;
pub const NHA_GROUP_TYPE: u16 = 3;
pub const NHA_BLACKHOLE: u16 = 4;
pub const NHA_OIF: u16 = 5;
pub const NHA_GATEWAY: u16 = 6;

pub const IFA_ADDRESS: u16 = 1;
pub const IFA_LOCAL: u16 = 2;
pub const IFA_LABEL: u16 = 3;

pub const RTN_UNICAST: u8 = 1;
pub const RT_SCOPE_UNIVERSE: u8 = 0;
pub const RT_SCOPE_NOWHERE: u8 = 255;

pub const AF_INET: u8 = libc::AF_INET as u8;
pub const AF_INET6: u8 = libc::AF_INET6 as u8;

pub const RTNLGRP_LINK: u32 = 1;
pub const RTNLGRP_IPV4_IFADDR: u32 = 5;
pub const RTNLGRP_IPV4_ROUTE: u32 = 7;
pub const RTNLGRP_IPV6_ROUTE: u32 = 11;
pub const RTNLGRP_NEXTHOP: u32 = 32;

const SOL_NETLINK: libc::c_int = 270;
const NETLINK_ADD_MEMBERSHIP: libc::c_int = 1;
const NETLINK_DROP_MEMBERSHIP: libc::c_int = 2;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;
const NETLINK_GET_STRICT_CHK: libc::c_int = 12;

pub const NLMSG_HDRLEN: usize = 16;

/// Round up to the 4-byte netlink alignment.
pub fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// A raw rtnetlink socket.
pub struct NlSocket {
    fd: OwnedFd,
    seq: u32,
    req_seq: u32,
    rx: Vec<u8>,
}

const REQ_SEQ_BASE: u32 = 0x8000_0000;

fn setopt(fd: RawFd, level: libc::c_int, name: libc::c_int, val: libc::c_int) -> io::Result<()> {
    // SAFETY: passes a pointer to a live c_int and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&val as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl NlSocket {
    /// Open a socket in the calling thread's network namespace, with
    /// strict dump checking (so the kernel filters dumps by table and
    /// protocol), capped ACKs (errors echo only the header) and extended
    /// ACKs (errors carry the kernel's text).
    pub fn open(groups: &[u32], nonblocking: bool) -> io::Result<Self> {
        let mut ty = libc::SOCK_RAW | libc::SOCK_CLOEXEC;
        if nonblocking {
            ty |= libc::SOCK_NONBLOCK;
        }
        // SAFETY: plain socket(2) call; the result is checked.
        let raw = unsafe { libc::socket(libc::AF_NETLINK, ty, libc::NETLINK_ROUTE) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh, owned descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_nl is plain data; zeroed is a valid value.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: pointer and size describe `addr`.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let f = fd.as_raw_fd();
        setopt(f, SOL_NETLINK, NETLINK_CAP_ACK, 1)?;
        setopt(f, SOL_NETLINK, NETLINK_EXT_ACK, 1)?;
        setopt(f, SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)?;
        // Large buffers: a batch is up to BATCH_BYTES in one sendmsg, and a
        // full dump or a burst of link events must not overrun.
        if setopt(f, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, 4 << 20).is_err() {
            setopt(f, libc::SOL_SOCKET, libc::SO_SNDBUF, 4 << 20)?;
        }
        if setopt(f, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 32 << 20).is_err() {
            setopt(f, libc::SOL_SOCKET, libc::SO_RCVBUF, 32 << 20)?;
        }
        for g in groups {
            setopt(f, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, *g as libc::c_int)?;
        }
        if !nonblocking {
            // A lost reply must not hang the FIB forever.
            let tv = libc::timeval {
                tv_sec: 30,
                tv_usec: 0,
            };
            // SAFETY: pointer and size describe `tv`.
            let rc = unsafe {
                libc::setsockopt(
                    f,
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&tv as *const libc::timeval).cast(),
                    std::mem::size_of::<libc::timeval>() as libc::socklen_t,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(NlSocket {
            fd,
            seq: 1,
            req_seq: REQ_SEQ_BASE,
            rx: vec![0; 1 << 20],
        })
    }

    /// Join or leave a multicast group.
    pub fn set_membership(fd: RawFd, group: u32, join: bool) -> io::Result<()> {
        let opt = if join {
            NETLINK_ADD_MEMBERSHIP
        } else {
            NETLINK_DROP_MEMBERSHIP
        };
        setopt(fd, SOL_NETLINK, opt, group as libc::c_int)
    }

    /// The send buffer size as the kernel accounts it (the limit for one
    /// sendmsg).
    pub fn send_buffer(&self) -> usize {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: pointer and length describe `v`.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            0
        } else {
            v.max(0) as usize
        }
    }

    /// Next sequence number for batched messages. Batches use the low
    /// half of the space and single requests the high half, so a request
    /// made while a batch is being packed keeps the batch contiguous.
    pub fn next_seq(&mut self, n: u32) -> u32 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(n);
        if self.seq >= REQ_SEQ_BASE {
            self.seq = 1;
        }
        s
    }

    /// Restart batch numbering early when a batch of up to `room`
    /// messages could otherwise wrap inside itself.
    pub fn ensure_seq_room(&mut self, room: u32) {
        if self.seq >= REQ_SEQ_BASE - room {
            self.seq = 1;
        }
    }

    fn next_req_seq(&mut self) -> u32 {
        let s = self.req_seq;
        self.req_seq = self.req_seq.wrapping_add(1).max(REQ_SEQ_BASE);
        s
    }

    /// Send one buffer of packed messages to the kernel. The kernel handles
    /// every message in it before this returns, queueing replies.
    pub fn send(&self, buf: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_nl is plain data; zeroed addresses the kernel.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: buffer pointer/len and address pointer/size are valid.
            let rc = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    0,
                    (&addr as *const libc::sockaddr_nl).cast(),
                    std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if rc >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Receive one datagram (one or more messages).
    pub fn recv(&mut self) -> io::Result<&[u8]> {
        loop {
            // SAFETY: writes at most rx.len() bytes into rx.
            let rc = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.rx.as_mut_ptr().cast(),
                    self.rx.len(),
                    0,
                )
            };
            if rc >= 0 {
                let n = (rc as usize).min(self.rx.len());
                return Ok(&self.rx[..n]);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Send one request with NLM_F_ACK and wait for its ACK.
    pub fn request(&mut self, mut msg: MsgBuf) -> Result<(), NlError> {
        let seq = self.next_req_seq();
        msg.set_seq_all(seq);
        msg.add_ack_last();
        self.send(msg.bytes()).map_err(NlError::Io)?;
        loop {
            let data = self.recv().map_err(NlError::Io)?;
            for m in Messages::new(data) {
                if m.seq == seq && m.ty == NLMSG_ERROR {
                    return match parse_error_full(m.flags, m.payload) {
                        Some((0, _)) => Ok(()),
                        Some((e, text)) => Err(NlError::Kernel(e, text)),
                        None => Err(NlError::Malformed),
                    };
                }
            }
        }
    }

    /// Run a dump and hand every reply message to `f`. Returns false when
    /// the kernel flagged the dump as interrupted (inconsistent), so the
    /// caller can retry.
    pub fn dump(
        &mut self,
        mut msg: MsgBuf,
        mut f: impl FnMut(&Message<'_>),
    ) -> Result<bool, NlError> {
        let seq = self.next_req_seq();
        msg.set_seq_all(seq);
        self.send(msg.bytes()).map_err(NlError::Io)?;
        let mut consistent = true;
        loop {
            let data = self.recv().map_err(NlError::Io)?;
            for m in Messages::new(data) {
                if m.seq != seq {
                    continue;
                }
                if m.flags & NLM_F_DUMP_INTR != 0 {
                    consistent = false;
                }
                match m.ty {
                    NLMSG_DONE => return Ok(consistent),
                    NLMSG_ERROR => {
                        return match parse_error_full(m.flags, m.payload) {
                            Some((0, _)) => Ok(consistent),
                            Some((e, text)) => Err(NlError::Kernel(e, text)),
                            None => Err(NlError::Malformed),
                        }
                    }
                    _ => f(&m),
                }
            }
        }
    }
}

impl AsRawFd for NlSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A failed netlink exchange.
#[derive(Debug, thiserror::Error)]
pub enum NlError {
    #[error("netlink socket: {0}")]
    Io(#[source] io::Error),
    #[error("kernel: {}{}", io::Error::from_raw_os_error(*.0), fmt_ext(.1))]
    Kernel(i32, Option<String>),
    #[error("malformed netlink reply")]
    Malformed,
}

fn fmt_ext(s: &Option<String>) -> String {
    match s {
        Some(t) => format!(" ({t})"),
        None => String::new(),
    }
}

/// The kernel's refusal of one request: its error code and, with
/// extended ACKs, its own words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", error_text(*.errno, .ext.as_deref()))]
pub struct Refusal {
    pub errno: i32,
    pub ext: Option<String>,
}

/// Human text for a kernel error code and optional extended-ack message.
pub fn error_text(errno: i32, ext: Option<&str>) -> String {
    let base = io::Error::from_raw_os_error(errno).to_string();
    match ext {
        Some(t) if !t.is_empty() => format!("{base}: {t}"),
        _ => base,
    }
}

/// A buffer of packed netlink requests.
pub struct MsgBuf {
    buf: Vec<u8>,
    start: usize,
    /// Offset of the last message started, for setting NLM_F_ACK on it.
    last: Option<usize>,
    count: u32,
}

impl MsgBuf {
    pub fn with_capacity(n: usize) -> Self {
        MsgBuf {
            buf: Vec::with_capacity(n),
            start: 0,
            last: None,
            count: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.last = None;
        self.count = 0;
    }

    /// Start a message; `seq` is filled in as given.
    pub fn begin(&mut self, ty: u16, flags: u16, seq: u32) {
        self.start = self.buf.len();
        self.last = Some(self.start);
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf
            .extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.count += 1;
    }

    /// Finish the current message: fix its length.
    pub fn end(&mut self) {
        let len = (self.buf.len() - self.start) as u32;
        self.buf[self.start..self.start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    pub fn put(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        let pad = align(self.buf.len()) - self.buf.len();
        self.buf.extend_from_slice(&[0u8; 4][..pad]);
    }

    pub fn attr(&mut self, ty: u16, payload: &[u8]) {
        let len = (4 + payload.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.put(payload);
    }

    pub fn attr_u32(&mut self, ty: u16, v: u32) {
        self.attr(ty, &v.to_ne_bytes());
    }

    /// Open a nested attribute (or any length-prefixed block); returns its
    /// offset for `close_nest`.
    pub fn open_nest(&mut self, ty: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        at
    }

    pub fn close_nest(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// Set the sequence number of every message (single-request use).
    fn set_seq_all(&mut self, seq: u32) {
        let mut off = 0;
        while off + NLMSG_HDRLEN <= self.buf.len() {
            let len = u32::from_ne_bytes([
                self.buf[off],
                self.buf[off + 1],
                self.buf[off + 2],
                self.buf[off + 3],
            ]) as usize;
            self.buf[off + 8..off + 12].copy_from_slice(&seq.to_ne_bytes());
            if len < NLMSG_HDRLEN {
                break;
            }
            off += align(len);
        }
    }

    /// Ask for a success ACK on the last message only. The kernel handles
    /// a send buffer in order and always reports errors, so that one ACK
    /// proves every earlier message in the buffer was handled.
    pub fn add_ack_last(&mut self) {
        if let Some(at) = self.last {
            let f = u16::from_ne_bytes([self.buf[at + 6], self.buf[at + 7]]) | NLM_F_ACK;
            self.buf[at + 6..at + 8].copy_from_slice(&f.to_ne_bytes());
        }
    }
}

/// One parsed netlink message header and its payload.
pub struct Message<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// Iterator over the messages in one datagram; stops at the first
/// malformed length.
pub struct Messages<'a> {
    data: &'a [u8],
}

impl<'a> Messages<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Messages { data }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl<'a> Iterator for Messages<'a> {
    type Item = Message<'a>;
    fn next(&mut self) -> Option<Message<'a>> {
        let len = u32_at(self.data, 0)? as usize;
        if len < NLMSG_HDRLEN || len > self.data.len() {
            self.data = &[];
            return None;
        }
        let m = Message {
            ty: u16_at(self.data, 4)?,
            flags: u16_at(self.data, 6)?,
            seq: u32_at(self.data, 8)?,
            payload: self.data.get(NLMSG_HDRLEN..len)?,
        };
        self.data = self.data.get(align(len)..).unwrap_or(&[]);
        Some(m)
    }
}

/// Iterator over route attributes: (type without flag bits, payload).
pub struct Attrs<'a> {
    data: &'a [u8],
}

pub fn attrs(data: &[u8]) -> Attrs<'_> {
    Attrs { data }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);
    fn next(&mut self) -> Option<(u16, &'a [u8])> {
        let len = u16_at(self.data, 0)? as usize;
        let ty = u16_at(self.data, 2)? & 0x3fff;
        if len < 4 || len > self.data.len() {
            self.data = &[];
            return None;
        }
        let p = self.data.get(4..len)?;
        self.data = self.data.get(align(len)..).unwrap_or(&[]);
        Some((ty, p))
    }
}

/// Parse an NLMSG_ERROR payload: (positive errno or 0, extended-ack text).
pub fn parse_error(payload: &[u8]) -> Option<(i32, Option<String>)> {
    let err = i32::from_ne_bytes(payload.get(0..4)?.try_into().ok()?);
    Some((-err, None))
}

/// Like `parse_error`, also reading the extended-ack message text.
pub fn parse_error_full(flags: u16, payload: &[u8]) -> Option<(i32, Option<String>)> {
    let (errno, _) = parse_error(payload)?;
    let mut text = None;
    if flags & NLM_F_ACK_TLVS != 0 {
        // Echoed request: header only when capped, else the whole message.
        let orig_len = if flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            u32_at(payload, 4)? as usize
        };
        let tlvs = payload.get(4 + align(orig_len)..).unwrap_or(&[]);
        for (ty, p) in attrs(tlvs) {
            if ty == NLMSGERR_ATTR_MSG {
                let s = p.split(|b| *b == 0).next().unwrap_or(&[]);
                text = Some(String::from_utf8_lossy(s).into_owned());
            }
        }
    }
    Some((errno, text))
}
