//! rtnetlink plumbing: sockets from netlink-sys, message walking and
//! error parsing on netlink-packet-core's checked buffers, and the typed
//! messages of netlink-packet-route for links, addresses, route events
//! and dump requests (`objects.rs`, `route.rs`).
//!
//! Three things stay hand-built, each for its reason measured or given in
//! `crates/fib/README.md` ("Why hand-built where it is"): route requests
//! on the hot path (a million ~90-byte messages appended to 256 KiB
//! buffers), the parser of route dumps (a full table at start and at
//! every audit), and nexthop objects (netlink-packet-route has no
//! nexthop messages).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use netlink_packet_core::{
    ErrorBuffer, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

mod objects;
mod route;
mod route_raw;
#[cfg(test)]
mod tests;

pub use objects::*;
pub use route::*;
pub use route_raw::*;

pub use netlink_packet_core::{
    NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_DUMP_INTR, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
};

/// Extended-ack attribute with the kernel's text (linux/netlink.h).
const NLMSGERR_ATTR_MSG: u16 = netlink_sys::constants::NLMSGERR_ATTR_MSG as u16;

pub const AF_INET: u8 = libc::AF_INET as u8;
pub const AF_INET6: u8 = libc::AF_INET6 as u8;

// Types of the link and address messages read from events and dumps
// (their payloads are netlink-packet-route's).
pub const RTM_NEWLINK: u16 = libc::RTM_NEWLINK;
pub const RTM_DELLINK: u16 = libc::RTM_DELLINK;
pub const RTM_NEWADDR: u16 = libc::RTM_NEWADDR;
pub const RTM_DELADDR: u16 = libc::RTM_DELADDR;

// Multicast groups (linux/rtnetlink.h).
pub const RTNLGRP_LINK: u32 = libc::RTNLGRP_LINK;
pub const RTNLGRP_IPV4_IFADDR: u32 = libc::RTNLGRP_IPV4_IFADDR;
pub const RTNLGRP_IPV4_ROUTE: u32 = libc::RTNLGRP_IPV4_ROUTE;
pub const RTNLGRP_IPV6_ROUTE: u32 = libc::RTNLGRP_IPV6_ROUTE;
pub const RTNLGRP_NEXTHOP: u32 = libc::RTNLGRP_NEXTHOP;

pub const NLMSG_HDRLEN: usize = 16;

// Codes of the hand-built parts: route requests, the route dump parser
// and nexthop objects. The route ones are checked against
// netlink-packet-route's encoder and parser (`tests.rs`:
// `hand_built_routes_match_the_library`,
// `raw_parser_agrees_with_the_library`); netlink-packet-route has no
// nexthop messages, those come from linux/nexthop.h.
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
pub const RTM_NEWNEXTHOP: u16 = 104;
pub const RTM_DELNEXTHOP: u16 = 105;
pub const RTM_GETNEXTHOP: u16 = 106;
pub const RTA_DST: u16 = 1;
pub const RTA_OIF: u16 = 4;
pub const RTA_GATEWAY: u16 = 5;
pub const RTA_PRIORITY: u16 = 6;
pub const RTA_PREFSRC: u16 = 7;
pub const RTA_MULTIPATH: u16 = 9;
pub const RTA_TABLE: u16 = 15;
pub const RTA_VIA: u16 = 18;
pub const RTA_NH_ID: u16 = 30;
pub const RTN_UNICAST: u8 = 1;
pub const RT_SCOPE_UNIVERSE: u8 = 0;
pub const RT_SCOPE_NOWHERE: u8 = 255;
pub const NHA_ID: u16 = 1;
pub const NHA_GROUP: u16 = 2;
pub const NHA_GROUP_TYPE: u16 = 3;
pub const NHA_BLACKHOLE: u16 = 4;
pub const NHA_OIF: u16 = 5;
pub const NHA_GATEWAY: u16 = 6;

/// Round up to the 4-byte netlink alignment.
pub fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// An rtnetlink socket (netlink-sys) with its receive buffer and the
/// sequence numbers of its requests.
pub struct NlSocket {
    sock: Socket,
    seq: u32,
    req_seq: u32,
    rx: Vec<u8>,
}

const REQ_SEQ_BASE: u32 = 0x8000_0000;
/// One receive: the kernel sends dump parts of up to 32 KiB, event
/// bursts fill what is there.
const RX_BYTES: usize = 1 << 20;

impl NlSocket {
    /// Open a socket in the calling thread's network namespace, with
    /// strict dump checking (so the kernel filters dumps by table and
    /// protocol), capped ACKs (errors echo only the header) and extended
    /// ACKs (errors carry the kernel's text).
    pub fn open(groups: &[u32], nonblocking: bool) -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind(&SocketAddr::new(0, 0))?;
        sock.set_cap_ack(true)?;
        sock.set_ext_ack(true)?;
        sock.set_netlink_get_strict_chk(true)?;
        // Large buffers: a batch is up to BATCH_BYTES in one sendmsg, and a
        // full dump or a burst of link events must not overrun.
        let fd = sock.as_raw_fd();
        let sref = socket2::SockRef::from(&sock);
        if crate::sys::force_buffer(fd, true, 4 << 20).is_err() {
            sref.set_send_buffer_size(4 << 20)?;
        }
        if crate::sys::force_buffer(fd, false, 32 << 20).is_err() {
            sref.set_recv_buffer_size(32 << 20)?;
        }
        for g in groups {
            sock.add_membership(*g)?;
        }
        if nonblocking {
            sock.set_non_blocking(true)?;
        } else {
            // A lost reply must not hang the FIB forever.
            sref.set_read_timeout(Some(Duration::from_secs(30)))?;
        }
        Ok(NlSocket {
            sock,
            seq: 1,
            req_seq: REQ_SEQ_BASE,
            rx: Vec::with_capacity(RX_BYTES),
        })
    }

    /// A handle that joins and leaves multicast groups of this socket
    /// while the socket itself is read elsewhere.
    pub fn groups_handle(&self) -> io::Result<Groups> {
        crate::sys::dup_socket(&self.sock).map(Groups)
    }

    /// The send buffer size as the kernel accounts it (the limit for one
    /// sendmsg).
    pub fn send_buffer(&self) -> usize {
        socket2::SockRef::from(&self.sock)
            .send_buffer_size()
            .unwrap_or(0)
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
        let kernel = SocketAddr::new(0, 0);
        loop {
            match self.sock.send_to(buf, &kernel, 0) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Receive one datagram (one or more messages).
    pub fn recv(&mut self) -> io::Result<&[u8]> {
        loop {
            self.rx.clear();
            match self.sock.recv(&mut self.rx, 0) {
                Ok(_) => return Ok(&self.rx),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
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

/// Joins and leaves the multicast groups of one socket.
pub struct Groups(Socket);

impl Groups {
    pub fn set(&self, group: u32, join: bool) -> io::Result<()> {
        if join {
            self.0.add_membership(group)
        } else {
            self.0.drop_membership(group)
        }
    }
}

impl AsRawFd for NlSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
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

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
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

    /// One typed request of netlink-packet-route, serialized (the
    /// sequence number is set when it is sent).
    pub fn message(msg: RouteNetlinkMessage, flags: u16) -> MsgBuf {
        let mut b = MsgBuf::with_capacity(64);
        b.append(msg, flags, 0);
        b
    }

    /// Append one typed request of netlink-packet-route.
    pub fn append(&mut self, msg: RouteNetlinkMessage, flags: u16, seq: u32) {
        let mut header = NetlinkHeader::default();
        header.flags = flags | NLM_F_REQUEST;
        header.sequence_number = seq;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        m.finalize();
        self.start = self.buf.len();
        self.last = Some(self.start);
        self.buf.resize(self.start + m.buffer_len(), 0);
        m.serialize(&mut self.buf[self.start..]);
        self.count += 1;
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

/// Iterator over the messages in one datagram (netlink-packet-core's
/// checked header); stops at the first malformed length.
pub struct Messages<'a> {
    data: &'a [u8],
}

impl<'a> Messages<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Messages { data }
    }
}

pub fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl<'a> Iterator for Messages<'a> {
    type Item = Message<'a>;
    fn next(&mut self) -> Option<Message<'a>> {
        let data = self.data;
        let Ok(buf) = NetlinkBuffer::new_checked(data) else {
            self.data = &[];
            return None;
        };
        let len = buf.length() as usize;
        let m = Message {
            ty: buf.message_type(),
            flags: buf.flags(),
            seq: buf.sequence_number(),
            payload: data.get(NLMSG_HDRLEN..len)?,
        };
        self.data = data.get(align(len)..).unwrap_or(&[]);
        Some(m)
    }
}

/// Iterator over attributes (netlink-packet-core's checked NLA
/// buffers): (type without flag bits, payload); stops at the first
/// malformed one.
pub fn attrs(data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    NlasIterator::new(data).map_while(|a| {
        let a = a.ok()?;
        let (kind, len) = (a.kind(), a.length() as usize);
        Some((kind, a.into_inner().get(4..len)?))
    })
}

/// Parse an NLMSG_ERROR payload: (positive errno or 0, extended-ack
/// text). Capped ACKs echo only the request's header; the text follows
/// it as NLMSGERR_ATTR_MSG when the kernel sets NLM_F_ACK_TLVS.
pub fn parse_error_full(flags: u16, payload: &[u8]) -> Option<(i32, Option<String>)> {
    let err = ErrorBuffer::new_checked(payload).ok()?;
    let errno = err.code().map_or(0, |c| -c.get());
    let mut text = None;
    if flags & NLM_F_ACK_TLVS != 0 {
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
