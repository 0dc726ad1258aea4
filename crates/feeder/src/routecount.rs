//! Counting IPv4 main-table route notifications inside the kernel, for
//! `via6-fibwatch`.
//!
//! Reading a full table's worth of notifications costs a listener one
//! `recv` per route (each notification is its own datagram): about 2 s of
//! CPU for a table in and out, taken from the two cores that the daemon
//! being measured also needs. Instead a small eBPF socket filter on the
//! notification socket counts each added and each removed route in an
//! array map and drops the message, so nothing is ever queued and the
//! watcher only reads two counters.
//!
//! The program (checked by the kernel's verifier at load):
//! `RTM_NEWROUTE` without `NLM_F_REPLACE` adds to slot 0, `RTM_DELROUTE`
//! to slot 1, both only for `AF_INET` and `rtm_table == RT_TABLE_MAIN`;
//! every message is dropped.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;
const SO_ATTACH_BPF: libc::c_int = 50;

const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const NLM_F_REPLACE: u16 = 0x100;
const RT_TABLE_MAIN: i32 = 254;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

// Opcodes used below (linux/bpf.h, linux/bpf_common.h).
const MOV64_X: u8 = 0xbf;
const MOV64_K: u8 = 0xb7;
const ADD64_K: u8 = 0x07;
const LD_ABS_H: u8 = 0x28;
const LD_ABS_B: u8 = 0x30;
const LD_IMM64: u8 = 0x18;
const JEQ_K: u8 = 0x15;
const JNE_K: u8 = 0x55;
const JSET_K: u8 = 0x45;
const JA: u8 = 0x05;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;
const STX_W: u8 = 0x63;
const ATOMIC_DW: u8 = 0xdb;
const PSEUDO_MAP_FD: u8 = 1;
const HELPER_MAP_LOOKUP_ELEM: i32 = 1;

/// `LD_ABS` reads network byte order; netlink headers are in host order.
/// The constant that a host-order `v` reads as.
fn as_loaded(v: u16) -> i32 {
    i32::from(u16::from_be_bytes(v.to_ne_bytes()))
}

fn program(map_fd: i32) -> Vec<Insn> {
    const DROP: i16 = 23;
    // Jump offset from instruction `at` to `to`.
    let to = |at: i16, to: i16| to - at - 1;
    vec![
        /* 0 */ insn(MOV64_X, 6, 1, 0, 0), // r6 = ctx, as LD_ABS wants
        /* 1 */ insn(LD_ABS_H, 0, 0, 0, 4), // nlmsg_type
        /* 2 */ insn(JEQ_K, 0, 0, to(2, 5), as_loaded(RTM_NEWROUTE)),
        /* 3 */ insn(JEQ_K, 0, 0, to(3, 9), as_loaded(RTM_DELROUTE)),
        /* 4 */ insn(JA, 0, 0, to(4, DROP), 0),
        /* 5 */ insn(LD_ABS_H, 0, 0, 0, 6), // nlmsg_flags
        /* 6 */ insn(JSET_K, 0, 0, to(6, DROP), as_loaded(NLM_F_REPLACE)),
        /* 7 */ insn(MOV64_K, 7, 0, 0, 0), // slot 0: added
        /* 8 */ insn(JA, 0, 0, to(8, 10), 0),
        /* 9 */ insn(MOV64_K, 7, 0, 0, 1), // slot 1: removed
        /* 10 */ insn(LD_ABS_B, 0, 0, 0, 16), // rtm_family
        /* 11 */ insn(JNE_K, 0, 0, to(11, DROP), libc::AF_INET),
        /* 12 */ insn(LD_ABS_B, 0, 0, 0, 20), // rtm_table
        /* 13 */ insn(JNE_K, 0, 0, to(13, DROP), RT_TABLE_MAIN),
        /* 14 */ insn(STX_W, 10, 7, -4, 0), // key on the stack
        /* 15 */ insn(LD_IMM64, 1, PSEUDO_MAP_FD, 0, map_fd),
        /* 16 */ insn(0, 0, 0, 0, 0),
        /* 17 */ insn(MOV64_X, 2, 10, 0, 0),
        /* 18 */ insn(ADD64_K, 2, 0, 0, -4),
        /* 19 */ insn(CALL, 0, 0, 0, HELPER_MAP_LOOKUP_ELEM),
        /* 20 */ insn(JEQ_K, 0, 0, to(20, DROP), 0),
        /* 21 */ insn(MOV64_K, 1, 0, 0, 1),
        /* 22 */ insn(ATOMIC_DW, 0, 1, 0, 0), // lock *(u64 *)r0 += r1
        /* 23 */ insn(MOV64_K, 0, 0, 0, 0), // keep nothing
        /* 24 */ insn(EXIT, 0, 0, 0, 0),
    ]
}

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

/// The bpf(2) system call with one of the attribute structs above.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised repr(C) struct of the given
    // size, laid out as the kernel's `union bpf_attr` member for `cmd`;
    // the kernel zero-extends the fields we do not pass.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            (attr as *mut T).cast::<libc::c_void>(),
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned(fd: libc::c_long) -> io::Result<OwnedFd> {
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("bpf returned a bad descriptor"))?;
    // SAFETY: the kernel just gave us this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Route counters kept by the kernel for one notification socket.
pub struct KernelRouteCount {
    map: OwnedFd,
    _prog: OwnedFd,
}

impl KernelRouteCount {
    /// Loads the counting filter and attaches it to `socket`, which must be
    /// bound to the IPv4 route notification group. Needs CAP_BPF (root).
    pub fn attach(socket: libc::c_int) -> io::Result<KernelRouteCount> {
        let mut m = MapCreateAttr {
            map_type: BPF_MAP_TYPE_ARRAY,
            key_size: 4,
            value_size: 8,
            max_entries: 2,
            map_flags: 0,
        };
        let map = owned(bpf(BPF_MAP_CREATE, &mut m)?)?;
        let insns = program(map.as_raw_fd());
        let license = c"GPL";
        let mut log = vec![0u8; 64 * 1024];
        let mut p = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_SOCKET_FILTER,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: 1,
            log_size: log.len() as u32,
            log_buf: log.as_mut_ptr() as u64,
            ..ProgLoadAttr::default()
        };
        let prog = match bpf(BPF_PROG_LOAD, &mut p) {
            Ok(fd) => owned(fd)?,
            Err(e) => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(log.get(..end).unwrap_or(&[]));
                return Err(io::Error::new(
                    e.kind(),
                    format!("loading the route counter: {e}: {}", text.trim()),
                ));
            }
        };
        let pfd: libc::c_int = prog.as_raw_fd();
        // SAFETY: `pfd` is a live c_int of the stated size; `socket` is the
        // caller's open descriptor.
        let r = unsafe {
            libc::setsockopt(
                socket,
                libc::SOL_SOCKET,
                SO_ATTACH_BPF,
                (&pfd as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(KernelRouteCount { map, _prog: prog })
    }

    fn slot(&self, key: u32) -> io::Result<u64> {
        let mut value = 0u64;
        let mut a = MapElemAttr {
            map_fd: self.map.as_raw_fd() as u32,
            key: (&key as *const u32) as u64,
            value: (&mut value as *mut u64) as u64,
            ..MapElemAttr::default()
        };
        bpf(BPF_MAP_LOOKUP_ELEM, &mut a)?;
        Ok(value)
    }

    /// Routes added to and removed from the IPv4 main table since attach.
    pub fn added_removed(&self) -> io::Result<(u64, u64)> {
        Ok((self.slot(0)?, self.slot(1)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_land_inside_the_program() {
        let p = program(3);
        for (at, i) in p.iter().enumerate() {
            let class = i.code & 0x07;
            if class == 0x05 && i.code != CALL && i.code != EXIT {
                let target = at as i64 + 1 + i64::from(i.off);
                assert!(
                    target > at as i64 && (target as usize) < p.len(),
                    "insn {at}"
                );
            }
        }
        assert_eq!(p.last().map(|i| i.code), Some(EXIT));
    }

    fn ip(args: &str) {
        let st = std::process::Command::new("ip")
            .args(args.split_whitespace())
            .status()
            .expect("ip (iproute2) is needed");
        assert!(st.success(), "ip {args}");
    }

    /// A netlink socket on the IPv4 route group, opened inside `ns`.
    fn route_socket_in(ns: &str) -> OwnedFd {
        let f = std::fs::File::open(format!("/run/netns/{ns}")).expect("namespace file");
        // SAFETY: plain socket calls; every pointer is a live local of the
        // stated size; setns affects only this (test) thread.
        unsafe {
            assert_eq!(
                libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET),
                0,
                "setns (root?)"
            );
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            );
            assert!(fd >= 0);
            let mut sa: libc::sockaddr_nl = std::mem::zeroed();
            sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            sa.nl_groups = libc::RTMGRP_IPV4_ROUTE as u32;
            let len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
            assert_eq!(
                libc::bind(fd, (&sa as *const libc::sockaddr_nl).cast(), len),
                0
            );
            OwnedFd::from_raw_fd(fd)
        }
    }

    /// Needs root (CI runs as root): the kernel verifies and runs the
    /// program on real route notifications.
    #[test]
    fn counts_main_table_ipv4_adds_and_removes_in_the_kernel() {
        let ns = format!("via6-routecount-{}", std::process::id());
        ip(&format!("netns add {ns}"));
        struct Del(String);
        impl Drop for Del {
            fn drop(&mut self) {
                let _ = std::process::Command::new("ip")
                    .args(["netns", "del", &self.0])
                    .status();
            }
        }
        let _del = Del(ns.clone());
        ip(&format!("-n {ns} link set lo up"));
        ip(&format!("-n {ns} link add d0 type veth peer name d1"));
        ip(&format!("-n {ns} link set d0 up"));
        let (sock, count) = std::thread::scope(|s| {
            s.spawn(|| {
                let sock = route_socket_in(&ns);
                let count = KernelRouteCount::attach(sock.as_raw_fd()).expect("load and attach");
                (sock, count)
            })
            .join()
            .expect("thread")
        });
        let base = count.added_removed().expect("read");
        ip(&format!("-n {ns} route add 192.0.2.0/24 dev d0"));
        ip(&format!("-n {ns} route add 198.51.100.0/24 dev d0"));
        ip(&format!(
            "-n {ns} route replace 198.51.100.0/24 dev d0 metric 0 mtu 1400"
        ));
        ip(&format!(
            "-n {ns} route add 203.0.113.0/24 dev d0 table 100"
        ));
        ip(&format!("-n {ns} -6 route add 2001:db8::/32 dev d0"));
        ip(&format!("-n {ns} route del 192.0.2.0/24 dev d0"));
        let (added, removed) = count.added_removed().expect("read");
        // lo and d0 coming up add local and broadcast routes to the local
        // table, not main: only our two adds and one delete count.
        assert_eq!((added - base.0, removed - base.1), (2, 1));
        // Nothing is queued on the socket: the filter drops every message.
        let mut buf = [0u8; 4096];
        // SAFETY: `buf` is a live writable buffer of the given length.
        let n = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        assert_eq!(n, -1, "a message got through the filter");
    }

    #[test]
    fn loaded_constants_are_byte_swapped_on_little_endian() {
        if cfg!(target_endian = "little") {
            assert_eq!(as_loaded(24), 0x1800);
            assert_eq!(as_loaded(0x100), 0x0001);
        }
    }
}
