#!/bin/sh
# Installs the Debian packages annals builds and runs with, only if missing;
# `deps.sh test` adds what only the test suite uses (a Ceph RADOS Gateway
# for the archive tests, boto3 to check the store independently; Chromium,
# ChromeDriver and Selenium for the console's browser tests; Prometheus and
# promtool for the monitoring test; the Kubernetes API models to check the
# manifests against; buildah, podman and runc to build and run the image).
set -eu
PKGS="build-essential cmake ninja-build clang libclang-rt-14-dev libboost-dev libssl-dev \
libsimdjson-dev librocksdb-dev libzstd-dev zlib1g-dev nlohmann-json3-dev libcli11-dev libgtest-dev libbenchmark-dev \
netcat-openbsd curl python3 libgoogle-perftools-dev libyaml-dev \
rsyslog rsyslog-openssl openssl libnats-dev nats-server"
if [ "${1:-}" = test ]; then
  PKGS="$PKGS python3-boto3 radosgw ceph-mon ceph-osd ceph-common chromium chromium-driver python3-selenium prometheus python3-kubernetes python3-yaml podman buildah runc"
fi
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# kubectl (the plugin's tests run through it): Debian's kubernetes-client,
# unless a kubectl is already installed (e.g. Google's package).
command -v kubectl >/dev/null 2>&1 || missing="$missing kubernetes-client"
if [ -n "$missing" ]; then
  echo "deps: installing$missing"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi
