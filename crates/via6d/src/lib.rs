//! via6d library: config, daemon wiring, control protocol.
