//! Opening a TCP connection from inside a network namespace.

use std::net::{Ipv6Addr, SocketAddrV6, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::error::{Error, Result};

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
            .map_err(|_| Error::BadInterfaceName(ifname.clone()))?;
        // SAFETY: c is a valid NUL-terminated string.
        let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
        if index == 0 {
            return Err(Error::NoInterface { ns_path, ifname });
        }
        let addr = SocketAddrV6::new(peer, port, 0, index);
        TcpStream::connect_timeout(&addr.into(), Duration::from_secs(3))
            .map_err(|e| Error::io(format!("connect to [{peer}%{ifname}]:{port}"), e))
    });
    handle.join().map_err(|_| Error::NamespaceThread)?
}
