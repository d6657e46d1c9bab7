#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test caravan. Idempotent: a second
# run installs nothing and takes a second.
#
# - The Wasm guest toolchain (drivers/ and wasm-examples/ are built to WebAssembly): a rustup wasm
#   target when one is installed, otherwise Debian's rustc-web (1.96, knows the wasm32 targets) with
#   the standard library sources, a wasm linker and WASI libc.
# - docker.io and busybox-static for the Docker driver and its offline test image.
# - qemu-system-x86 for the qemu driver, from bookworm-backports: these machines carry a backported
#   qemu-utils (10.0), and Debian 12's own qemu-system-x86 (7.2) would remove it. The backports
#   suite is added from the machine's own mirror (it is NotAutomatic, so nothing else changes).
#   syslinux + mtools let scripts/build-qemu-guest.sh also write a bootable disk image.
# - chromium (headless) for the Web UI's browser test (tests/it/web_ui.rs).
set -euo pipefail

packages=()
need() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || packages+=("$1"); }

# build.rs takes the rustup route only when both wasm targets are installed.
installed_targets="$(rustup target list --installed 2>/dev/null || true)"
if ! grep -qx wasm32-unknown-unknown <<<"$installed_targets" || ! grep -qx wasm32-wasip1 <<<"$installed_targets"; then
  for pkg in rustc-web cargo-web rust-web-src lld-19 wasi-libc; do need "$pkg"; done
fi
for pkg in docker.io busybox-static; do need "$pkg"; done

for pkg in syslinux mtools; do need "$pkg"; done
need chromium

if [[ $(id -u) -ne 0 ]]; then
  sudo=sudo
else
  sudo=
fi
updated=false

if ((${#packages[@]})); then
  echo "==> installing ${packages[*]}"
  $sudo apt-get update -qq
  updated=true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

# qemu-system-x86 at the version of the installed qemu-utils, never removing it.
if ! dpkg-query -W -f='${Status}' qemu-system-x86 2>/dev/null | grep -q "install ok installed"; then
  src=/etc/apt/sources.list.d/bookworm-backports.sources
  if [[ ! -f $src ]]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    uri=${uri:-http://deb.debian.org/debian}
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$uri" | $sudo tee "$src" >/dev/null
    updated=false
  fi
  echo "==> installing qemu-system-x86 (bookworm-backports)"
  $updated || $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    -t bookworm-backports qemu-system-x86 qemu-utils >/dev/null
fi
