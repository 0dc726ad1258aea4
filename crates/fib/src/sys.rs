//! The FIB's only unsafe calls: what neither netlink-sys nor socket2
//! offers. Each wraps one system call with its arguments checked here.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// Set a socket buffer beyond `net.core.{w,r}mem_max` (SO_SNDBUFFORCE /
/// SO_RCVBUFFORCE; needs CAP_NET_ADMIN). The caller falls back to the
/// plain option when this is refused.
pub(crate) fn force_buffer(fd: RawFd, send: bool, bytes: usize) -> io::Result<()> {
    let name = if send {
        libc::SO_SNDBUFFORCE
    } else {
        libc::SO_RCVBUFFORCE
    };
    let val = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: the value pointer and length describe `val`, a live c_int;
    // an invalid descriptor only makes the call fail.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
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

/// Move the calling thread into the network namespace of `ns` (setns
/// affects only this thread; sockets opened afterwards live there).
pub(crate) fn enter_netns(ns: &File) -> io::Result<()> {
    // SAFETY: setns takes an open descriptor, which `ns` keeps open for
    // the call; it changes only the calling thread's namespace.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Hand free heap pages back to the kernel after bulk work.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn trim_heap() {
    // SAFETY: malloc_trim only releases pages of free heap; it touches no
    // memory the program still holds.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn trim_heap() {}

/// Allocations of this size or more get pages of their own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 4 << 20;

/// See [`crate::map_large_allocations`].
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn map_large_allocations() {
    // SAFETY: mallopt only changes a malloc setting; it is called before
    // the daemon's threads start allocating in earnest, and glibc takes
    // its own lock for it.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn map_large_allocations() {}

/// A second handle on the same netlink socket (dup(2)), for changing its
/// multicast memberships while its owner reads it elsewhere.
pub(crate) fn dup_socket(s: &netlink_sys::Socket) -> io::Result<netlink_sys::Socket> {
    use std::os::fd::{AsFd, FromRawFd, IntoRawFd};
    let fd = s.as_fd().try_clone_to_owned()?;
    // SAFETY: `fd` is a fresh descriptor owned by nobody else; the new
    // Socket takes over closing it.
    Ok(unsafe { netlink_sys::Socket::from_raw_fd(fd.into_raw_fd()) })
}

/// Register a netlink socket with the owner thread's reactor, for
/// readiness only (reads stay non-blocking calls on the socket).
pub(crate) fn register(
    sock: crate::nl::NlSocket,
) -> io::Result<tokio::io::unix::AsyncFd<crate::nl::NlSocket>> {
    // SAFETY: NlSocket owns its descriptor and returns the same one for
    // its whole life; it is closed only when the AsyncFd, which owns the
    // socket, drops, so the reactor never watches a reused descriptor.
    let fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(sock, tokio::io::Interest::READABLE)
    };
    fd.map_err(Into::into)
}
