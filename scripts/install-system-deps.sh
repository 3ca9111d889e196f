#!/usr/bin/env bash
# Makes sure the Debian packages the agent, gateway and lab use are installed:
#   iproute2 (ip, bridge), nftables (nft), iputils-ping (ping), ethtool, and openssl (the lab's
#   device emulators make their TLS certificates with it).
# As root it installs what is missing with apt-get and says so; otherwise it names the command to run.
set -euo pipefail
declare -A pkg_of=([ip]=iproute2 [bridge]=iproute2 [nft]=nftables [ping]=iputils-ping [ethtool]=ethtool [openssl]=openssl)
# kubectl is not installed by the build (Debian's kubernetes-client is 1.20, too old to exercise the
# lab as an operator would): its tests are skipped with a one-line reason when it is missing.
if ! command -v kubectl >/dev/null 2>&1; then
  echo "install-system-deps: kubectl not found: the kubectl e2e tests will be skipped. Install kubectl v1.32 or newer" >&2
  echo "install-system-deps: from the Kubernetes project's packages (https://kubernetes.io/docs/tasks/tools/); Debian's kubernetes-client 1.20 is too old" >&2
fi
missing=()
for cmd in ip bridge nft ping ethtool openssl; do
  command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkg_of[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-deps: missing Debian packages: $pkgs" >&2
  echo "install-system-deps: run as root:  apt-get update && apt-get install -y $pkgs" >&2
  exit 1
fi
echo "install-system-deps: installing Debian packages: $pkgs" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $pkgs >&2
