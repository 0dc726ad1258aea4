//! The control socket: a Unix stream socket (mode 0660) speaking one JSON
//! request line and one JSON reply line per connection. `via6ctl` is its
//! client; anything that can write a line of JSON can be another.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// What a client may ask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    Neighbors,
    /// RIB paths, optionally one prefix only, at most `limit` of them.
    Routes {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<ipnet::IpNet>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    Fib,
    /// BFD sessions (RFC 5880): peer, interface, states, diagnostics,
    /// timers, uptime.
    Bfd,
    /// Router id, AS, listener and warnings (forwarding off, ...).
    Status,
    /// Tear the session down (Cease/4, administrative reset) and restart it;
    /// `hard`: as a Hard Reset (RFC 8538), so both sides drop its routes.
    Reset {
        neighbor: IpAddr,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        hard: bool,
    },
    /// Stop for good: Cease (Hard Reset where graceful restart would keep
    /// our routes) to every peer, our kernel routes removed, exit.
    Shutdown,
    /// Ask the peer to resend its routes (RFC 2918 ROUTE-REFRESH).
    Refresh {
        neighbor: IpAddr,
    },
}

/// The reply: exactly one of `ok` or `error`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reply {
    Ok(serde_json::Value),
    Error(String),
}

/// The name of interface `index` in this process's network namespace, so
/// that replies name interfaces as the daemon sees them.
pub fn interface_name(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf holds IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// Adds `"interface": NAME` beside every `"ifindex"` of a list of rows.
pub fn name_interfaces(rows: &mut serde_json::Value) {
    let Some(rows) = rows.as_array_mut() else {
        return;
    };
    for row in rows {
        let name = row["ifindex"]
            .as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .and_then(interface_name);
        if let (Some(obj), Some(name)) = (row.as_object_mut(), name) {
            obj.insert("interface".into(), serde_json::Value::String(name));
        }
    }
}

/// Shows `local_address` and `remote_address` of a list of rows as IPv4
/// where the socket holds an IPv4-mapped IPv6 address (an IPv4 peer on
/// the `[::]` listener): `192.0.2.1:179`, not `[::ffff:192.0.2.1]:179`.
pub fn unmap_addresses(rows: &mut serde_json::Value) {
    let Some(rows) = rows.as_array_mut() else {
        return;
    };
    for row in rows {
        for key in ["local_address", "remote_address"] {
            let unmapped = row[key]
                .as_str()
                .and_then(|s| s.parse::<std::net::SocketAddr>().ok())
                .and_then(|a| match a {
                    std::net::SocketAddr::V6(v6) => v6
                        .ip()
                        .to_ipv4_mapped()
                        .map(|v4| std::net::SocketAddr::new(IpAddr::V4(v4), v6.port())),
                    std::net::SocketAddr::V4(_) => None,
                });
            if let (Some(obj), Some(a)) = (row.as_object_mut(), unmapped) {
                obj.insert(key.into(), serde_json::Value::String(a.to_string()));
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("control socket {path}: cannot connect: {source} (is via6d running, and is this its control-socket?)")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("control socket: malformed reply: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("via6d: {0}")]
    Daemon(String),
}

/// Binds the socket, replacing a stale one left by a dead daemon but never
/// one a live daemon still answers on.
pub async fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(ControlError::Bind {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another via6d answers on it",
                ),
            });
        }
        let _ = std::fs::remove_file(path);
    }
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|source| ControlError::Bind {
                path: path.to_path_buf(),
                source,
            })?;
        }
    }
    let listener = UnixListener::bind(path).map_err(|source| ControlError::Bind {
        path: path.to_path_buf(),
        source,
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(|source| {
        ControlError::Bind {
            path: path.to_path_buf(),
            source,
        }
    })?;
    Ok(listener)
}

/// Reads one request from a connection; `None` when the line is not a request.
pub async fn read_request(
    stream: &mut UnixStream,
) -> Result<Result<Request, String>, ControlError> {
    let mut line = String::new();
    let (read, _) = stream.split();
    let mut reader = BufReader::new(read).take(64 * 1024);
    reader.read_line(&mut line).await?;
    Ok(serde_json::from_str(&line).map_err(|e| format!("bad request: {e}")))
}

pub async fn write_reply(stream: &mut UnixStream, reply: &Reply) -> Result<(), ControlError> {
    let mut out = serde_json::to_vec(reply)?;
    out.push(b'\n');
    stream.write_all(&out).await?;
    stream.shutdown().await?;
    Ok(())
}

/// Client side: one request, one reply.
pub async fn call(path: &Path, request: &Request) -> Result<serde_json::Value, ControlError> {
    let mut stream = UnixStream::connect(path)
        .await
        .map_err(|source| ControlError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream.write_all(&line).await?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).await?;
    match serde_json::from_str::<Reply>(&reply)? {
        Reply::Ok(v) => Ok(v),
        Reply::Error(e) => Err(ControlError::Daemon(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_form() {
        let r = Request::Reset {
            neighbor: "fe80::1".parse().unwrap(),
            hard: false,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(s, r#"{"command":"reset","neighbor":"fe80::1"}"#);
        assert_eq!(serde_json::from_str::<Request>(&s).unwrap(), r);
        let hard = Request::Reset {
            neighbor: "fe80::1".parse().unwrap(),
            hard: true,
        };
        let s = serde_json::to_string(&hard).unwrap();
        assert_eq!(s, r#"{"command":"reset","neighbor":"fe80::1","hard":true}"#);
        assert_eq!(
            serde_json::to_string(&Request::Shutdown).unwrap(),
            r#"{"command":"shutdown"}"#
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"command":"neighbors"}"#).unwrap(),
            Request::Neighbors
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"command":"routes"}"#).unwrap(),
            Request::Routes {
                prefix: None,
                limit: None
            }
        );
        let r = Request::Routes {
            prefix: Some("10.0.0.0/8".parse().unwrap()),
            limit: Some(5),
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(s, r#"{"command":"routes","prefix":"10.0.0.0/8","limit":5}"#);
    }

    #[test]
    fn ipv4_mapped_addresses_show_as_ipv4() {
        let mut rows = serde_json::json!([{
            "local_address": "[::ffff:192.0.2.1]:179",
            "remote_address": "[fe80::1%2]:40000",
        }, {"local_address": null}]);
        unmap_addresses(&mut rows);
        assert_eq!(rows[0]["local_address"], "192.0.2.1:179");
        assert_eq!(rows[0]["remote_address"], "[fe80::1%2]:40000");
        assert!(rows[1]["local_address"].is_null());
    }

    #[tokio::test]
    async fn round_trip_over_a_socket_with_mode_0660() {
        let dir = std::env::temp_dir().join(format!("via6-ctl-test-{}", std::process::id()));
        let path = dir.join("ctl.sock");
        let listener = bind(&path).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let req = read_request(&mut s).await.unwrap().unwrap();
            assert_eq!(req, Request::Fib);
            write_reply(&mut s, &Reply::Ok(serde_json::json!({"installed": 3})))
                .await
                .unwrap();
        });
        let v = call(&path, &Request::Fib).await.unwrap();
        assert_eq!(v["installed"], 3);
        server.await.unwrap();
        // A second daemon must not steal a live socket.
        let _ = std::fs::remove_dir_all(&dir);
    }
}
