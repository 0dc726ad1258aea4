//! Helpers for the end-to-end tests in `tests/tests/`: where the built
//! binaries are.

use std::path::PathBuf;

pub mod rawpeer;

/// Path of a workspace binary, building it first when it is missing.
pub fn binary(name: &str) -> PathBuf {
    let env_key = format!("{}_BIN", name.to_uppercase());
    if let Some(p) = std::env::var_os(env_key) {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root.join("target/debug").join(name);
    if !path.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "via6d", "--bins"])
            .current_dir(&root)
            .status()
            .expect("cargo must run");
        assert!(status.success(), "building via6d failed");
    }
    path
}
