//! A session's connections: connecting out, taking a connection the
//! listener accepted, the collision between the two (RFC 4271 §6.8), and
//! events from the connection's reader and writer tasks.

use super::*;

impl Driver {
    pub(super) fn start_connect(&mut self, queue: &mut VecDeque<Event>) {
        if let Some(c) = self.connecting.take() {
            c.abort();
        }
        let n = &self.cfg.neighbor;
        match io::peer_socket_addr(n.address, n.interface.as_deref(), n.port) {
            Ok(addr) => {
                let limit = n.connect_retry.max(Duration::from_secs(1));
                let options = io::ConnectOptions {
                    md5_key: n.password.as_ref().map(|p| p.0.as_bytes().to_vec()),
                    gtsm: n.ttl_security,
                };
                self.connecting = Some(tokio::spawn(io::connect(addr, limit, options)));
            }
            Err(e) => {
                self.connect_error = Some(e.to_string());
                self.error_at = Some(SystemTime::now());
                queue.push_back(Event::TcpConnectionFails);
            }
        }
    }

    pub(super) fn start_conn(&self, stream: TcpStream, incoming: bool) -> Option<Conn> {
        match Conn::start(
            stream,
            incoming,
            self.our_open.clone(),
            self.send_hold(),
            self.counters.clone(),
        ) {
            Ok(c) => Some(c),
            Err(e) => {
                debug!(neighbor = %self.name(), error = %e, "connection gone before start");
                None
            }
        }
    }

    pub(super) fn connected(
        &mut self,
        res: Result<Result<TcpStream, ConnectError>, tokio::task::JoinError>,
    ) {
        match res {
            Ok(Ok(stream)) if self.fsm.state() == State::Connect && self.conn.is_none() => {
                self.connect_error = None;
                match self.start_conn(stream, false) {
                    Some(c) => {
                        self.conn = Some(c);
                        self.feed(Event::TcpConnected);
                    }
                    None => self.feed(Event::TcpConnectionFails),
                }
            }
            // Late: an incoming connection took over meanwhile.
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                debug!(neighbor = %self.name(), error = %e, "connect failed");
                self.connect_error = Some(e.to_string());
                self.error_at = Some(SystemTime::now());
                self.feed(Event::TcpConnectionFails);
            }
            Err(_) => self.feed(Event::TcpConnectionFails),
        }
    }

    pub(super) fn incoming(&mut self, stream: TcpStream) {
        if self.cfg.neighbor.ttl_security {
            // RFC 5082 §3: the SYN itself must have come with TTL 255
            // (>= 254 after one hop); minimum TTL on the accepted socket
            // then guards every later segment.
            match crate::sockopt::syn_hop_limit(&stream) {
                Ok(Some(ttl)) if ttl >= 254 => {}
                other => {
                    warn!(neighbor = %self.name(), syn_ttl = ?other.ok().flatten(), "connection refused: GTSM (RFC 5082) wants TTL 255");
                    return;
                }
            }
            let v6 = stream.local_addr().map(|a| a.is_ipv6()).unwrap_or(true);
            if let Err(e) = crate::sockopt::set_gtsm(&stream, v6) {
                warn!(neighbor = %self.name(), error = %e, "GTSM (RFC 5082) could not be set; connection refused");
                return;
            }
        }
        let state = self.fsm.state();
        if self.fsm.accepts_incoming() && self.conn.is_none() {
            if let Some(c) = self.connecting.take() {
                c.abort();
            }
            if let Some(c) = self.start_conn(stream, true) {
                self.conn = Some(c);
                self.feed(Event::TcpConnected);
            }
        } else if matches!(state, State::OpenSent | State::OpenConfirm) {
            // RFC 4271 §6.8: keep both until the new one's OPEN tells the
            // peer's identifier.
            if let Some(c) = self.start_conn(stream, true) {
                if let Some(old) = self.candidate.replace(c) {
                    old.close(None);
                }
            }
        } else {
            let sub = if state == State::Established {
                cease::CONNECTION_COLLISION
            } else {
                cease::CONNECTION_REJECTED
            };
            debug!(neighbor = %self.name(), %state, "refusing connection");
            let bytes = self.encode(&Message::Notification(cease_notification(sub, None)));
            tokio::spawn(reject(stream, bytes));
        }
    }

    pub(super) fn candidate_event(&mut self, ev: Option<ConnEvent>) {
        let Some(cand) = self.candidate.take() else {
            return;
        };
        let (open, rest) = match ev {
            Some(ConnEvent::Messages(batch)) => {
                let mut it = batch.into_iter();
                match it.next().map(|d| d.message) {
                    Some(Message::Open(o)) => (o, it),
                    _ => {
                        cand.close(None);
                        return;
                    }
                }
            }
            _ => {
                cand.close(None);
                return;
            }
        };
        let collision = self.encode(&Message::Notification(cease_notification(
            cease::CONNECTION_COLLISION,
            None,
        )));
        let state = self.fsm.state();
        let Some(existing_incoming) = self.conn.as_ref().map(|c| c.incoming) else {
            cand.close(collision);
            return;
        };
        if !matches!(state, State::OpenSent | State::OpenConfirm) {
            cand.close(collision);
            return;
        }
        // The connection initiated by the higher identifier survives; if
        // the peer opened both, it has given up the older one.
        let keep_new = existing_incoming
            || resolve_collision(self.cfg.router_id, open.router_id) == CollisionWinner::Theirs;
        info!(neighbor = %self.name(), keep_new, "connection collision");
        if keep_new {
            if let Some(old) = self.conn.replace(cand) {
                old.close(collision);
            }
            self.feed(Event::ConnectionReplaced);
            self.feed(Event::OpenReceived(Box::new(open)));
            self.messages(rest);
        } else {
            cand.close(collision);
        }
    }

    pub(super) fn conn_event(&mut self, ev: Option<ConnEvent>) {
        match ev {
            None | Some(ConnEvent::Closed) | Some(ConnEvent::WriteFailed) => {
                self.feed(Event::TcpConnectionFails)
            }
            Some(ConnEvent::SendHoldExpired) => self.feed(Event::SendHoldTimerExpires),
            Some(ConnEvent::LocalClose(n)) => self.feed(Event::ErrorStop(n)),
            Some(ConnEvent::DecodeError(n)) => {
                warn!(neighbor = %self.name(), error = %crate::fsm::describe(&n), "bad message from peer");
                self.feed(Event::MessageError(n))
            }
            Some(ConnEvent::Messages(batch)) => self.messages(batch),
        }
        self.flush_rib();
    }
}

pub(super) async fn recv_conn(c: &mut Option<Conn>) -> Option<ConnEvent> {
    match c {
        Some(c) => c.events.recv().await,
        None => std::future::pending().await,
    }
}

pub(super) async fn join_connect(
    c: &mut Option<ConnectTask>,
) -> Result<Result<TcpStream, ConnectError>, tokio::task::JoinError> {
    match c {
        Some(h) => h.await,
        None => std::future::pending().await,
    }
}

/// Tells an unwanted connection why, briefly, and closes it (draining
/// what the peer sent, so the close is a FIN and not a RST that could
/// destroy the NOTIFICATION before the peer reads it).
pub(super) async fn reject(mut stream: TcpStream, bytes: Option<Vec<u8>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        if let Some(b) = bytes {
            stream.write_all(&b).await?;
        }
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}
