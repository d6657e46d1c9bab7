#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test caravan. Idempotent: a second
# run installs nothing and takes a second.
#
# - The Wasm guest toolchain (drivers/ and wasm-examples/ are built to WebAssembly): a rustup wasm
#   target when one is installed, otherwise Debian's rustc-web (1.96, knows the wasm32 targets) with
#   the standard library sources, a wasm linker and WASI libc.
# - docker.io and busybox-static for the Docker driver and its offline test image.
# Not installed: qemu-system-x86 (Debian 12's conflicts with the backported qemu-utils on these
# machines).
set -euo pipefail

packages=()
need() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || packages+=("$1"); }

# build.rs takes the rustup route only when both wasm targets are installed.
installed_targets="$(rustup target list --installed 2>/dev/null || true)"
if ! grep -qx wasm32-unknown-unknown <<<"$installed_targets" || ! grep -qx wasm32-wasip1 <<<"$installed_targets"; then
  for pkg in rustc-web cargo-web rust-web-src lld-19 wasi-libc; do need "$pkg"; done
fi
for pkg in docker.io busybox-static; do need "$pkg"; done

if ((${#packages[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    sudo=sudo
  else
    sudo=
  fi
  echo "==> installing ${packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
