//! The batch sender: a second thread that writes packed batches to the
//! kernel and collects their replies, so that packing the next batch (user
//! time) overlaps the kernel's work on this one (system time).

use std::collections::VecDeque;
use std::io;
use std::sync::mpsc;

use crate::nl::{self, MsgBuf, NlSocket, Refusal};

/// Batches handed over but not yet answered: one in the kernel, one
/// queued behind it. Bounds memory and the replies queued in the socket.
const MAX_IN_FLIGHT: usize = 4;

pub(crate) struct Job {
    pub buf: MsgBuf,
    pub base: u32,
}

/// Why a whole batch went unanswered (every route in it failed).
#[derive(Debug, thiserror::Error)]
pub(crate) enum BatchError {
    #[error("netlink send: {0}")]
    Send(#[source] io::Error),
    #[error("netlink receive: {0}")]
    Receive(#[source] io::Error),
    #[error("netlink sender thread stopped")]
    Stopped,
}

/// Replies to one batch: (index in batch, refusal) for every refused
/// request, or an error that stopped the whole batch.
pub(crate) struct Done {
    pub buf: MsgBuf,
    pub errors: Vec<(usize, Refusal)>,
    pub fatal: Option<BatchError>,
}

pub(crate) struct Pipeline<M> {
    jobs: Option<mpsc::SyncSender<Job>>,
    done: mpsc::Receiver<Done>,
    /// Per-batch data of the caller, in send order.
    meta: VecDeque<M>,
}

impl<M> Pipeline<M> {
    /// Start the sender thread with its own socket (opened by the caller,
    /// so it lives in the caller's network namespace).
    pub fn start(sock: NlSocket) -> std::io::Result<Self> {
        let (jobs, jobs_rx) = mpsc::sync_channel::<Job>(MAX_IN_FLIGHT);
        let (done_tx, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("fib-send".into())
            .spawn(move || {
                let mut sock = sock;
                for job in jobs_rx {
                    let (errors, fatal) = send_and_collect(&mut sock, &job.buf, job.base);
                    let d = Done {
                        buf: job.buf,
                        errors,
                        fatal,
                    };
                    if done_tx.send(d).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Pipeline {
            jobs: Some(jobs),
            done,
            meta: VecDeque::new(),
        })
    }

    pub fn in_flight(&self) -> usize {
        self.meta.len()
    }

    pub fn full(&self) -> bool {
        self.meta.len() >= MAX_IN_FLIGHT
    }

    /// Hand a batch over. Returns it back if the sender thread is gone.
    pub fn submit(&mut self, job: Job, meta: M) -> Result<(), (Job, M)> {
        let Some(tx) = &self.jobs else {
            return Err((job, meta));
        };
        match tx.send(job) {
            Ok(()) => {
                self.meta.push_back(meta);
                Ok(())
            }
            Err(mpsc::SendError(job)) => {
                self.jobs = None;
                Err((job, meta))
            }
        }
    }

    /// Wait for the oldest batch's replies.
    pub fn wait(&mut self) -> Option<(Done, M)> {
        let meta = self.meta.pop_front()?;
        match self.done.recv() {
            Ok(d) => Some((d, meta)),
            Err(_) => {
                self.jobs = None;
                let d = Done {
                    buf: MsgBuf::with_capacity(0),
                    errors: Vec::new(),
                    fatal: Some(BatchError::Stopped),
                };
                Some((d, meta))
            }
        }
    }
}

/// Send one packed batch (its last message carries NLM_F_ACK) and read
/// replies until that ACK. The kernel handles a send buffer in order and
/// always reports errors, so the one ACK closes the batch.
pub(crate) fn send_and_collect(
    sock: &mut NlSocket,
    buf: &MsgBuf,
    base: u32,
) -> (Vec<(usize, Refusal)>, Option<BatchError>) {
    let count = buf.count() as usize;
    let mut errors = Vec::new();
    if count == 0 {
        return (errors, None);
    }
    let last = base.wrapping_add(count as u32 - 1);
    if let Err(e) = sock.send(buf.bytes()) {
        return (errors, Some(BatchError::Send(e)));
    }
    loop {
        let data = match sock.recv() {
            Ok(d) => d,
            Err(e) => return (errors, Some(BatchError::Receive(e))),
        };
        for m in nl::Messages::new(data) {
            if m.ty != nl::NLMSG_ERROR {
                continue;
            }
            let idx = m.seq.wrapping_sub(base) as usize;
            if idx < count {
                if let Some((errno, text)) = nl::parse_error_full(m.flags, m.payload) {
                    if errno != 0 {
                        errors.push((idx, Refusal { errno, ext: text }));
                    }
                }
            }
            if m.seq == last {
                return (errors, None);
            }
        }
    }
}
