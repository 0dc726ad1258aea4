//! The task that owns the [`Rib`]: sessions feed it over a bounded
//! channel, it hands coalesced FIB changes to the FIB sync in chunks and
//! packed UPDATEs to the sessions, and answers queries from the control
//! socket.
//!
//! FIB changes are coalesced per prefix only while they wait in the RIB;
//! once a chunk is handed over, a later change of the same prefix goes in
//! a later chunk. The FIB sync applies chunks, and changes within a chunk,
//! in order, so the last one wins.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use ipnet::IpNet;

use super::{Announced, PeerCounts, Rib, RouteFilter, RouteStatus, RuntimeError};
use crate::config::SpeakerConfig;
use crate::events::{FibEvent, PeerId, RibInput, RouteChange, WatchSender};

mod schedule;

use schedule::{Load, Scheduler, FIB_CHUNK};

/// Capacity of the session -> RIB channel, in inputs: with batches of
/// [`crate::UPDATE_BATCH`], at most 1,024 UPDATEs wait.
pub const INPUT_CAPACITY: usize = 16;
/// `InitialTablesIn` goes out at the latest this long after start, even if
/// some neighbour never sent End-of-RIB.
pub const INITIAL_TABLES_TIMEOUT: Duration = Duration::from_secs(120);
/// How often queued session output is retried when a session is slow.
const OUTPUT_RETRY: Duration = Duration::from_millis(10);

enum Query {
    Routes(RouteFilter, oneshot::Sender<Vec<RouteStatus>>),
    Counts(PeerId, oneshot::Sender<PeerCounts>),
    Reconfigure(Box<SpeakerConfig>),
    Announce(IpNet, Vec<u32>, oneshot::Sender<Announced>),
    Withdraw(IpNet, oneshot::Sender<Result<(), RuntimeError>>),
}

/// Queries to the RIB task; cheap to clone.
#[derive(Debug, Clone)]
pub struct RibHandle {
    tx: mpsc::Sender<Query>,
    events: WatchSender,
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Query::Routes(..) => "Routes",
            Query::Counts(..) => "Counts",
            Query::Reconfigure(_) => "Reconfigure",
            Query::Announce(..) => "Announce",
            Query::Withdraw(..) => "Withdraw",
        })
    }
}

impl RibHandle {
    /// Every path in the RIB with its status (empty if the task is gone).
    pub async fn routes(&self) -> Vec<RouteStatus> {
        self.routes_filtered(RouteFilter::default()).await
    }

    /// The paths `filter` selects (see [`Rib::routes_filtered`]).
    pub async fn routes_filtered(&self, filter: RouteFilter) -> Vec<RouteStatus> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Query::Routes(filter, tx)).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Received / accepted / advertised counts of one peer.
    pub async fn peer_counts(&self, peer: PeerId) -> PeerCounts {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Query::Counts(peer, tx)).await.is_err() {
            return PeerCounts::default();
        }
        rx.await.unwrap_or_default()
    }

    /// New policies, originated prefixes or ECMP settings: re-applied to
    /// the kept pre-policy routes (soft reconfiguration) and re-advertised.
    pub async fn reconfigure(&self, config: SpeakerConfig) {
        let _ = self.tx.send(Query::Reconfigure(Box::new(config))).await;
    }

    /// Originates `prefix` with `communities` until withdrawn (see
    /// [`Rib::announce_runtime`]); `None` when the task is gone.
    pub async fn announce(&self, prefix: IpNet, communities: Vec<u32>) -> Option<Announced> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Query::Announce(prefix, communities, tx))
            .await
            .ok()?;
        rx.await.ok()
    }

    /// Ends a run-time announcement; `None` when the task is gone.
    pub async fn withdraw(&self, prefix: IpNet) -> Option<Result<(), RuntimeError>> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Query::Withdraw(prefix, tx)).await.ok()?;
        rx.await.ok()
    }

    /// The sender of session and route events, shared with the sessions.
    pub fn watch_sender(&self) -> &WatchSender {
        &self.events
    }
}

/// Starts the RIB task. Returns the input channel for sessions and a
/// handle for queries.
pub fn spawn_rib(
    config: &SpeakerConfig,
    fib_tx: mpsc::Sender<FibEvent>,
) -> (mpsc::Sender<RibInput>, RibHandle) {
    let (in_tx, in_rx) = mpsc::channel(INPUT_CAPACITY);
    let (q_tx, q_rx) = mpsc::channel(16);
    let mut rib = Rib::new(config.clone());
    let events = WatchSender::default();
    rib.set_watch_sender(events.clone());
    // The RIB owns its own thread: a full table or a big `routes` dump is
    // seconds of CPU, and on the shared runtime that would starve the
    // session tasks until their hold timers fired on live peers.
    let spawned = std::thread::Builder::new()
        .name("rib".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(run(rib, in_rx, q_rx, fib_tx)),
                Err(e) => tracing::error!(error = %e, "cannot start the RIB runtime"),
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the RIB thread");
    }
    (in_tx, RibHandle { tx: q_tx, events })
}

fn handle_input(rib: &mut Rib, input: RibInput) {
    match input {
        RibInput::Established { session, outbound } => rib.peer_up(session, Some(outbound)),
        RibInput::Down { peer, kind } => rib.session_down(peer, kind, std::time::Instant::now()),
        RibInput::Updates { peer, updates } => {
            for u in &updates {
                rib.update(peer, &u.update, u.treat_as_withdraw);
            }
        }
        RibInput::RouteRefresh { peer, family } => rib.route_refresh(peer, family),
    }
}

fn handle_query(rib: &mut Rib, q: Query) {
    match q {
        Query::Routes(filter, tx) => {
            let _ = tx.send(rib.routes_filtered(&filter));
        }
        Query::Counts(peer, tx) => {
            let _ = tx.send(rib.peer_counts(peer));
        }
        Query::Reconfigure(c) => rib.reconfigure(*c),
        Query::Announce(prefix, communities, tx) => {
            let _ = tx.send(rib.announce_runtime(prefix, &communities));
        }
        Query::Withdraw(prefix, tx) => {
            let _ = tx.send(rib.withdraw_runtime(prefix));
        }
    }
}

/// Sleeps until `at` (forever without one; the caller guards the branch).
async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

/// The loop's scheduler, over chunks of FIB changes.
type Schedule = Scheduler<Vec<RouteChange>>;
/// The FIB sync is gone; the task ends.
type FibGone = mpsc::error::SendError<FibEvent>;

/// What the scheduler needs to see of the RIB and the input channel.
fn load(rib: &Rib, in_rx: &mpsc::Receiver<RibInput>) -> Load {
    Load {
        pending_fib: rib.pending_fib(),
        input_empty: in_rx.is_empty(),
        draining: rib.draining(),
    }
}

/// Moves pending FIB changes into chunks of at most `size`, ready to send.
fn chunk_fib(rib: &mut Rib, s: &mut Schedule, size: usize) {
    if rib.pending_fib() > 0 {
        rib.take_fib_chunks(size, s);
    }
}

/// Sends every ready chunk, waiting for room.
async fn send_ready(s: &mut Schedule, fib_tx: &mpsc::Sender<FibEvent>) -> Result<(), FibGone> {
    while let Some(c) = s.pop_ready() {
        fib_tx.send(FibEvent::Changes(c)).await?;
    }
    Ok(())
}

/// Once every neighbour sent End-of-RIB, or the timeout passed: everything
/// learned so far goes to the FIB, then `InitialTablesIn`; then every
/// peer's table starts.
async fn initial_tables(
    rib: &mut Rib,
    s: &mut Schedule,
    fib_tx: &mpsc::Sender<FibEvent>,
) -> Result<(), FibGone> {
    if !(s.initial_tables_open() && rib.take_initial_tables_in(s.timed_out())) {
        return Ok(());
    }
    chunk_fib(rib, s, FIB_CHUNK);
    send_ready(s, fib_tx).await?;
    fib_tx.send(FibEvent::InitialTablesIn).await?;
    s.initial_tables_sent();
    // After a graceful restart nothing went out yet (RFC 4724 §4.1):
    // start every peer's table now, not at the next input.
    rib.flush_outbound();
    let dumping = rib.pump_dumps();
    s.outputs(rib.drain_outputs(), dumping);
    Ok(())
}

/// Hands the next chunk over through a reserved place in the FIB channel,
/// taking chunks from the RIB first if none is ready.
fn hand_over(rib: &mut Rib, s: &mut Schedule, permit: mpsc::Permit<'_, FibEvent>) {
    if let Some(size) = s.refill_size() {
        chunk_fib(rib, s, size);
    }
    if let Some(c) = s.hand_over() {
        permit.send(FibEvent::Changes(c));
    }
}

/// Handles `first` and takes what is already queued without yielding, so
/// FIB changes and UPDATEs go out in larger batches; stops early to hand
/// a full chunk over if the FIB sync has room for it.
fn take_inputs(
    rib: &mut Rib,
    in_rx: &mut mpsc::Receiver<RibInput>,
    s: &Schedule,
    fib_tx: &mpsc::Sender<FibEvent>,
    first: RibInput,
) {
    let mut taken = first.update_count().max(1);
    handle_input(rib, first);
    while s.may_take_more(taken, rib.pending_fib(), fib_tx.capacity() > 0) {
        match in_rx.try_recv() {
            Ok(input) => {
                taken += input.update_count().max(1);
                handle_input(rib, input);
            }
            Err(_) => break,
        }
    }
}

/// The duties after each select turn: session output, the chunk size,
/// and backpressure (a slow FIB sync slows the RIB, not its memory).
async fn after_turn(
    rib: &mut Rib,
    in_rx: &mpsc::Receiver<RibInput>,
    s: &mut Schedule,
    fib_tx: &mpsc::Sender<FibEvent>,
) -> Result<(), FibGone> {
    if s.should_flush_outbound(load(rib, in_rx)) {
        rib.flush_outbound();
    }
    let mut waiting = rib.drain_outputs();
    let dumping = rib.pump_dumps();
    if dumping {
        waiting = rib.drain_outputs();
    }
    s.outputs(waiting, dumping);
    s.reset_chunk_if_quiet(load(rib, in_rx));
    if s.backpressure(rib.pending_fib()) {
        chunk_fib(rib, s, FIB_CHUNK);
        while let Some(c) = s.pop_overflow() {
            fib_tx.send(FibEvent::Changes(c)).await?;
        }
    }
    Ok(())
}

/// The task's loop: I/O only; every choice is the [`Scheduler`]'s.
async fn run(
    mut rib: Rib,
    mut in_rx: mpsc::Receiver<RibInput>,
    mut q_rx: mpsc::Receiver<Query>,
    fib_tx: mpsc::Sender<FibEvent>,
) {
    let deadline = tokio::time::sleep(INITIAL_TABLES_TIMEOUT);
    tokio::pin!(deadline);
    let mut s = Schedule::default();
    let mut retry = tokio::time::interval(OUTPUT_RETRY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        rib.refresh_watching();
        // Checked first so that a speaker without neighbours reports at
        // once.
        if initial_tables(&mut rib, &mut s, &fib_tx).await.is_err() {
            return;
        }
        let stale_at = rib.next_stale_deadline();
        let seen = load(&rib, &in_rx);
        tokio::select! {
            biased;
            q = q_rx.recv(), if s.queries_open() => match q {
                Some(q) => handle_query(&mut rib, q),
                None => s.queries_closed(),
            },
            permit = fib_tx.reserve(), if s.fib_handover_due(seen) => {
                let Ok(permit) = permit else { break };
                hand_over(&mut rib, &mut s, permit);
            }
            // Removing the paths of a peer that went away, a chunk at a
            // time so FIB changes flow out meanwhile.
            _ = std::future::ready(()), if s.may_drain(seen) => {
                rib.drain(FIB_CHUNK);
            }
            input = in_rx.recv(), if s.inputs_open() => match input {
                Some(input) => take_inputs(&mut rib, &mut in_rx, &s, &fib_tx, input),
                None => s.inputs_closed(),
            },
            _ = &mut deadline, if !s.timed_out() => s.time_out(),
            // A restarting peer's stale paths whose timer ran out.
            _ = sleep_until(stale_at), if stale_at.is_some() => {
                rib.expire_stale(std::time::Instant::now());
            }
            _ = retry.tick(), if s.output_waiting() => {}
            // An initial dump continues as soon as its session took the
            // previous step.
            _ = std::future::ready(()), if s.dump_may_continue() => {}
        }
        if after_turn(&mut rib, &in_rx, &mut s, &fib_tx).await.is_err() {
            return;
        }
        if s.finished() {
            break;
        }
    }
    // Inputs are gone: hand over what is left.
    chunk_fib(&mut rib, &mut s, FIB_CHUNK);
    let _ = send_ready(&mut s, &fib_tx).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::PeerOutput;
    use crate::rib::tests::{attrs, config, ll_nh, mp_update, neighbor, session};
    use wire::Update;

    async fn next_event(rx: &mut mpsc::Receiver<FibEvent>) -> FibEvent {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("FIB event in time")
            .expect("RIB task alive")
    }

    #[tokio::test]
    async fn task_feeds_fib_reports_initial_tables_and_answers_queries() {
        let cfg = config(vec![neighbor("fe80::1", 65001)]);
        let (fib_tx, mut fib_rx) = mpsc::channel(4);
        let (tx, handle) = spawn_rib(&cfg, fib_tx);
        let (out_tx, mut out_rx) = mpsc::channel(8);
        tx.send(RibInput::Established {
            session: session(&cfg, 0, "10.0.0.1"),
            outbound: out_tx,
        })
        .await
        .unwrap();
        // End-of-RIB for both families comes first as the initial dump.
        let first = tokio::time::timeout(Duration::from_secs(5), out_rx.recv())
            .await
            .unwrap();
        assert!(matches!(first, Some(PeerOutput::Messages(ref b)) if !b.is_empty()));
        let prefixes: Vec<String> = (0..10_000)
            .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
            .collect();
        for chunk in prefixes.chunks(4) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            tx.send(RibInput::update(
                PeerId(0),
                mp_update(attrs(&[65001]), ll_nh("fe80::1"), &refs),
            ))
            .await
            .unwrap();
        }
        // End-of-RIB for both families.
        tx.send(RibInput::update(PeerId(0), Update::default()))
            .await
            .unwrap();
        let mut eor6 = Update::default();
        eor6.attributes.mp_unreach = Some(wire::MpUnreach {
            family: wire::Family::Ipv6Unicast,
            withdrawn: vec![],
        });
        tx.send(RibInput::update(PeerId(0), eor6)).await.unwrap();
        let mut installs = 0;
        while let FibEvent::Changes(c) = next_event(&mut fib_rx).await {
            assert!(c.len() <= FIB_CHUNK);
            installs += c.len();
        }
        assert_eq!(installs, 10_000, "every route before InitialTablesIn");
        let counts = handle.peer_counts(PeerId(0)).await;
        assert_eq!((counts.received, counts.accepted), (10_000, 10_000));
        let routes = handle.routes().await;
        assert_eq!(routes.len(), 10_000);
        assert_eq!(routes[0].prefix, "10.0.0.0/24");

        // Soft reconfiguration: deny-all removes everything.
        let mut cfg2 = cfg.clone();
        cfg2.neighbors[0].import = crate::config::PolicyRef::DenyAll;
        handle.reconfigure(cfg2).await;
        let mut removes = 0;
        while removes < 10_000 {
            match next_event(&mut fib_rx).await {
                FibEvent::Changes(c) => {
                    assert!(c.iter().all(|c| matches!(c, RouteChange::Remove { .. })));
                    removes += c.len();
                }
                FibEvent::InitialTablesIn => panic!("reported twice"),
            }
        }
        assert_eq!(handle.peer_counts(PeerId(0)).await.accepted, 0);

        // Peer down: the paths leave Adj-RIB-In as well. Queries and
        // inputs are separate channels, so poll.
        tx.send(RibInput::Down {
            peer: PeerId(0),
            kind: crate::graceful::DownKind::Hard,
        })
        .await
        .unwrap();
        // The paths go a chunk at a time (queries are answered between
        // chunks), so the count can reach 0 before the last path is gone.
        let (mut received, mut left) = (u64::MAX, usize::MAX);
        for _ in 0..200 {
            received = handle.peer_counts(PeerId(0)).await.received;
            left = handle.routes().await.len();
            if received == 0 && left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!((received, left), (0, 0));
    }

    #[tokio::test]
    async fn no_neighbours_means_initial_tables_at_once() {
        let cfg = config(vec![]);
        let (fib_tx, mut fib_rx) = mpsc::channel(4);
        let (_tx, _handle) = spawn_rib(&cfg, fib_tx);
        assert_eq!(next_event(&mut fib_rx).await, FibEvent::InitialTablesIn);
    }
}
