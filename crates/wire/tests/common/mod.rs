//! The shared MRT data set, read in place.

use std::path::{Path, PathBuf};

/// `$VIA6_MRT_DATA`, else `../shared/data/mrt` beside the repository.
/// Panics naming the directory and the variable when it is absent, so a
/// missing data set never passes as an empty one.
pub fn mrt_dir() -> PathBuf {
    let dir = match std::env::var_os("VIA6_MRT_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mrt"),
    };
    assert!(
        dir.is_dir(),
        "MRT data set missing at {}: set VIA6_MRT_DATA to the directory of the shared MRT files",
        dir.display()
    );
    dir
}
