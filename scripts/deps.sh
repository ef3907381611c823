#!/bin/sh
# Installs the Debian packages annals builds and tests with, only if missing.
set -eu
PKGS="build-essential cmake clang libclang-rt-14-dev libboost-dev libssl-dev \
libsimdjson-dev librocksdb-dev libzstd-dev nlohmann-json3-dev libcli11-dev libgtest-dev libbenchmark-dev \
netcat-openbsd curl python3 libgoogle-perftools-dev libyaml-dev \
rsyslog rsyslog-openssl openssl libnats-dev nats-server"
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
