//! Bidirectional Forwarding Detection for via6: RFC 5880 asynchronous
//! mode over RFC 5881 single-hop UDP, so that a neighbour that stops
//! forwarding while its link stays up is noticed in well under a second
//! instead of at the BGP hold timer.
//!
//! [`packet`] and [`fsm`] are pure (bytes and events in, values and
//! actions out); [`Bfd`] is the thin socket edge that runs every session
//! on a thread of its own.

#![deny(unsafe_code)]

mod driver;
pub mod fsm;
pub mod packet;
pub mod sockets;
#[allow(unsafe_code)] // registering a socket with tokio, nothing else
mod sys;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

pub use fsm::{Action, Config, Event, Jitter, Session};
pub use packet::{ControlPacket, DecodeError, Diag, State};

/// Errors of the socket edge.
#[derive(Debug, thiserror::Error)]
pub enum BfdError {
    #[error("{what}: {source}")]
    Socket {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("interface {0:?} does not exist")]
    NoInterface(String),
    #[error("link-local peer {0} needs an interface")]
    LinkLocalNeedsInterface(IpAddr),
    #[error("detect multiplier 0")]
    ZeroDetectMult,
    #[error("a session with {0} on that interface exists already")]
    Duplicate(IpAddr),
    #[error("the BFD thread is gone")]
    Stopped,
    #[error("cannot start the BFD thread: {0}")]
    Thread(std::io::Error),
}

/// One neighbour to run a session with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    pub peer: IpAddr,
    /// Required for a link-local peer (RFC 5881 §4: sent and received on
    /// that interface only).
    pub interface: Option<String>,
    /// Source address; the kernel chooses when absent.
    pub local: Option<IpAddr>,
    pub config: Config,
}

/// How a session is named: its peer and the interface index (0 when not
/// bound to an interface).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey {
    pub peer: IpAddr,
    pub ifindex: u32,
}

/// A session's state as `via6ctl bfd` and the metrics show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub peer: IpAddr,
    pub interface: Option<String>,
    pub state: State,
    pub remote_state: State,
    pub local_diag: Diag,
    pub remote_diag: Diag,
    pub local_discr: u32,
    pub remote_discr: u32,
    pub config: Config,
    /// Unjittered transmit interval in force.
    pub tx_interval: Duration,
    pub detection_time: Duration,
    /// Time since the session came Up, while it is Up.
    pub uptime: Option<Duration>,
    /// The family's one source port, shared by its sessions.
    pub source_port: u16,
    /// The source address packets go from (None: the kernel's choice).
    pub local: Option<IpAddr>,
    pub tx_packets: u64,
    pub rx_packets: u64,
    pub tx_errors: u64,
}

/// A session changed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    pub peer: IpAddr,
    pub interface: Option<String>,
    pub from: State,
    pub to: State,
    pub diag: Diag,
    /// The remote state at the change: a Down caused by the remote's
    /// AdminDown is not a path failure (RFC 5882 §3.2).
    pub remote: State,
    /// The remote's C bit, as last received: set, its BFD does not share
    /// fate with its control plane, so a Down is a forwarding failure and
    /// never a restart (RFC 5882 §4.3.2).
    pub remote_control_plane_independent: bool,
    pub at: Instant,
}

/// Packets refused before reaching a session, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Matched to a session.
    pub rx_packets: u64,
    /// RFC 5881 §5: TTL or hop limit not 255.
    pub rx_bad_ttl: u64,
    /// RFC 5880 §6.8.6 checks failed.
    pub rx_bad_packet: u64,
    /// No session for that discriminator or source.
    pub rx_no_session: u64,
    /// Matched by discriminator but not from the session's peer on its
    /// interface (single hop, RFC 5881 §3/§4).
    pub rx_wrong_source: u64,
}

/// Handle to the BFD thread. Dropping it (or [`Bfd::stop`]) ends the
/// thread after sending AdminDown on every session.
#[derive(Debug)]
pub struct Bfd {
    commands: mpsc::Sender<driver::Command>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bfd {
    /// Opens the receive sockets on `port` (3784, [`sockets::CONTROL_PORT`],
    /// except in tests) in the calling thread's network namespace and
    /// starts the thread. State changes arrive on the returned receiver.
    pub fn start(port: u16) -> Result<(Bfd, mpsc::UnboundedReceiver<StateChange>), BfdError> {
        let (changes_tx, changes_rx) = mpsc::unbounded_channel();
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("bfd".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(BfdError::Thread(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    match driver::Driver::new(port, changes_tx) {
                        Ok(d) => {
                            let _ = ready_tx.send(Ok(()));
                            d.run(cmd_rx).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(BfdError::Thread)?;
        ready_rx.recv().map_err(|_| BfdError::Stopped)??;
        Ok((
            Bfd {
                commands: cmd_tx,
                thread: Some(thread),
            },
            changes_rx,
        ))
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> driver::Command,
    ) -> Result<T, BfdError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| BfdError::Stopped)?;
        rx.await.map_err(|_| BfdError::Stopped)
    }

    /// Starts a session; it begins sending at once.
    pub async fn add(&self, spec: PeerSpec) -> Result<PeerKey, BfdError> {
        self.ask(|r| driver::Command::Add(spec, r)).await?
    }

    /// Ends a session, telling the peer AdminDown first.
    pub async fn remove(&self, key: PeerKey) -> Result<(), BfdError> {
        self.commands
            .send(driver::Command::Remove(key))
            .await
            .map_err(|_| BfdError::Stopped)
    }

    /// New timers (negotiated with a Poll sequence while Up, RFC 5880
    /// §6.8.3, so the session stays Up) and source address for a running
    /// session.
    pub async fn update(
        &self,
        key: PeerKey,
        config: Config,
        local: Option<IpAddr>,
    ) -> Result<(), BfdError> {
        self.commands
            .send(driver::Command::Update(
                key,
                driver::Update { config, local },
            ))
            .await
            .map_err(|_| BfdError::Stopped)
    }

    /// Administratively down (`true`) or up again (RFC 5880 §6.8.16).
    pub async fn set_admin_down(&self, key: PeerKey, down: bool) -> Result<(), BfdError> {
        self.commands
            .send(driver::Command::Admin(key, down))
            .await
            .map_err(|_| BfdError::Stopped)
    }

    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, BfdError> {
        let mut v = self.ask(driver::Command::List).await?;
        v.sort_by(|a, b| (a.peer, &a.interface).cmp(&(b.peer, &b.interface)));
        Ok(v)
    }

    pub async fn counters(&self) -> Result<Counters, BfdError> {
        self.ask(driver::Command::Counters).await
    }

    /// Ends the thread and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let (closed, _) = mpsc::channel(1);
        self.commands = closed;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Bfd {
    fn drop(&mut self) {
        self.shutdown();
    }
}
