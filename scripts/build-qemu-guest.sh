#!/usr/bin/env bash
# Builds the tiny x86_64 guest the qemu driver's tests boot, offline from Debian packages
# (facts verified in shared/COMPONENTS.md §1.3). Usage: build-qemu-guest.sh OUT_DIR
#
#   OUT/vmlinuz     Debian's cloud kernel (linux-image-*-cloud-amd64), as packaged
#   OUT/initrd.gz   busybox-static, the kernel modules below and /init, as a gzipped newc cpio
#   OUT/data.qcow2  a 1 MiB qcow2 disk starting with CARAVAN_DISK_MARKER (the guest prints it)
#   OUT/boot.qcow2  with syslinux + mtools only: a bootable FAT disk holding the two above, so a
#                   job needs nothing but image_path (as on Nomad)
#
# The guest, on the serial console: prints `CARAVAN_GUEST_BOOTED marker=<marker= from the kernel
# command line>`, serves `caravan-guest <marker>` over HTTP on guest port 80 (busybox httpd on
# 10.0.2.15, slirp's address), prints the first line of its disk, answers `guest-ping` on the
# org.qemu.guest_agent.0 port, prints `CARAVAN_GUEST_READY`; on an ACPI power button (monitor
# `system_powerdown`) it prints `CARAVAN_GUEST_POWERDOWN` and powers off, so qemu exits 0. With
# `caravan.acpid=off` on the kernel command line it ignores the power button (a guest that will
# not stop gracefully).
#
# Idempotent: the output is rebuilt only when this script changed (a stamp holds its hash). The
# kernel package is downloaded once (~27 MB) into $CARAVAN_GUEST_CACHE (default
# ~/.cache/caravan-qemu-guest). Needs dpkg-deb, busybox-static and qemu-img (scripts/setup.sh).
set -euo pipefail

out=${1:?usage: build-qemu-guest.sh OUT_DIR}
cache=${CARAVAN_GUEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/caravan-qemu-guest}
busybox=/bin/busybox
stamp_value=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)

mkdir -p "$out" "$cache"
out=$(cd "$out" && pwd)
if [[ -f $out/.stamp && $(cat "$out/.stamp") == "$stamp_value" && -f $out/initrd.gz && -f $out/vmlinuz && -f $out/data.qcow2 ]]; then
  exit 0
fi
# Concurrent test processes build into the same directory: one builds, the others wait.
exec 9>"$out/.lock"
flock 9
if [[ -f $out/.stamp && $(cat "$out/.stamp") == "$stamp_value" ]]; then
  exit 0
fi

[[ -x $busybox ]] || { echo "no $busybox: install busybox-static (scripts/setup.sh)" >&2; exit 1; }
if ldd "$busybox" >/dev/null 2>&1; then
  echo "$busybox is dynamically linked: install busybox-static (scripts/setup.sh)" >&2
  exit 1
fi
command -v qemu-img >/dev/null || { echo "no qemu-img: install qemu-utils (scripts/setup.sh)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. The kernel: the newest cached package, else the one linux-image-cloud-amd64 depends on now.
deb=$(find "$cache" -maxdepth 1 -name 'linux-image-*-cloud-amd64_*_amd64.deb' | sort -V | tail -n1)
if [[ -z $deb ]]; then
  pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
  [[ -n $pkg ]] || { echo "linux-image-cloud-amd64 is not in apt's lists: run apt-get update" >&2; exit 1; }
  (cd "$cache" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" >/dev/null)
  deb=$(find "$cache" -maxdepth 1 -name 'linux-image-*-cloud-amd64_*_amd64.deb' | sort -V | tail -n1)
  [[ -n $deb ]] || { echo "apt-get download $pkg left no package in $cache" >&2; exit 1; }
fi

# Modules, each after what it needs (the cloud kernel builds these as modules, uncompressed):
# virtio PCI, net, block and console (the guest agent's port); evdev and the ACPI button (acpid);
# SCSI + libata + ata_piix + sd_mod for an IDE disk (Nomad's default drive_interface).
modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover
net_failover virtio_net virtio_blk virtio_console evdev button scsi_common scsi_mod libata ata_piix
sd_mod"
patterns=(./boot/vmlinuz-*)
for m in $modules; do patterns+=("./lib/modules/*/$m.ko"); done
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards "${patterns[@]}"

root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,www,lib/modules,etc/acpi/PWRF}
cp "$busybox" "$root/bin/busybox"
for m in $modules; do
  f=$(find "$work/lib/modules" -name "$m.ko" | head -n1)
  [[ -n $f ]] || { echo "module $m is not in $deb" >&2; exit 1; }
  cp "$f" "$root/lib/modules/"
done
printf '%s\n' $modules >"$root/lib/modules/order"

cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r m; do insmod "/lib/modules/$m.ko" 2>/dev/null; done </lib/modules/order
marker=none
acpi=on
for arg in $(cat /proc/cmdline); do
  case $arg in
    marker=*) marker=${arg#marker=} ;;
    caravan.acpid=off) acpi=off ;;
  esac
done
echo "CARAVAN_GUEST_BOOTED marker=$marker uptime=$(cut -d' ' -f1 /proc/uptime)"
ip link set lo up
if ip link set eth0 up 2>/dev/null; then
  ip addr add 10.0.2.15/24 dev eth0
  ip route add default via 10.0.2.2
fi
echo "caravan-guest $marker" >/www/index.html
httpd -p 80 -h /www
[ "$acpi" = on ] && acpid -c /etc/acpi -l /tmp/acpid.log
i=0
while [ $i -lt 30 ] && [ ! -b /dev/vda ] && [ ! -b /dev/sda ]; do sleep 0.1; i=$((i + 1)); done
for d in /dev/vda /dev/sda; do
  [ -b $d ] && echo "CARAVAN_GUEST_DISK $d $(head -c 64 $d | head -n1 | tr -cd 'A-Za-z0-9_.=-')"
done
# The guest agent's port: a stand-in for qemu-ga that answers guest-ping.
qga=
for p in /sys/class/virtio-ports/*; do
  [ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && qga=/dev/${p##*/}
done
if [ -n "$qga" ]; then
  (while :; do
    while read -r line; do
      case $line in
        *guest-ping*) echo '{"return": {}}' ;;
        *) echo '{"error": {"class": "CommandNotFound", "desc": "caravan test guest"}}' ;;
      esac
    done <>"$qga" >&0
    sleep 0.2
  done) &
  echo "CARAVAN_GUEST_AGENT $qga"
fi
echo "CARAVAN_GUEST_READY uptime=$(cut -d' ' -f1 /proc/uptime) acpi=$acpi"
while :; do sleep 3600; done
EOF
cat >"$root/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
echo "CARAVAN_GUEST_POWERDOWN uptime=$(cut -d' ' -f1 /proc/uptime)" >/dev/console
sync
poweroff -f
EOF
chmod 755 "$root/init" "$root/etc/acpi/PWRF/00000080"
(cd "$root" && find . | "$busybox" cpio -o -H newc 2>/dev/null) | gzip -9 >"$work/initrd.gz"
cp "$work"/boot/vmlinuz-* "$work/vmlinuz"

# 2. The data disk.
printf 'CARAVAN_DISK_MARKER\n' >"$work/data.raw"
truncate -s 1M "$work/data.raw"
qemu-img convert -q -f raw -O qcow2 "$work/data.raw" "$work/data.qcow2"

# 3. The bootable disk, when syslinux (its Linux installer for FAT) and mtools are there; mformat,
# because mtools cannot read busybox mkdosfs's output.
if command -v syslinux >/dev/null && command -v mcopy >/dev/null; then
  truncate -s 32M "$work/boot.raw"
  mformat -i "$work/boot.raw" -T 65536 -h 64 -s 32 -v CARAVAN ::
  printf 'DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL vmlinuz\n  APPEND initrd=initrd.gz console=ttyS0 quiet marker=bootdisk\n' \
    >"$work/syslinux.cfg"
  mcopy -i "$work/boot.raw" "$work/vmlinuz" "$work/initrd.gz" "$work/syslinux.cfg" ::
  syslinux --install "$work/boot.raw"
  qemu-img convert -q -f raw -O qcow2 "$work/boot.raw" "$work/boot.qcow2"
fi

# Into place last, so a reader never sees half a guest.
for f in vmlinuz initrd.gz data.qcow2 boot.qcow2; do
  [[ -f $work/$f ]] && mv -f "$work/$f" "$out/$f"
done
echo "$stamp_value" >"$out/.stamp"
