#!/usr/bin/env bash
# Brings Debian's prometheus package's binaries (prometheus, promtool) into .tools/prometheus for
# the alert tests, without installing the package: no service is started, nothing of the host is
# changed. Prints the directory that holds the binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.tools/prometheus
if [ ! -x "$dest/usr/bin/promtool" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "ensure-prometheus: fetching Debian's prometheus package (promtool and prometheus for the alert tests)" >&2
  if ! (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
    [ "$(id -u)" -eq 0 ] || { echo "ensure-prometheus: apt-get download prometheus failed; as root run: apt-get update" >&2; exit 1; }
    apt-get update -qq >&2
    (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1)
  fi
  rm -rf "$dest" && mkdir -p "$dest"
  dpkg-deb -x "$tmp"/prometheus_*.deb "$dest"
fi
echo "$PWD/$dest/usr/bin"
