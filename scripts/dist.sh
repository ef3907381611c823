#!/bin/sh
# Release archives for linux/amd64 (`make dist`): the kubectl plugin alone
# (what krew installs) and annals with the plugin, reproducible (sorted,
# owner 0, mtime 0, gzip -n), their SHA256SUMS, and a krew plugin manifest
# (plugin.yaml) naming the plugin archive by its SHA-256. The binaries are
# built for Debian 12 and need its libssl3 and libyaml-0-2 (annals: also
# the libraries `ldd annals` names). docs/install.md "kubectl audit".
#   scripts/dist.sh BUILD_DIR OUT_DIR VERSION [URL_PREFIX]
set -eu
build=$1
out=$2
version=$3
url=${4:-https://github.com/annals-ledger/annals/releases/download/v$version}
case "$version" in
  [0-9]*.[0-9]*.[0-9]*) ;;
  *) echo "dist: version must be MAJOR.MINOR.PATCH, not $version" >&2; exit 2 ;;
esac
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

pack() {  # pack NAME FILE...: NAME.tar.gz of FILE... (basenames) in $out
  name=$1
  shift
  mkdir -p "$stage/$name"
  for f in "$@"; do cp "$f" "$stage/$name/"; done
  (cd "$stage/$name" && tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - . ) |
    gzip -n -9 > "$out/$name.tar.gz"
}

strip -o "$stage/kubectl-audit" "$build/kubectl-audit"
strip -o "$stage/annals" "$build/annals"
cp "$src/README.md" "$stage/README.md"
plugin=kubectl-audit-$version-linux-amd64
pack "$plugin" "$stage/kubectl-audit" "$stage/README.md"
pack "annals-$version-linux-amd64" "$stage/annals" "$stage/kubectl-audit" "$stage/README.md"
(cd "$out" && sha256sum "$plugin.tar.gz" "annals-$version-linux-amd64.tar.gz" > SHA256SUMS)
sha=$(sha256sum "$out/$plugin.tar.gz" | cut -d' ' -f1)
cat > "$out/plugin.yaml" <<YAML
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: audit
spec:
  version: v$version
  homepage: https://github.com/annals-ledger/annals
  shortDescription: Who did what to an application, from a tamper-evident ledger
  description: |
    Asks annals, a tamper-evident ledger of a cluster's audit events, who
    did what to an application instance (a Helm release, a Deployment, a
    Pod) and when, with every answer checked against the ledger's signed
    Merkle tree: kubectl audit deployment/web -n prod.
  caveats: |
    The plugin talks to an annals server: give --url (and --cacert,
    --token or a client certificate), or set them in
    ~/.config/annals/config.yaml. Built for Debian 12 (glibc 2.36,
    libssl3, libyaml-0-2).
  platforms:
    - selector:
        matchLabels:
          os: linux
          arch: amd64
      uri: $url/$plugin.tar.gz
      sha256: $sha
      files:
        - from: kubectl-audit
          to: .
        - from: README.md
          to: .
      bin: kubectl-audit
YAML
echo "dist: wrote $out/$plugin.tar.gz, $out/annals-$version-linux-amd64.tar.gz, SHA256SUMS, plugin.yaml"
