//! What the RIB task does next, as pure answers to the questions its loop
//! asks: the loop reads a few numbers from the RIB and its channels, asks
//! here, and carries out the answer. Keeping the decisions apart from the
//! I/O lets a whole table load be replayed in tests without a runtime.

use std::collections::VecDeque;

/// Most FIB changes per `FibEvent::Changes`.
pub const FIB_CHUNK: usize = 4096;
/// The first chunk after a quiet spell is this small, and each next one
/// twice the size up to [`FIB_CHUNK`]: the kernel starts writing routes
/// while the RIB still works through the first UPDATEs of a table.
pub const FIB_FIRST_CHUNK: usize = 256;
/// Above this many waiting FIB changes the RIB stops reading input until
/// the FIB sync catches up (backpressure instead of unbounded memory).
pub const FIB_HIGH_WATER: usize = 8 * FIB_CHUNK;
/// UPDATEs handled between two looks at the other duties.
pub const INPUT_BURST: usize = 256;

/// What the loop sees of the RIB and its input at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// FIB changes waiting in the RIB, not yet in chunks.
    pub pending_fib: usize,
    /// No session input waits in the channel.
    pub input_empty: bool,
    /// The paths of a peer that went away are still being removed.
    pub draining: bool,
}

/// The loop's state between two turns: chunks ready for the FIB sync,
/// the current chunk size, and which duties are still open. `C` is one
/// chunk (a `Vec<RouteChange>` in the task, a length in tests).
#[derive(Debug)]
pub struct Scheduler<C> {
    /// Chunks taken from the RIB, handed over oldest first.
    ready: VecDeque<C>,
    /// Size of the next chunk taken from the RIB.
    chunk: usize,
    /// `INITIAL_TABLES_TIMEOUT` has passed.
    timed_out: bool,
    /// `InitialTablesIn` went to the FIB sync.
    initial_sent: bool,
    /// Some session's channel was full and messages wait for it.
    output_waiting: bool,
    /// An initial table dump to some session is not finished.
    dumping: bool,
    inputs_open: bool,
    queries_open: bool,
}

impl<C> Default for Scheduler<C> {
    fn default() -> Self {
        Scheduler {
            ready: VecDeque::new(),
            chunk: FIB_FIRST_CHUNK,
            timed_out: false,
            initial_sent: false,
            output_waiting: false,
            dumping: false,
            inputs_open: true,
            queries_open: true,
        }
    }
}

/// Chunks taken from the RIB join the queue.
impl<C> Extend<C> for Scheduler<C> {
    fn extend<I: IntoIterator<Item = C>>(&mut self, chunks: I) {
        self.ready.extend(chunks);
    }
}

impl<C> Scheduler<C> {
    // --- FIB hand-over -------------------------------------------------

    /// Whether to wait for room in the FIB channel: a chunk is ready, a
    /// full chunk waits in the RIB, or input is quiet and something waits
    /// (not while a gone peer's paths are removed: more comes at once).
    pub fn fib_handover_due(&self, load: Load) -> bool {
        !self.ready.is_empty()
            || load.pending_fib >= self.chunk
            || (load.pending_fib > 0 && load.input_empty && !load.draining)
    }

    /// With room in the FIB channel and nothing ready: the size of the
    /// chunks to take from the RIB first.
    pub fn refill_size(&self) -> Option<usize> {
        self.ready.is_empty().then_some(self.chunk)
    }

    /// The next chunk for the FIB sync; each one handed over this way lets
    /// the next grow, up to [`FIB_CHUNK`].
    pub fn hand_over(&mut self) -> Option<C> {
        let c = self.ready.pop_front()?;
        self.chunk = (self.chunk * 2).min(FIB_CHUNK);
        Some(c)
    }

    /// The next ready chunk, without growing the chunk size: for the
    /// flushes before `InitialTablesIn` and at the end.
    pub fn pop_ready(&mut self) -> Option<C> {
        self.ready.pop_front()
    }

    /// Whether nothing waits anywhere and input is quiet: the next chunk
    /// starts small again, so the kernel starts early on the next burst.
    pub fn is_quiet(&self, load: Load) -> bool {
        load.pending_fib == 0 && self.ready.is_empty() && load.input_empty
    }

    /// Resets the chunk size after a turn that ended quiet.
    pub fn reset_chunk_if_quiet(&mut self, load: Load) {
        if self.is_quiet(load) {
            self.chunk = FIB_FIRST_CHUNK;
        }
    }

    // --- backpressure ----------------------------------------------------

    /// Whether the FIB sync is so far behind that the loop must wait for
    /// it (blocking sends) before doing anything else.
    pub fn backpressure(&self, pending_fib: usize) -> bool {
        pending_fib >= FIB_HIGH_WATER
    }

    /// Under backpressure, the chunks above the high-water mark, oldest
    /// first: these are sent with a blocking send.
    pub fn pop_overflow(&mut self) -> Option<C> {
        if self.ready.len() > FIB_HIGH_WATER / FIB_CHUNK {
            self.ready.pop_front()
        } else {
            None
        }
    }

    /// Whether a gone peer's paths may be removed now (a chunk of them).
    pub fn may_drain(&self, load: Load) -> bool {
        load.draining && load.pending_fib < FIB_HIGH_WATER
    }

    // --- input -----------------------------------------------------------

    /// Whether to take one more queued input without yielding, after
    /// `taken` UPDATEs in this burst: not past [`INPUT_BURST`], not above
    /// the high-water mark, and not when a full chunk could go to a FIB
    /// sync with room for it.
    pub fn may_take_more(&self, taken: usize, pending_fib: usize, fib_has_room: bool) -> bool {
        taken < INPUT_BURST
            && pending_fib < FIB_HIGH_WATER
            && !(pending_fib >= self.chunk && fib_has_room)
    }

    /// Whether packed UPDATEs go to the sessions now: input is quiet, or
    /// the FIB is behind and no more input is read for a while.
    pub fn should_flush_outbound(&self, load: Load) -> bool {
        load.input_empty || load.pending_fib >= FIB_HIGH_WATER
    }

    pub fn inputs_open(&self) -> bool {
        self.inputs_open
    }

    pub fn inputs_closed(&mut self) {
        self.inputs_open = false;
    }

    pub fn queries_open(&self) -> bool {
        self.queries_open
    }

    pub fn queries_closed(&mut self) {
        self.queries_open = false;
    }

    /// The loop ends once neither sessions nor queries can reach it.
    pub fn finished(&self) -> bool {
        !self.inputs_open && !self.queries_open
    }

    // --- initial tables ----------------------------------------------------

    /// Whether `InitialTablesIn` is still to be sent (the RIB says when
    /// every neighbour is done, given [`Scheduler::timed_out`]).
    pub fn initial_tables_open(&self) -> bool {
        !self.initial_sent
    }

    pub fn initial_tables_sent(&mut self) {
        self.initial_sent = true;
    }

    /// Whether `INITIAL_TABLES_TIMEOUT` has passed.
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    pub fn time_out(&mut self) {
        self.timed_out = true;
    }

    // --- session output --------------------------------------------------

    /// What the last push of output to the sessions left behind.
    pub fn outputs(&mut self, waiting: bool, dumping: bool) {
        self.output_waiting = waiting;
        self.dumping = dumping;
    }

    /// Whether to retry queued output on the retry timer.
    pub fn output_waiting(&self) -> bool {
        self.output_waiting
    }

    /// Whether an initial dump continues now: its session took the
    /// previous step.
    pub fn dump_may_continue(&self) -> bool {
        self.dumping && !self.output_waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pending_fib: usize, input_empty: bool, draining: bool) -> Load {
        Load {
            pending_fib,
            input_empty,
            draining,
        }
    }

    /// A scheduler whose chunks are their lengths.
    fn sched() -> Scheduler<usize> {
        Scheduler::default()
    }

    #[test]
    fn handover_is_due_for_a_ready_chunk_a_full_chunk_or_a_quiet_input() {
        let mut s = sched();
        assert!(!s.fib_handover_due(load(0, true, false)));
        assert!(!s.fib_handover_due(load(FIB_FIRST_CHUNK - 1, false, false)));
        assert!(s.fib_handover_due(load(FIB_FIRST_CHUNK, false, false)));
        assert!(s.fib_handover_due(load(1, true, false)), "quiet input");
        assert!(!s.fib_handover_due(load(1, true, true)), "draining");
        s.extend([7]);
        assert!(s.fib_handover_due(load(0, false, true)), "ready chunk");
    }

    #[test]
    fn refill_only_when_nothing_is_ready() {
        let mut s = sched();
        assert_eq!(s.refill_size(), Some(FIB_FIRST_CHUNK));
        s.extend([1]);
        assert_eq!(s.refill_size(), None);
    }

    #[test]
    fn each_handover_doubles_the_chunk_up_to_the_maximum() {
        let mut s = sched();
        assert_eq!(s.hand_over(), None);
        assert_eq!(s.chunk, FIB_FIRST_CHUNK, "nothing handed over");
        let mut sizes = Vec::new();
        for _ in 0..7 {
            s.extend([0]);
            s.hand_over();
            sizes.push(s.chunk);
        }
        assert_eq!(sizes, [512, 1024, 2048, 4096, 4096, 4096, 4096]);
        // Flushing (InitialTablesIn, the end) does not count as a step.
        let mut s = sched();
        s.extend([0]);
        assert_eq!(s.pop_ready(), Some(0));
        assert_eq!(s.chunk, FIB_FIRST_CHUNK);
    }

    #[test]
    fn chunk_size_resets_only_when_everything_is_quiet() {
        let mut s = sched();
        s.extend([0]);
        s.hand_over();
        s.hand_over();
        assert_eq!(s.chunk, 512);
        s.reset_chunk_if_quiet(load(1, true, false));
        s.reset_chunk_if_quiet(load(0, false, false));
        s.extend([0]);
        s.reset_chunk_if_quiet(load(0, true, false));
        assert_eq!(s.chunk, 512);
        s.pop_ready();
        s.reset_chunk_if_quiet(load(0, true, false));
        assert_eq!(s.chunk, FIB_FIRST_CHUNK);
    }

    #[test]
    fn backpressure_from_the_high_water_mark_and_overflow_above_it() {
        let s = sched();
        assert!(!s.backpressure(FIB_HIGH_WATER - 1));
        assert!(s.backpressure(FIB_HIGH_WATER));
        let mut s = sched();
        s.extend([1; FIB_HIGH_WATER / FIB_CHUNK]);
        assert_eq!(s.pop_overflow(), None);
        s.extend([2]);
        assert_eq!(s.pop_overflow(), Some(1), "oldest first");
        assert_eq!(s.pop_overflow(), None);
        assert_eq!(s.ready.len(), FIB_HIGH_WATER / FIB_CHUNK);
    }

    #[test]
    fn draining_stops_at_the_high_water_mark() {
        let s = sched();
        assert!(!s.may_drain(load(0, true, false)));
        assert!(s.may_drain(load(FIB_HIGH_WATER - 1, true, true)));
        assert!(!s.may_drain(load(FIB_HIGH_WATER, true, true)));
    }

    #[test]
    fn input_burst_stops_at_its_size_the_high_water_mark_or_a_chunk_to_send() {
        let s = sched();
        assert!(s.may_take_more(1, 0, true));
        assert!(!s.may_take_more(INPUT_BURST, 0, true));
        assert!(!s.may_take_more(1, FIB_HIGH_WATER, false));
        assert!(!s.may_take_more(1, FIB_FIRST_CHUNK, true), "chunk can go");
        assert!(s.may_take_more(1, FIB_FIRST_CHUNK, false), "FIB sync full");
    }

    #[test]
    fn outbound_flush_when_input_is_quiet_or_under_backpressure() {
        let s = sched();
        assert!(s.should_flush_outbound(load(0, true, false)));
        assert!(!s.should_flush_outbound(load(FIB_HIGH_WATER - 1, false, false)));
        assert!(s.should_flush_outbound(load(FIB_HIGH_WATER, false, false)));
    }

    #[test]
    fn finished_once_inputs_and_queries_are_closed() {
        let mut s = sched();
        assert!(s.inputs_open() && s.queries_open());
        s.inputs_closed();
        assert!(!s.inputs_open() && !s.finished());
        s.queries_closed();
        assert!(!s.queries_open() && s.finished());
    }

    #[test]
    fn dump_continues_only_when_no_output_waits() {
        let mut s = sched();
        assert!(!s.dump_may_continue() && !s.output_waiting());
        s.outputs(false, true);
        assert!(s.dump_may_continue());
        s.outputs(true, true);
        assert!(!s.dump_may_continue() && s.output_waiting());
    }

    /// The loop of `task::run` over a simulated RIB: queued inputs each
    /// bring FIB changes, the FIB channel has some room. Queries, drains,
    /// timers and session output play no part here.
    struct Sim {
        s: Scheduler<usize>,
        /// FIB changes waiting in the RIB.
        pending: usize,
        /// FIB changes each queued input brings.
        inputs: VecDeque<usize>,
        /// Free places in the FIB channel (`None`: always room).
        room: Option<usize>,
        /// Chunks handed over through a reserved place, by length.
        handed: Vec<usize>,
        /// Chunks sent with a blocking send under backpressure.
        blocked: Vec<usize>,
    }

    impl Sim {
        fn new(inputs: usize, changes_each: usize, room: Option<usize>) -> Self {
            Sim {
                s: sched(),
                pending: 0,
                inputs: std::iter::repeat_n(changes_each, inputs).collect(),
                room,
                handed: Vec::new(),
                blocked: Vec::new(),
            }
        }

        fn load(&self) -> Load {
            load(self.pending, self.inputs.is_empty(), false)
        }

        fn fib_has_room(&self) -> bool {
            self.room != Some(0)
        }

        /// `Rib::take_fib_chunks`: everything waiting, in chunks.
        fn take_chunks(&mut self, size: usize) {
            while self.pending > 0 {
                let c = self.pending.min(size);
                self.s.extend([c]);
                self.pending -= c;
            }
        }

        /// One turn: the first select arm that is ready, then the checks
        /// after it.
        fn turn(&mut self) {
            if self.s.fib_handover_due(self.load()) && self.fib_has_room() {
                if let Some(size) = self.s.refill_size() {
                    self.take_chunks(size);
                }
                if let Some(c) = self.s.hand_over() {
                    self.handed.push(c);
                    self.room = self.room.map(|r| r - 1);
                }
            } else if let Some(first) = self.inputs.pop_front() {
                let mut taken = 1;
                self.pending += first;
                while self
                    .s
                    .may_take_more(taken, self.pending, self.fib_has_room())
                {
                    let Some(n) = self.inputs.pop_front() else {
                        break;
                    };
                    taken += 1;
                    self.pending += n;
                }
            }
            self.s.reset_chunk_if_quiet(self.load());
            if self.s.backpressure(self.pending) {
                self.take_chunks(FIB_CHUNK);
                while let Some(c) = self.s.pop_overflow() {
                    self.blocked.push(c);
                }
            }
        }

        fn run(&mut self, turns: usize) {
            for _ in 0..turns {
                self.turn();
            }
        }
    }

    #[test]
    fn replay_table_load_grows_chunks_then_sends_the_rest_and_resets() {
        // 200 UPDATE batches of 128 routes each, FIB sync always ready.
        let mut sim = Sim::new(200, 128, None);
        sim.run(100);
        assert_eq!(
            sim.handed,
            [256, 512, 1024, 2048, 4096, 4096, 4096, 4096, 4096, 1280],
            "small first chunk, doubling to FIB_CHUNK, the rest once quiet"
        );
        assert_eq!(sim.handed.iter().sum::<usize>(), 200 * 128);
        assert!(sim.blocked.is_empty());
        assert_eq!(sim.s.chunk, FIB_FIRST_CHUNK, "reset when quiet");
    }

    #[test]
    fn replay_stalled_fib_sync_stops_input_at_the_high_water_mark() {
        // The FIB sync takes nothing: input is read past full chunks (no
        // room to send them) until the high-water mark.
        let mut sim = Sim::new(300, 200, Some(0));
        sim.turn();
        assert_eq!(sim.inputs.len(), 300 - 164, "stopped at 164 * 200 >= 32768");
        assert_eq!(sim.pending, 0, "all of it in chunks");
        assert_eq!(sim.blocked, [FIB_CHUNK], "one chunk above the mark");
        assert_eq!(sim.s.ready.len(), FIB_HIGH_WATER / FIB_CHUNK);
        assert!(sim.handed.is_empty());
        // Once the FIB sync has room, the ready chunks go first.
        sim.room = None;
        sim.run(8);
        assert_eq!(sim.handed.len(), 8);
        assert_eq!(sim.handed[..7], [FIB_CHUNK; 7]);
        assert_eq!(sim.handed[7], 164 * 200 - 8 * FIB_CHUNK);
        assert_eq!(sim.inputs.len(), 300 - 164, "no input meanwhile");
    }

    #[test]
    fn replay_initial_tables_after_the_timeout_flush_without_growing() {
        let mut s = sched();
        // What `Rib::take_initial_tables_in` answers while one neighbour
        // never sends End-of-RIB.
        let rib_says = |timed_out: bool| timed_out;
        assert!(s.initial_tables_open() && !rib_says(s.timed_out()));
        s.time_out();
        assert!(s.initial_tables_open() && rib_says(s.timed_out()));
        // Everything learned so far goes first, in full chunks.
        s.extend([FIB_CHUNK, FIB_CHUNK, 10]);
        let mut flushed = Vec::new();
        while let Some(c) = s.pop_ready() {
            flushed.push(c);
        }
        s.initial_tables_sent();
        assert_eq!(flushed, [FIB_CHUNK, FIB_CHUNK, 10]);
        assert_eq!(s.chunk, FIB_FIRST_CHUNK);
        assert!(!s.initial_tables_open());
    }
}
