//! Raw BGP speaker (filled in later).
