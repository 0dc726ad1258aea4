# Shared by the set-up scripts: install what is missing, find cargo.
# Sourced, not run.

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "$0: run as root (network namespaces and the kernel FIB need it)" >&2
        exit 2
    fi
}

# ensure_packages PKG... : apt-get install the Debian packages that are missing.
ensure_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo ">>> installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    # The packaged BIRD and FRR services are not ours: stop them so they
    # hold no routes (tests start their own, inside namespaces).
    if command -v systemctl >/dev/null 2>&1; then
        systemctl stop bird.service frr.service prometheus.service prometheus-node-exporter.service >/dev/null 2>&1 || true
    fi
}

# The oldest Rust the workspace builds with: `rust-version` of Cargo.toml.
rust_version() {
    sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -n1
}

# ensure_cargo: the pinned toolchain (rust-toolchain.toml) through rustup,
# or at least `rust-version` from anywhere else.
ensure_cargo() {
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    if ! command -v cargo >/dev/null 2>&1; then
        echo ">>> no cargo found: installing Debian's rustc and cargo"
        ensure_packages cargo rustc
    fi
    local v need
    need=$(rust_version)
    v=$(rustc --version | awk '{print $2}')
    if [ "$(printf '%s\n%s\n' "$v" "$need" | sort -V | head -n1)" != "$need" ]; then
        echo "$0: rustc $v is too old; via6 needs $need or newer (rust-toolchain.toml pins the one CI uses; see https://rustup.rs)" >&2
        exit 2
    fi
}

# The cargo-deb that builds the Debian package (scripts/build-deb): pinned,
# so that a new release cannot change the package without a commit that
# says so. Installing it from crates.io builds for 3 to 4 minutes on two
# cores.
CARGO_DEB_VERSION=3.8.0

# ensure_cargo_deb: cargo-deb $CARGO_DEB_VERSION, installed if it is not.
ensure_cargo_deb() {
    if [ "$(cargo deb --version 2>/dev/null | awk '{print $2}')" != "$CARGO_DEB_VERSION" ]; then
        echo ">>> installing cargo-deb $CARGO_DEB_VERSION"
        cargo install --locked --force cargo-deb --version "$CARGO_DEB_VERSION"
    fi
}
