#!/bin/sh
# Builds caravan's offline test image `caravan-test/busybox:latest` from Debian's busybox-static:
# a root filesystem with /bin/busybox and its applets as symlinks (sh, httpd, sleep, echo, cat...),
# a /www/index.html for `httpd -f -p 8080 -h /www`, imported with `docker import`. No registry is
# needed. Idempotent: does nothing when the image exists (CARAVAN_TEST_IMAGE_REBUILD=1 rebuilds).
#
# Usage: scripts/test-image.sh [image]      (DOCKER_HOST is honoured by the docker CLI)
set -eu

image="${1:-caravan-test/busybox:latest}"
busybox="${BUSYBOX:-/bin/busybox}"

if [ "${CARAVAN_TEST_IMAGE_REBUILD:-0}" != 1 ] && docker image inspect "$image" >/dev/null 2>&1; then
    echo "test-image: $image is present"
    exit 0
fi
if ! "$busybox" --list >/dev/null 2>&1; then
    echo "test-image: $busybox is not a busybox binary: apt-get install -y busybox-static" >&2
    exit 1
fi
if ldd "$busybox" >/dev/null 2>&1; then
    echo "test-image: $busybox is dynamically linked; the image needs busybox-static" >&2
    exit 1
fi

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/www" "$root/alloc" "$root/local" "$root/secrets"
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
echo "hello from caravan" >"$root/www/index.html"

tar -C "$root" -cf - . | docker import \
    --change 'ENV PATH=/bin' \
    --change 'CMD ["/bin/sh"]' \
    - "$image" >/dev/null
echo "test-image: built $image"
