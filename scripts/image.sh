#!/bin/sh
# `make image`: an OCI image of annals and kubectl-audit built with
# Debian's buildah from nothing (no base image is pulled from any
# registry): the two binaries, the shared libraries `ldd` names for them,
# the CA certificates, a passwd entry for the non-root user 65532, and
# /var/lib/annals for the data volume. Runs as 65532 with a read-only root
# filesystem (docs/install.md).
#   scripts/image.sh BUILD_DIR [IMAGE]      (default localhost/annals:latest)
# Extra global buildah flags (e.g. --root/--runroot/--storage-driver) go in
# $ANNALS_BUILDAH_FLAGS.
set -eu
build=$1
image=${2:-localhost/annals:latest}
flags=${ANNALS_BUILDAH_FLAGS:-}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root/usr/bin" "$root/etc/ssl/certs" "$root/var/lib/annals" "$root/tmp"
strip -o "$root/usr/bin/annals" "$build/annals"
strip -o "$root/usr/bin/kubectl-audit" "$build/kubectl-audit"
# Every library either binary loads, at the path the loader looks for it.
for bin in "$build/annals" "$build/kubectl-audit"; do
  ldd "$bin" | awk '/=> \// {print $3} /^\t\/lib/ {print $1}' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nannals:x:65532:65532:annals:/var/lib/annals:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nannals:x:65532:\n' > "$root/etc/group"
chown -R 65532:65532 "$root/var/lib/annals"
chmod 1777 "$root/tmp"

# shellcheck disable=SC2086
ctr=$(buildah $flags from scratch)
# shellcheck disable=SC2086
{
  buildah $flags copy "$ctr" "$root" / >/dev/null
  buildah $flags config \
    --user 65532:65532 \
    --workingdir /var/lib/annals \
    --entrypoint '["/usr/bin/annals"]' \
    --cmd 'serve --data=/var/lib/annals' \
    --volume /var/lib/annals \
    --port 7070 \
    --label org.opencontainers.image.title=annals \
    --label org.opencontainers.image.description="A tamper-evident ledger of a Kubernetes cluster's audit events" \
    "$ctr"
  buildah $flags commit --rm "$ctr" "$image" >/dev/null
}
echo "image: built $image"
