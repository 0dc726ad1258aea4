//! Wiring: the speaker, the FIB sync, the control socket, the metrics
//! listener and the signals. Data flows one way: speaker -> FIB.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::bfd_sessions;
use crate::config::{self, Config};
use crate::control::protocol::{
    BfdRow, ErrorReply, NeighborRow, ReplyBody, Request, Response, StatusReport,
};
use crate::control::{self, convert};
use crate::metrics;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("FIB: {0}")]
    Fib(#[from] fib::FibError),
    #[error("BGP: {0}")]
    Bgp(#[from] bgp::BgpError),
    #[error(transparent)]
    Control(#[from] control::ControlError),
    #[error("signals: {0}")]
    Signal(std::io::Error),
    #[error("metrics listener {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// What the control socket and the metrics page read from.
pub struct Parts {
    pub speaker: bgp::SpeakerHandle,
    pub fib: Option<fib::Fib>,
    /// The configuration in force (replaced on reload).
    pub config: std::sync::Mutex<Arc<Config>>,
    /// `via6ctl shutdown`: stop for good.
    pub shutdown: tokio::sync::Notify,
    /// Empty until a neighbour asks for BFD.
    pub bfd: bfd_sessions::BfdCell,
}

impl Parts {
    fn config(&self) -> Arc<Config> {
        self.config
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// `via6ctl status`: who we are, where we listen, and what deserves a
    /// look now (forwarding is read afresh each time).
    fn status(&self) -> StatusReport {
        let c = self.config();
        StatusReport {
            router_id: c.speaker.router_id,
            asn: c.speaker.asn,
            listen: c.speaker.listen,
            neighbors: c.speaker.neighbors.len(),
            warnings: warnings(&c),
        }
    }
}

/// The configuration's own warnings and the forwarding ones
/// (`config::forwarding_warnings`) as of now.
pub fn warnings(config: &Config) -> Vec<String> {
    let mut out = config.warnings.clone();
    out.extend(config::forwarding_warnings(
        &config.speaker,
        config::Forwarding::read(),
    ));
    out
}

/// Capacity of the RIB -> FIB sync channel, in chunks of changes.
const FIB_EVENTS: usize = 16;

/// RIB changes as FIB changes: the same prefixes and the same shared
/// next-hop sets (`bgp` and `fib` both use `nexthop::NextHopSet`), so
/// this moves fields and copies no set; `bgp` still does not depend on
/// `fib`. The two enums have the same layout, so the standard library
/// collects in place: the vector's allocation is reused too.
fn to_fib_changes(changes: Vec<bgp::RouteChange>) -> Vec<fib::FibChange> {
    changes
        .into_iter()
        .map(|c| match c {
            bgp::RouteChange::Install { prefix, next_hops } => {
                fib::FibChange::Install { prefix, next_hops }
            }
            bgp::RouteChange::Remove { prefix } => fib::FibChange::Remove { prefix },
        })
        .collect()
}

/// Feeds RIB changes to the FIB. `Fib::apply` waits while the FIB has
/// `fib::QUEUE_CHANGES` changes queued, and the RIB feels that through the
/// bounded channel: back-pressure instead of a table-sized queue.
async fn sync_fib(mut fib_rx: mpsc::Receiver<bgp::FibEvent>, fib: Option<fib::Fib>) {
    while let Some(event) = fib_rx.recv().await {
        let Some(fib) = &fib else { continue };
        match event {
            bgp::FibEvent::Changes(changes) => {
                if let Err(e) = fib.apply(to_fib_changes(changes)).await {
                    error!(error = %e, "FIB update failed");
                }
            }
            bgp::FibEvent::InitialTablesIn => fib.initial_sync_done().await,
        }
    }
}

/// Runs until SIGTERM or SIGINT. SIGHUP reloads `config_path`.
pub async fn run(config_path: PathBuf, mut config: Config) -> Result<(), DaemonError> {
    let mut signals = Signals::register()?;
    let socket_path = config.raw.control_socket.clone();
    let listener = control::bind(&socket_path).await?;
    let (fib, restarting) = start_fib(&mut config).await?;
    let (fib_tx, fib_rx) = mpsc::channel::<bgp::FibEvent>(FIB_EVENTS);
    let speaker = start_speaker(&config, fib_tx).await?;
    let fib_sync = tokio::spawn(sync_fib(fib_rx, fib.clone()));
    let services = Services::start(&config, &speaker, &fib, listener).await?;
    let mut reload = Reload {
        path: &config_path,
        fib: fib.is_some(),
        restarting,
        current: config,
    };
    let for_good = wait_for_stop(&mut signals, &speaker, &services, &mut reload).await;
    services.abort();
    stop(&speaker, fib, fib_sync, for_good).await;
    remove_socket(&socket_path);
    info!("via6d stopped");
    Ok(())
}

/// The signals the daemon answers, registered before anything starts so
/// that none is missed.
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    fn register() -> Result<Self, DaemonError> {
        let on = |kind| signal(kind).map_err(DaemonError::Signal);
        Ok(Signals {
            term: on(SignalKind::terminate())?,
            int: on(SignalKind::interrupt())?,
            hup: on(SignalKind::hangup())?,
        })
    }
}

/// Starts the FIB, if configured, and tells whether our routes from a
/// previous run are still in the kernel: then we are restarting (graceful
/// restart, RFC 4724 §4.1), and the neighbours' settings say so.
async fn start_fib(config: &mut Config) -> Result<(Option<fib::Fib>, bool), DaemonError> {
    let fib = match &config.fib {
        Some(fc) => Some(fib::Fib::start(fc.clone()).await?),
        None => None,
    };
    let restarting = match &fib {
        Some(f) => f.status().await.stale > 0,
        None => false,
    };
    graceful_restart_facts(&mut config.speaker, fib.is_some(), restarting);
    if restarting {
        info!("our routes are still in the kernel: restarting gracefully");
    }
    Ok((fib, restarting))
}

async fn start_speaker(
    config: &Config,
    fib_tx: mpsc::Sender<bgp::FibEvent>,
) -> Result<bgp::SpeakerHandle, DaemonError> {
    let speaker = bgp::Speaker::start(config.speaker.clone(), fib_tx).await?;
    info!(
        asn = config.speaker.asn,
        router_id = %config.speaker.router_id,
        neighbors = config.speaker.neighbors.len(),
        "via6d started"
    );
    Ok(speaker)
}

/// The tasks beside the speaker and the FIB sync, and what they share;
/// aborted at shutdown, before the speaker stops.
struct Services {
    parts: Arc<Parts>,
    /// The configuration the BFD task follows, replaced on reload.
    raw_tx: tokio::sync::watch::Sender<config::RawConfig>,
    control: JoinHandle<()>,
    bfd: JoinHandle<()>,
    metrics: Option<JoinHandle<()>>,
}

impl Services {
    /// BFD, the control socket and, if configured, the metrics listener.
    async fn start(
        config: &Config,
        speaker: &bgp::SpeakerHandle,
        fib: &Option<fib::Fib>,
        listener: UnixListener,
    ) -> Result<Self, DaemonError> {
        let bfd_cell = bfd_sessions::BfdCell::default();
        let (raw_tx, raw_rx) = tokio::sync::watch::channel(config.raw.clone());
        let bfd = tokio::spawn(bfd_sessions::run(bfd_cell.clone(), speaker.clone(), raw_rx));
        for w in config::forwarding_warnings(&config.speaker, config::Forwarding::read()) {
            warn!("{w}");
        }
        let parts = Arc::new(Parts {
            speaker: speaker.clone(),
            fib: fib.clone(),
            config: std::sync::Mutex::new(Arc::new(config.clone())),
            shutdown: tokio::sync::Notify::new(),
            bfd: bfd_cell,
        });
        let control = tokio::spawn(serve_control(listener, parts.clone()));
        let metrics = match &config.raw.metrics {
            Some(m) => {
                let listener = tokio::net::TcpListener::bind(m.listen)
                    .await
                    .map_err(|source| DaemonError::Metrics {
                        addr: m.listen,
                        source,
                    })?;
                info!(listen = %m.listen, "metrics listening");
                Some(tokio::spawn(metrics::serve(listener, parts.clone())))
            }
            None => None,
        };
        Ok(Services {
            parts,
            raw_tx,
            control,
            bfd,
            metrics,
        })
    }

    fn abort(&self) {
        self.control.abort();
        self.bfd.abort();
        if let Some(t) = &self.metrics {
            t.abort();
        }
    }
}

/// What SIGHUP needs: the file, the graceful-restart facts found at start
/// (a reload changes no neighbour through them), and the configuration in
/// force.
struct Reload<'a> {
    path: &'a Path,
    fib: bool,
    restarting: bool,
    current: Config,
}

impl Reload<'_> {
    /// Reads the file again and applies what can change while running; a
    /// file that does not load leaves everything as it is.
    async fn apply(&mut self, speaker: &bgp::SpeakerHandle, services: &Services) {
        let mut new = match config::load(self.path) {
            Ok(new) => new,
            Err(e) => {
                error!(error = %e, "reload refused; the running configuration stays");
                return;
            }
        };
        graceful_restart_facts(&mut new.speaker, self.fib, self.restarting);
        if new.raw.control_socket != self.current.raw.control_socket {
            warn!("control-socket changes take effect at restart only");
        }
        let fixed = |c: &Config| {
            c.fib
                .as_ref()
                .map(|f| (f.table, f.protocol, f.metric, f.source_address))
        };
        if fixed(&new) != fixed(&self.current) {
            warn!("fib settings change at restart only; the rest of the new config is applied");
        }
        speaker.reconfigure(new.speaker.clone()).await;
        services.raw_tx.send_replace(new.raw.clone());
        info!(file = %self.path.display(), "configuration reloaded");
        for w in warnings(&new) {
            warn!("{w}");
        }
        *services
            .parts
            .config
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(new.clone());
        self.current = new;
    }
}

/// Waits for a stop, reloading on SIGHUP meanwhile. SIGTERM and SIGINT
/// stop for a restart where a peer helps (graceful restart); `via6ctl
/// shutdown` stops for good, and then this returns true.
async fn wait_for_stop(
    signals: &mut Signals,
    speaker: &bgp::SpeakerHandle,
    services: &Services,
    reload: &mut Reload<'_>,
) -> bool {
    loop {
        tokio::select! {
            _ = signals.term.recv() => { info!("SIGTERM: shutting down"); return false; }
            _ = signals.int.recv() => { info!("SIGINT: shutting down"); return false; }
            _ = services.parts.shutdown.notified() => {
                info!("shutdown requested: stopping for good");
                return true;
            }
            _ = signals.hup.recv() => reload.apply(speaker, services).await,
        }
    }
}

/// Stops the speaker and the FIB. For a restart that some peer helps
/// with, the kernel routes stay as a crash would leave them; otherwise
/// the last changes drain and the FIB removes our routes.
async fn stop(
    speaker: &bgp::SpeakerHandle,
    fib: Option<fib::Fib>,
    fib_sync: JoinHandle<()>,
    for_good: bool,
) {
    let for_restart = !for_good && fib.is_some() && some_peer_helps(speaker).await;
    if for_restart {
        info!("stopping for a restart: kernel routes kept, peers keep ours (graceful restart)");
        // The kernel keeps what it has: what the RIB makes of the
        // sessions going down must not reach it.
        fib_sync.abort();
        speaker.shutdown_for_restart().await;
    } else {
        speaker.shutdown().await;
    }
    // The speaker has dropped its side of the FIB channel: let the last
    // changes drain before the FIB cleans up.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), fib_sync).await;
    match fib {
        // Left as a crash would leave it: the next start adopts the routes.
        Some(_) if for_restart => {}
        Some(fib) => {
            if let Err(e) = fib.shutdown().await {
                error!(error = %e, "FIB cleanup failed");
            }
        }
        None => {}
    }
}

/// What graceful restart needs to know of this process: our kernel routes
/// outlive it when the FIB is ours, and `restarting` when this start found
/// them (set again on reload, so a reload changes no neighbour).
fn graceful_restart_facts(speaker: &mut bgp::SpeakerConfig, fib: bool, restarting: bool) {
    for n in &mut speaker.neighbors {
        n.graceful_restart.keeps_forwarding = fib;
        n.graceful_restart.restarting = restarting && fib;
    }
}

/// Whether some Established peer negotiated graceful restart, so that a
/// stop can be a restart it helps with (RFC 4724 §4.2).
async fn some_peer_helps(speaker: &bgp::SpeakerHandle) -> bool {
    speaker.neighbors().await.iter().any(|n| {
        n.state == bgp::fsm::State::Established
            && n.negotiated
                .as_ref()
                .is_some_and(|g| g.graceful_restart.is_some())
    })
}

fn remove_socket(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        warn!(path = %path.display(), error = %e, "could not remove control socket");
    }
}

async fn serve_control(listener: UnixListener, parts: Arc<Parts>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let parts = parts.clone();
        tokio::spawn(async move {
            let (mut read, mut write) = stream.into_split();
            let body = match control::read_request(&mut read).await {
                Ok(Ok(Request::Watch)) => {
                    watch(&parts, read, write).await;
                    return;
                }
                Ok(Ok(req)) => answer(&parts, req).await,
                Ok(Err(e)) => ReplyBody::Error(e),
                Err(_) => return,
            };
            let _ = control::write_line(&mut write, &control::reply_line(body)).await;
            let _ = write.shutdown().await;
        });
    }
}

/// `via6ctl watch`: events as lines until the client hangs up. The
/// channel is a bounded broadcast: a watcher that reads too slowly loses
/// the oldest events and gets a `lagged` line saying how many, while the
/// RIB and the sessions never wait for it.
async fn watch(
    parts: &Parts,
    read: tokio::net::unix::OwnedReadHalf,
    mut write: tokio::net::unix::OwnedWriteHalf,
) {
    let Some(rx) = parts.speaker.watch() else {
        let body = ReplyBody::Error(ErrorReply::Failed {
            message: "the speaker is shut down".into(),
        });
        let _ = control::write_line(&mut write, &control::reply_line(body)).await;
        return;
    };
    control::stream_events(rx, read, write).await;
}

async fn answer(parts: &Parts, request: Request) -> ReplyBody {
    let failed = |e: bgp::BgpError| {
        ReplyBody::Error(match e {
            bgp::BgpError::Runtime(bgp::RuntimeError::NotAnnounced(prefix)) => {
                ErrorReply::NotAnnounced { prefix }
            }
            e => ErrorReply::Failed {
                message: e.to_string(),
            },
        })
    };
    let response = match request {
        Request::Neighbors => Response::Neighbors(
            parts
                .speaker
                .neighbors()
                .await
                .into_iter()
                .map(NeighborRow::from)
                .collect(),
        ),
        Request::Routes { prefix, limit } => Response::Routes(
            parts
                .speaker
                .routes_filtered(bgp::RouteFilter {
                    prefix,
                    peer: None,
                    limit,
                })
                .await
                .into_iter()
                .filter_map(convert::route_row)
                .collect(),
        ),
        Request::Status => Response::Status(parts.status()),
        Request::Bfd => {
            let list = match parts.bfd.get() {
                Some(b) => b.sessions().await.unwrap_or_default(),
                None => Vec::new(),
            };
            Response::Bfd(list.iter().map(BfdRow::from).collect())
        }
        Request::Fib => match &parts.fib {
            Some(fib) => Response::Fib(fib.status().await.into()),
            None => return ReplyBody::Error(ErrorReply::FibDisabled),
        },
        Request::Reset { neighbor, hard } => {
            let done = if hard {
                parts.speaker.reset_hard(neighbor).await
            } else {
                parts.speaker.reset(neighbor).await
            };
            match done {
                Ok(()) => Response::Reset { neighbor, hard },
                Err(e) => return failed(e),
            }
        }
        Request::Shutdown => {
            parts.shutdown.notify_one();
            Response::Shutdown
        }
        Request::Refresh { neighbor } => match parts.speaker.refresh(neighbor).await {
            Ok(()) => Response::Refresh { neighbor },
            Err(e) => return failed(e),
        },
        Request::Announce {
            prefix,
            communities,
        } => match parts.speaker.announce(prefix, communities.clone()).await {
            Ok(done) => {
                info!(%prefix, "announced at run time");
                Response::Announced {
                    prefix: prefix.trunc(),
                    communities: communities
                        .iter()
                        .map(|c| bgp::community_string(*c))
                        .collect(),
                    replaced: done == bgp::Announced::Replaced,
                }
            }
            Err(e) => return failed(e),
        },
        Request::Withdraw { prefix } => match parts.speaker.withdraw(prefix).await {
            Ok(()) => {
                info!(%prefix, "run-time announcement withdrawn");
                Response::Withdrawn {
                    prefix: prefix.trunc(),
                }
            }
            Err(e) => return failed(e),
        },
        // Answered by `watch` before it gets here.
        Request::Watch => Response::Watching,
    };
    ReplyBody::Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RIB's shared set reaches the FIB as it is: the same
    /// allocation, so the FIB's pointer fast path sees a repeated set.
    #[test]
    fn a_shared_rib_set_reaches_the_fib_as_it_is() {
        let hop = |s: &str| bgp::Gateway::on_link(s.parse().unwrap(), 3);
        let a: bgp::NextHopSet = vec![hop("fe80::1")].into();
        let b: bgp::NextHopSet = vec![hop("fe80::1"), hop("fe80::2")].into();
        let change = |p: &str, h: &bgp::NextHopSet| bgp::RouteChange::Install {
            prefix: p.parse().unwrap(),
            next_hops: h.clone(),
        };
        let out = to_fib_changes(vec![
            change("10.0.0.0/24", &a),
            change("10.0.1.0/24", &a),
            change("10.0.2.0/24", &b),
            bgp::RouteChange::Remove {
                prefix: "10.0.3.0/24".parse().unwrap(),
            },
        ]);
        let hops: Vec<&fib::NextHopSet> = out
            .iter()
            .filter_map(|c| match c {
                fib::FibChange::Install { next_hops, .. } => Some(next_hops),
                fib::FibChange::Remove { .. } => None,
            })
            .collect();
        assert_eq!(hops.len(), 3);
        assert!(Arc::ptr_eq(hops[0], &a));
        assert!(Arc::ptr_eq(hops[1], &a));
        assert!(Arc::ptr_eq(hops[2], &b));
        assert_eq!(
            out[3],
            fib::FibChange::Remove {
                prefix: "10.0.3.0/24".parse().unwrap()
            }
        );
        assert_eq!(
            std::mem::size_of::<bgp::RouteChange>(),
            std::mem::size_of::<fib::FibChange>()
        );
    }
}
