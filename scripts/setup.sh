#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test caravan. Idempotent: packages
# already present are skipped, and a second run changes nothing.
#
# - rustc-web, cargo-web, rust-web-src, lld-19, wasi-libc: the offline route for the WebAssembly
#   guests (drivers/, wasm-examples/); build.rs uses them when rustup has no wasm32 targets.
#   See shared/TOOLCHAIN.md.
# - docker.io, busybox-static: the Docker driver's daemon and a local image rootfs (no registry).
#
# Not installed: qemu-system-x86 (its qemu-utils comes from backports here, and the two must
# match); the QEMU driver's tests skip without it outside CI.
set -euo pipefail

packages=(rustc-web cargo-web rust-web-src lld-19 wasi-libc docker.io busybox-static)

if [[ $(id -u) -ne 0 ]]; then
    sudo=sudo
else
    sudo=
fi

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "setup: everything is installed (${packages[*]})"
    exit 0
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"
