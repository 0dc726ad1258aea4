//! Bidirectional Forwarding Detection for via6: RFC 5880 asynchronous
//! mode over RFC 5881 single-hop UDP, so that a neighbour that stops
//! forwarding while its link stays up is noticed in well under a second
//! instead of at the BGP hold timer.
//!
//! [`packet`] and [`fsm`] are pure (bytes and events in, values and
//! actions out); the socket edge lives in its own module.

pub mod fsm;
pub mod packet;

pub use fsm::{Action, Config, Event, Jitter, Session};
pub use packet::{ControlPacket, DecodeError, Diag, State};
