//! The outside of a session task: its configuration, the commands it
//! takes, the status it publishes, and the handles the speaker and the
//! control socket hold.

use super::*;

/// Everything one session task needs.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub peer: PeerId,
    pub neighbor: NeighborConfig,
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// First back-off after a failed session; doubles per failure.
    pub idle_hold_base: Duration,
    /// Cap of the back-off (RFC 4271 §8.1.1 DampPeerOscillations).
    pub idle_hold_max: Duration,
    /// RFC 9687 send hold time; `None` = 2 x the negotiated hold time
    /// (8 minutes before the OPEN or with hold time 0).
    pub send_hold: Option<Duration>,
    /// Where state changes go for watchers (`via6ctl watch`).
    pub events: Option<crate::events::WatchSender>,
}

impl SessionConfig {
    pub fn new(peer: PeerId, neighbor: NeighborConfig, local_as: u32, router_id: Ipv4Addr) -> Self {
        SessionConfig {
            peer,
            neighbor,
            local_as,
            router_id,
            idle_hold_base: Duration::from_secs(1),
            idle_hold_max: Duration::from_secs(120),
            send_hold: None,
            events: None,
        }
    }

    pub(super) fn fsm_config(&self) -> FsmConfig {
        let n = &self.neighbor;
        FsmConfig {
            identity: LocalIdentity {
                local_as: self.local_as,
                remote_as: n.remote_as,
                router_id: self.router_id,
            },
            open: build_open(n, self.local_as, self.router_id, n.address.is_ipv6()),
            passive: n.passive,
            connect_retry_secs: secs(n.connect_retry),
            idle_hold_base_secs: secs(self.idle_hold_base),
            idle_hold_max_secs: secs(self.idle_hold_max),
        }
    }
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX).max(1)
}

/// Requests to a session task.
#[derive(Debug)]
pub enum SessionCommand {
    /// The listener accepted a connection from this neighbour.
    Incoming(TcpStream),
    /// Cease/4 (RFC 4486), with an RFC 9003 message, then start again.
    Reset(Option<String>),
    /// The same as a Hard Reset (RFC 8538 §3) where the peer set N: both
    /// sides drop the session's routes at once.
    HardReset(Option<String>),
    /// Send ROUTE-REFRESH (RFC 2918) for every negotiated family; the
    /// answer says whether one was sent.
    Refresh(oneshot::Sender<bool>),
    /// Send this NOTIFICATION (a Cease), close, and end the task.
    Stop(Notification),
    /// Stop with this Cease, as graceful restart wants it for `StopKind`
    /// (Hard Reset, the Cease, or no NOTIFICATION at all).
    StopAs(crate::graceful::StopKind, Notification),
    /// The BFD session for this neighbour went Down (RFC 5882 §4.2):
    /// Cease/10 (RFC 9384) at once if connected, then the usual back-off;
    /// `restart`: the peer may be restarting (its C bit clear, and the
    /// neighbour configured so), which graceful restart covers where
    /// negotiated (RFC 5882 §4.3.2).
    BfdDown { restart: bool },
}

/// What `via6ctl neighbors` shows of one session.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionStatus {
    pub state: State,
    #[serde(skip)]
    pub established_at: Option<Instant>,
    pub negotiated: Option<Negotiated>,
    pub last_error: Option<String>,
    /// When `last_error` happened (wall clock, for its age).
    #[serde(skip)]
    pub last_error_at: Option<SystemTime>,
    pub local_address: Option<SocketAddr>,
    pub remote_address: Option<SocketAddr>,
    pub updates_received: u64,
    pub updates_sent: u64,
}

impl SessionStatus {
    pub(super) fn idle() -> Self {
        SessionStatus {
            state: State::Idle,
            established_at: None,
            negotiated: None,
            last_error: None,
            last_error_at: None,
            local_address: None,
            remote_address: None,
            updates_received: 0,
            updates_sent: 0,
        }
    }
}

/// The speaker's grip on one session task.
#[derive(Debug)]
pub struct SessionHandle {
    pub peer: PeerId,
    pub neighbor: NeighborConfig,
    pub(super) cmd: mpsc::Sender<SessionCommand>,
    pub(super) status: watch::Receiver<SessionStatus>,
    pub(super) counters: Arc<Counters>,
    pub(super) task: JoinHandle<()>,
}

impl SessionHandle {
    pub fn status(&self) -> SessionStatus {
        let mut s = self.status.borrow().clone();
        s.updates_received = self.counters.updates_received.load(Ordering::Relaxed);
        s.updates_sent = self.counters.updates_sent.load(Ordering::Relaxed);
        s
    }

    /// Waits until the session reaches `state` or `limit` passes.
    pub async fn wait_for(&mut self, state: State, limit: Duration) -> bool {
        let fut = self.status.wait_for(|s| s.state == state);
        matches!(tokio::time::timeout(limit, fut).await, Ok(Ok(_)))
    }

    /// Hands over an accepted connection; it is closed when the session
    /// task is too busy to take it.
    pub fn incoming(&self, stream: TcpStream) {
        let _ = self.cmd.try_send(SessionCommand::Incoming(stream));
    }

    /// A sender for commands that can be used without holding the handle.
    pub fn commander(&self) -> SessionCommander {
        SessionCommander {
            cmd: self.cmd.clone(),
        }
    }

    pub async fn reset(&self, message: Option<String>) -> bool {
        self.commander().reset(message).await
    }

    pub async fn refresh(&self) -> bool {
        self.commander().refresh().await
    }

    /// Sends `n`, closes, and waits (bounded) for the task to end.
    pub async fn stop(self, n: Notification) {
        self.stop_with(SessionCommand::Stop(n)).await;
    }

    /// Stops for `kind` with the Cease `n`, told the way graceful restart
    /// needs it (see [`crate::graceful::stop_notification`]).
    pub async fn stop_as(self, kind: crate::graceful::StopKind, n: Notification) {
        self.stop_with(SessionCommand::StopAs(kind, n)).await;
    }

    async fn stop_with(self, c: SessionCommand) {
        let _ = self.cmd.send(c).await;
        let abort = self.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

/// Message counters a session shares with its handle.
#[derive(Debug, Default)]
pub struct Counters {
    pub updates_received: AtomicU64,
    pub updates_sent: AtomicU64,
}

/// Commands to one session, detached from its handle.
#[derive(Debug, Clone)]
pub struct SessionCommander {
    cmd: mpsc::Sender<SessionCommand>,
}

impl SessionCommander {
    /// Cease/4 then start again; false when the session is gone.
    pub async fn reset(&self, message: Option<String>) -> bool {
        self.cmd.send(SessionCommand::Reset(message)).await.is_ok()
    }

    /// Cease/4 as a Hard Reset, then start again.
    pub async fn hard_reset(&self, message: Option<String>) -> bool {
        self.cmd
            .send(SessionCommand::HardReset(message))
            .await
            .is_ok()
    }

    /// The neighbour's BFD session went Down (`restart`: see
    /// [`SessionCommand::BfdDown`]); false when the session is gone.
    pub async fn bfd_down(&self, restart: bool) -> bool {
        self.cmd
            .send(SessionCommand::BfdDown { restart })
            .await
            .is_ok()
    }

    /// ROUTE-REFRESH for every negotiated family; false when not
    /// Established or the peer lacks the capability.
    pub async fn refresh(&self) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(SessionCommand::Refresh(tx)).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}
