//! The speaker: one TCP listener, one session task per neighbour, and the
//! RIB task, wired together; plus the handle the daemon and the control
//! socket use.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::{expand_unnumbered, wants_interface, NeighborConfig, SpeakerConfig};
use crate::events::{FibEvent, PeerId, RibInput};
use crate::fsm::{cease, cease_notification, State};
use crate::graceful::StopKind;
use crate::negotiate::Negotiated;
use crate::rib::{spawn_rib, PeerCounts, RibHandle, RouteStatus};
use crate::session::local::{canonical, if_index};
use crate::session::{spawn_session, SessionConfig, SessionHandle};

/// How long an incoming connection from a possible interface peer waits
/// for its session to exist: `PARK_TRIES` looks, `PARK_STEP` apart.
const PARK_TRIES: u32 = 30;
const PARK_STEP: Duration = Duration::from_millis(100);

/// Errors of the speaker's public API.
#[derive(Debug, thiserror::Error)]
pub enum BgpError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("no configured neighbor {0}")]
    UnknownNeighbor(IpAddr),
    #[error("neighbor {0} is not Established or did not offer route refresh")]
    RefreshNotPossible(IpAddr),
    #[error("the speaker is shut down")]
    Stopped,
    #[error(transparent)]
    Runtime(#[from] crate::RuntimeError),
}

/// One neighbour as `via6ctl neighbors` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NeighborStatus {
    pub peer: PeerId,
    pub address: IpAddr,
    pub interface: Option<String>,
    pub remote_as: u32,
    pub description: Option<String>,
    pub state: State,
    /// Seconds since Established.
    pub uptime: Option<u64>,
    pub local_address: Option<SocketAddr>,
    pub remote_address: Option<SocketAddr>,
    /// Capabilities in force (families, extended next hop per family, ...).
    pub negotiated: Option<Negotiated>,
    pub counts: PeerCounts,
    pub updates_received: u64,
    pub updates_sent: u64,
    pub last_error: Option<String>,
    /// When `last_error` happened, in seconds since the Unix epoch.
    pub last_error_at: Option<u64>,
}

/// Starts speakers.
pub struct Speaker;

impl Speaker {
    /// Spawns the RIB task, the listener and one session per neighbour.
    /// Interface (unnumbered) neighbours get a session per peer that
    /// neighbour discovery finds (see [`expand_unnumbered`]).
    pub async fn start(
        config: SpeakerConfig,
        fib_tx: mpsc::Sender<FibEvent>,
    ) -> Result<SpeakerHandle, BgpError> {
        let (rib_tx, rib) = spawn_rib(&expand_unnumbered(&config, &BTreeMap::new()), fib_tx);
        Self::start_with_rib(config, rib_tx, rib).await
    }

    /// Like `start`, with a RIB task that is already running.
    pub async fn start_with_rib(
        config: SpeakerConfig,
        rib_tx: mpsc::Sender<RibInput>,
        rib: RibHandle,
    ) -> Result<SpeakerHandle, BgpError> {
        let expanded = expand_unnumbered(&config, &BTreeMap::new());
        let inner = Arc::new(Inner {
            state: Mutex::new(Shared {
                sessions: Vec::new(),
                config: expanded.clone(),
                given: Arc::new(Mutex::new(config.clone())),
                found: BTreeMap::new(),
                discovery: None,
                next_peer: 0,
                rib_tx: Some(rib_tx),
                rib: Some(rib),
                listener: None,
                listen_socket: None,
                local_port: None,
            }),
        });
        let handle = SpeakerHandle { inner };
        handle.listen(config.listen).await?;
        {
            let mut st = handle.lock();
            for n in &expanded.neighbors {
                start_session(&mut st, n.clone());
            }
        }
        handle.discover();
        info!(neighbors = config.neighbors.len(), "speaker started");
        Ok(handle)
    }
}

struct Inner {
    state: Mutex<Shared>,
}

struct Shared {
    sessions: Vec<SessionHandle>,
    /// What the sessions run with: `given` with its interface neighbours
    /// expanded for the peers in `found`.
    config: SpeakerConfig,
    /// The configuration as given; shared with the discovery filter.
    given: Arc<Mutex<SpeakerConfig>>,
    /// Peers neighbour discovery found: interface -> link-local address.
    found: BTreeMap<String, Ipv6Addr>,
    /// Router Advertisements out and peers in on the interfaces of
    /// interface neighbours, and the task that applies what it finds.
    discovery: Option<(nd::InterfaceWatch, JoinHandle<()>)>,
    next_peer: u32,
    rib_tx: Option<mpsc::Sender<RibInput>>,
    rib: Option<RibHandle>,
    listener: Option<JoinHandle<()>>,
    /// The listening socket, kept to update its TCP MD5 keys on reload.
    listen_socket: Option<Arc<TcpListener>>,
    local_port: Option<u16>,
}

/// Installs on the listening socket the RFC 2385 key of every neighbour
/// that has one, and removes the keys of neighbours in `removed`, so a
/// signed SYN from a configured peer gets in and nothing else changes.
fn apply_md5_keys(
    listener: &TcpListener,
    neighbors: &[NeighborConfig],
    removed: &[NeighborConfig],
) {
    let v6 = listener.local_addr().map(|a| a.is_ipv6()).unwrap_or(true);
    for n in removed.iter().filter(|n| n.password.is_some()) {
        let _ = crate::sockopt::set_md5_key(listener, v6, n.address, &[]);
    }
    for n in neighbors {
        if let Some(key) = &n.password {
            if let Err(e) = crate::sockopt::set_md5_key(listener, v6, n.address, key.0.as_bytes()) {
                warn!(neighbor = %n.address, error = %e, "TCP MD5 key (RFC 2385) could not be set on the listener");
            }
        }
    }
}

/// Starts one neighbour's session. `PeerId(n)` is handed out in
/// configuration order, so at start it equals the neighbour's index.
fn start_session(st: &mut Shared, n: NeighborConfig) {
    let Some(rib_tx) = st.rib_tx.clone() else {
        return;
    };
    let peer = PeerId(st.next_peer);
    st.next_peer += 1;
    let mut cfg = SessionConfig::new(peer, n, st.config.asn, st.config.router_id);
    cfg.events = st.rib.as_ref().map(|r| r.watch_sender().clone());
    st.sessions.push(spawn_session(cfg, rib_tx));
}

/// The fields that shape a session; a change in any of them restarts it.
/// Policies, max-prefix and next-hop form are the RIB's and apply live.
fn session_key(n: &NeighborConfig) -> impl PartialEq + '_ {
    (
        n.address,
        &n.interface,
        n.remote_as,
        n.port,
        &n.families,
        n.extended_next_hop,
        n.passive,
        n.hold_time,
        n.connect_retry,
        &n.password,
        n.ttl_security,
    )
}

fn same_neighbor(a: &NeighborConfig, b: &NeighborConfig) -> bool {
    a.address == b.address && a.interface == b.interface
}

/// Does an accepted connection from `remote` belong to `n`? A link-local
/// peer must also come in over the configured interface.
fn matches_peer(n: &NeighborConfig, remote: &SocketAddr) -> bool {
    let ip = canonical(remote.ip());
    if ip != n.address {
        return false;
    }
    match (remote, n.address) {
        (SocketAddr::V6(v6), IpAddr::V6(a)) if a.is_unicast_link_local() => {
            n.interface.as_deref().and_then(if_index) == Some(v6.scope_id())
        }
        _ => true,
    }
}

/// Handle to a running speaker; cheap to clone.
#[derive(Clone)]
pub struct SpeakerHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SpeakerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpeakerHandle")
    }
}

impl SpeakerHandle {
    /// Starts neighbour discovery if some neighbour peers by interface
    /// and it is not running yet. The filter reads the given config, so a
    /// reload that adds or changes interface neighbours takes effect at
    /// the next interface scan.
    fn discover(&self) {
        let mut st = self.lock();
        let wanted = st
            .given
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .neighbors
            .iter()
            .any(NeighborConfig::is_unnumbered);
        if !wanted || st.discovery.is_some() {
            return;
        }
        let given = st.given.clone();
        let watch = nd::InterfaceWatch::start(
            move |ifname| wants_interface(&given.lock().unwrap_or_else(|p| p.into_inner()), ifname),
            nd::NdConfig::default(),
        );
        let mut rx = watch.peers();
        let weak = Arc::downgrade(&self.inner);
        let task = tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let found = rx.borrow_and_update().clone();
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let h = SpeakerHandle { inner };
                info!(peers = ?found, "interface peers found");
                let expanded = {
                    let mut st = h.lock();
                    st.found = found;
                    let given = st.given.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    expand_unnumbered(&given, &st.found)
                };
                h.apply(expanded).await;
            }
        });
        st.discovery = Some((watch, task));
    }

    /// Hands `stream` to the session of the neighbour it comes from;
    /// gives it back when there is none.
    fn dispatch(&self, stream: TcpStream, remote: &SocketAddr) -> Option<TcpStream> {
        let st = self.lock();
        match st
            .sessions
            .iter()
            .find(|s| matches_peer(&s.neighbor, remote))
        {
            Some(s) => {
                s.incoming(stream);
                None
            }
            None => Some(stream),
        }
    }

    /// A link-local source on an interface some interface neighbour
    /// names: possibly a peer neighbour discovery is about to report.
    fn may_be_interface_peer(&self, remote: &SocketAddr) -> bool {
        let SocketAddr::V6(v6) = remote else {
            return false;
        };
        if !v6.ip().is_unicast_link_local() || v6.scope_id() == 0 {
            return false;
        }
        let given = self.lock().given.clone();
        let given = given.lock().unwrap_or_else(|p| p.into_inner());
        nd::interfaces::interfaces()
            .iter()
            .any(|(ix, name)| *ix == v6.scope_id() && wants_interface(&given, name))
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic elsewhere must not take the control API down with it.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The port the listener is bound to (useful with port 0 in tests).
    pub fn local_port(&self) -> Option<u16> {
        self.lock().local_port
    }

    async fn listen(&self, addr: Option<SocketAddr>) -> Result<(), BgpError> {
        let old = self.lock().listener.take();
        if let Some(t) = old {
            t.abort();
        }
        let Some(addr) = addr else {
            self.lock().local_port = None;
            return Ok(());
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| BgpError::Listen { addr, source })?;
        let port = listener.local_addr().ok().map(|a| a.port());
        // GTSM (RFC 5082) is judged on the SYN's hop limit (see `incoming`).
        if let Err(e) = crate::sockopt::save_syn(&listener) {
            warn!(error = %e, "cannot keep SYN headers; GTSM neighbours will be refused");
        }
        let listener = Arc::new(listener);
        apply_md5_keys(&listener, &self.lock().config.neighbors, &[]);
        info!(%addr, "listening");
        let weak = Arc::downgrade(&self.inner);
        let listener_keys = listener.clone();
        let task = tokio::spawn(async move {
            loop {
                let (stream, remote) = match listener.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: do not spin.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let h = SpeakerHandle { inner };
                let Some(stream) = h.dispatch(stream, &remote) else {
                    continue;
                };
                if h.may_be_interface_peer(&remote) {
                    // Its RA and ours cross: the session for this peer is
                    // being started. Hold the connection a moment rather
                    // than refuse it and send both sides into back-off.
                    let h = h.clone();
                    tokio::spawn(async move {
                        let mut stream = Some(stream);
                        for _ in 0..PARK_TRIES {
                            tokio::time::sleep(PARK_STEP).await;
                            match stream.take().and_then(|s| h.dispatch(s, &remote)) {
                                None => return,
                                Some(s) => stream = Some(s),
                            }
                        }
                        info!(%remote, "connection from unknown peer closed");
                    });
                } else {
                    info!(%remote, "connection from unknown peer closed");
                }
            }
        });
        let mut st = self.lock();
        st.listener = Some(task);
        st.listen_socket = Some(listener_keys);
        st.local_port = port;
        Ok(())
    }

    /// Every configured neighbour with its session state and RIB counts.
    pub async fn neighbors(&self) -> Vec<NeighborStatus> {
        let (snap, rib) = {
            let st = self.lock();
            let snap: Vec<_> = st
                .sessions
                .iter()
                .map(|s| (s.peer, s.neighbor.clone(), s.status()))
                .collect();
            (snap, st.rib.clone())
        };
        let mut out = Vec::with_capacity(snap.len());
        for (peer, n, s) in snap {
            let counts = match &rib {
                Some(r) => r.peer_counts(peer).await,
                None => PeerCounts::default(),
            };
            out.push(NeighborStatus {
                peer,
                address: n.address,
                interface: n.interface.clone(),
                remote_as: n.remote_as,
                description: n.description.clone(),
                state: s.state,
                uptime: s.established_at.map(|t| t.elapsed().as_secs()),
                local_address: s.local_address,
                remote_address: s.remote_address,
                negotiated: s.negotiated,
                counts,
                updates_received: s.updates_received,
                updates_sent: s.updates_sent,
                last_error: s.last_error,
                last_error_at: s
                    .last_error_at
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs()),
            });
        }
        out
    }

    /// Every path in the RIB.
    pub async fn routes(&self) -> Vec<RouteStatus> {
        let rib = self.lock().rib.clone();
        match rib {
            Some(r) => r.routes().await,
            None => Vec::new(),
        }
    }

    /// Like `routes`, bounded: a full table as one reply would cost
    /// hundreds of MB.
    pub async fn routes_filtered(&self, filter: crate::RouteFilter) -> Vec<RouteStatus> {
        let rib = self.lock().rib.clone();
        match rib {
            Some(r) => r.routes_filtered(filter).await,
            None => Vec::new(),
        }
    }

    /// Originates `prefix` at run time (`via6ctl announce`).
    pub async fn announce(
        &self,
        prefix: ipnet::IpNet,
        communities: Vec<u32>,
    ) -> Result<crate::Announced, BgpError> {
        let rib = self.lock().rib.clone().ok_or(BgpError::Stopped)?;
        rib.announce(prefix, communities)
            .await
            .ok_or(BgpError::Stopped)
    }

    /// Ends a run-time announcement (`via6ctl withdraw`).
    pub async fn withdraw(&self, prefix: ipnet::IpNet) -> Result<(), BgpError> {
        let rib = self.lock().rib.clone().ok_or(BgpError::Stopped)?;
        rib.withdraw(prefix).await.ok_or(BgpError::Stopped)??;
        Ok(())
    }

    /// Session and route events from now on (`via6ctl watch`); `None`
    /// once the speaker is shut down.
    pub fn watch(&self) -> Option<tokio::sync::broadcast::Receiver<crate::WatchEvent>> {
        self.lock()
            .rib
            .as_ref()
            .map(|r| r.watch_sender().subscribe())
    }

    /// Cease/4 (administrative reset) and start again.
    pub async fn reset(&self, addr: IpAddr) -> Result<(), BgpError> {
        let cmd = self.commander(addr)?;
        if cmd.reset(None).await {
            Ok(())
        } else {
            Err(BgpError::Stopped)
        }
    }

    /// Like [`SpeakerHandle::reset`], as a Hard Reset (RFC 8538): the
    /// session's routes go at once on both sides, graceful restart or not.
    pub async fn reset_hard(&self, addr: IpAddr) -> Result<(), BgpError> {
        let cmd = self.commander(addr)?;
        if cmd.hard_reset(None).await {
            Ok(())
        } else {
            Err(BgpError::Stopped)
        }
    }

    fn commander(&self, addr: IpAddr) -> Result<crate::session::SessionCommander, BgpError> {
        let st = self.lock();
        st.sessions
            .iter()
            .find(|s| s.neighbor.address == addr)
            .map(|s| s.commander())
            .ok_or(BgpError::UnknownNeighbor(addr))
    }

    /// The BFD session to `addr` (on `interface`, for a link-local one)
    /// went Down: its BGP session closes with Cease/10 (RFC 9384) and its
    /// routes leave the RIB (RFC 5882 §4.2); with `restart`, where
    /// graceful restart was negotiated, its routes stay stale instead
    /// (RFC 5882 §4.3.2, for a peer whose BFD shares its control plane's
    /// fate).
    pub async fn bfd_down(
        &self,
        addr: IpAddr,
        interface: Option<&str>,
        restart: bool,
    ) -> Result<(), BgpError> {
        let cmds: Vec<_> = {
            let st = self.lock();
            st.sessions
                .iter()
                .filter(|s| {
                    s.neighbor.address == addr
                        && (interface.is_none() || s.neighbor.interface.as_deref() == interface)
                })
                .map(|s| s.commander())
                .collect()
        };
        if cmds.is_empty() {
            return Err(BgpError::UnknownNeighbor(addr));
        }
        for c in cmds {
            if !c.bfd_down(restart).await {
                return Err(BgpError::Stopped);
            }
        }
        Ok(())
    }

    /// Asks the peer to resend its routes (ROUTE-REFRESH, RFC 2918).
    pub async fn refresh(&self, addr: IpAddr) -> Result<(), BgpError> {
        let cmd = {
            let st = self.lock();
            st.sessions
                .iter()
                .find(|s| s.neighbor.address == addr)
                .map(|s| s.commander())
        };
        let cmd = cmd.ok_or(BgpError::UnknownNeighbor(addr))?;
        if cmd.refresh().await {
            Ok(())
        } else {
            Err(BgpError::RefreshNotPossible(addr))
        }
    }

    /// Applies a new configuration: removed neighbours get Cease/3 (peer
    /// de-configured), neighbours whose session parameters changed get
    /// Cease/6 and start again, new ones start, the rest stay up; the RIB
    /// re-applies policies (soft reconfiguration). Interface neighbours
    /// are expanded for the peers found so far.
    pub async fn reconfigure(&self, new: SpeakerConfig) {
        let expanded = {
            let st = self.lock();
            *st.given.lock().unwrap_or_else(|p| p.into_inner()) = new.clone();
            expand_unnumbered(&new, &st.found)
        };
        self.apply(expanded).await;
        self.discover();
    }

    /// [`SpeakerHandle::reconfigure`] with interface neighbours already
    /// expanded.
    async fn apply(&self, new: SpeakerConfig) {
        let (to_stop, rib, listen_changed) = {
            let mut st = self.lock();
            let identity_changed = st.config.asn != new.asn || st.config.router_id != new.router_id;
            let listen_changed = st.config.listen != new.listen;
            let mut to_stop = Vec::new();
            let mut kept = Vec::new();
            for mut s in std::mem::take(&mut st.sessions) {
                match new.neighbors.iter().find(|n| same_neighbor(n, &s.neighbor)) {
                    None => to_stop.push((s, cease::PEER_DECONFIGURED)),
                    Some(n) if identity_changed || session_key(n) != session_key(&s.neighbor) => {
                        to_stop.push((s, cease::OTHER_CONFIG_CHANGE))
                    }
                    Some(n) => {
                        s.neighbor = n.clone();
                        kept.push(s);
                    }
                }
            }
            st.sessions = kept;
            (to_stop, st.rib.clone(), listen_changed)
        };
        for (s, sub) in to_stop {
            info!(neighbor = %s.neighbor.address, subcode = sub, "stopping session for new configuration");
            // Deconfigured or changed: the peer must drop our routes
            // (Hard Reset where it would otherwise keep them, RFC 8538).
            s.stop_as(StopKind::Shutdown, cease_notification(sub, None))
                .await;
        }
        if let Some(r) = &rib {
            r.reconfigure(new.clone()).await;
        }
        if listen_changed {
            if let Err(e) = self.listen(new.listen).await {
                warn!(error = %e, "new listen address refused; not listening");
            }
        }
        let mut st = self.lock();
        let removed: Vec<NeighborConfig> = st
            .config
            .neighbors
            .iter()
            .filter(|o| {
                !new.neighbors
                    .iter()
                    .any(|n| same_neighbor(n, o) && n.password == o.password)
            })
            .cloned()
            .collect();
        st.config = new.clone();
        if let Some(l) = &st.listen_socket {
            apply_md5_keys(l, &new.neighbors, &removed);
        }
        for n in &new.neighbors {
            if !st.sessions.iter().any(|s| same_neighbor(&s.neighbor, n)) {
                start_session(&mut st, n.clone());
            }
        }
    }

    /// Cease/2 (administrative shutdown) to every peer, then stop the
    /// listener and let the RIB task finish (it hands its last changes to
    /// the FIB and closes the FIB channel).
    pub async fn shutdown(&self) {
        self.stop_all(StopKind::Shutdown, "via6d shutting down")
            .await;
    }

    /// Stops every session so that its peer keeps our routes while we
    /// restart (graceful restart, RFC 4724 §4, RFC 8538): the kernel
    /// routes stay, and the next start picks them up.
    pub async fn shutdown_for_restart(&self) {
        self.stop_all(StopKind::Restart, "via6d restarting").await;
    }

    async fn stop_all(&self, kind: StopKind, text: &str) {
        let sessions = {
            let mut st = self.lock();
            if let Some(t) = st.listener.take() {
                t.abort();
            }
            if let Some((_watch, task)) = st.discovery.take() {
                task.abort();
            }
            std::mem::take(&mut st.sessions)
        };
        let mut stops = Vec::new();
        for s in sessions {
            stops.push(tokio::spawn(s.stop_as(
                kind,
                cease_notification(cease::ADMIN_SHUTDOWN, Some(text)),
            )));
        }
        for t in stops {
            let _ = t.await;
        }
        let mut st = self.lock();
        st.rib_tx = None;
        st.rib = None;
        info!("speaker stopped");
    }
}

#[cfg(test)]
mod tests;
