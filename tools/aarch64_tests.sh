#!/usr/bin/env bash
# Cross-compiles versus-engine for aarch64 (Apple Silicon's and Graviton's architecture) and runs
# its tests under qemu's user-mode emulation: a check that the engine builds and answers the
# same there (on aarch64 the kernels are the portable ones and quantized matrices go to candle's
# matmul). Emulation checks results, not speed. Not part of CI: it needs rustup to fetch the
# aarch64 standard library, which CI's network does not reach.
#
#     bash tools/aarch64_tests.sh [cargo test arguments, e.g. --test golden]
set -euo pipefail
cd "$(dirname "$0")/.."

need_packages=()
command -v aarch64-linux-gnu-gcc >/dev/null || need_packages+=(gcc-aarch64-linux-gnu)
command -v qemu-aarch64 >/dev/null || need_packages+=(qemu-user)
if ((${#need_packages[@]})); then
    sudo_if_needed=()
    [[ $(id -u) -ne 0 ]] && sudo_if_needed=(sudo)
    "${sudo_if_needed[@]}" apt-get install -y -q "${need_packages[@]}"
fi
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu ||
    rustup target add aarch64-unknown-linux-gnu

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
cargo clippy --target aarch64-unknown-linux-gnu --workspace --all-targets -- -D warnings
cargo test --release --no-fail-fast --target aarch64-unknown-linux-gnu -p versus-engine "$@"
