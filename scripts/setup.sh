#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test caravan. Idempotent: a second
# run installs nothing and takes a second.
#
# - The Wasm guest toolchain (drivers/ and wasm-examples/ are built to WebAssembly): a rustup wasm
#   target when one is installed, otherwise Debian's rustc-web (1.96, knows the wasm32 targets) with
#   the standard library sources, a wasm linker and WASI libc.
# - docker.io and busybox-static for the Docker driver and its offline test image.
set -euo pipefail

packages=()
need() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || packages+=("$1"); }

if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-'; then
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
