//! The route feeder behind `via6-feeder`: table loading and pre-encoding
//! (`table`), the BGP session (`session`), and the pieces of the binary.
//! A library so that the encode benchmark measures the same code.

pub mod args;
pub mod error;
pub mod events;
pub mod rng;
pub mod routecount;
pub mod session;
pub mod signals;
pub mod table;
