//! Helpers for the end-to-end tests in `tests/tests/`: where the built
//! binaries and the shared data set are.

use std::path::PathBuf;
use std::sync::OnceLock;

pub mod monitor;

/// The workspace root (this crate sits directly under it).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Cargo's output directory: `$CARGO_TARGET_DIR` when set, as cargo
/// itself does, else `target/` of the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// Builds the workspace binaries once per test process, so that a test
/// never runs a daemon older than the source (cargo does nothing when they
/// are up to date).
fn build_once() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "via6d", "-p", "feeder", "--bins"])
            .current_dir(workspace())
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build the binaries: {e}"));
        assert!(status.success(), "building via6d and via6-feeder failed");
    });
}

/// Path of a workspace binary: `$<NAME>_BIN` (`VIA6D_BIN`, `VIA6CTL_BIN`,
/// `VIA6_FEEDER_BIN`) when set, else the debug build in [`target_dir`].
pub fn binary(name: &str) -> PathBuf {
    let env_key = format!("{}_BIN", name.to_uppercase().replace('-', "_"));
    if let Some(p) = std::env::var_os(&env_key) {
        return PathBuf::from(p);
    }
    build_once();
    let path = target_dir().join("debug").join(name);
    assert!(
        path.is_file(),
        "{} is missing after the build (or set {env_key})",
        path.display()
    );
    path
}

/// A file of the shared data set, read in place: `$VIA6_DATA/NAME`, by
/// default `../shared/data/NAME` beside the workspace. Panics naming the
/// path and the variable when it is absent, so a missing data set is never
/// mistaken for a passing test.
pub fn shared_data(name: &str) -> PathBuf {
    let dir = std::env::var_os("VIA6_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/data"));
    let path = dir.join(name);
    assert!(
        path.exists(),
        "shared data {} is missing: set VIA6_DATA to the directory that holds {name}",
        path.display()
    );
    path
}
