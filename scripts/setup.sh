#!/usr/bin/env bash
# Installs what imgfs needs on a fresh Debian machine, and only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# Not `ldconfig -p | grep -q`: grep -q leaves at the first match, ldconfig then dies of SIGPIPE,
# and pipefail takes that for a missing library.
grep -q 'libfuse\.so\.2' <<<"$(ldconfig -p)" || need_apt+=(libfuse2)
command -v fusermount >/dev/null || need_apt+=(fuse3)
command -v gcc >/dev/null || need_apt+=(gcc)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "imgfs set-up: installing ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${need_apt[@]}" >&2
fi
[ -e /dev/fuse ] || { echo "imgfs set-up: /dev/fuse is missing (load the fuse module)" >&2; exit 1; }

if [ ! -f node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ] || \
   [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "imgfs set-up: installing npm packages" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

# The CLI runs from one bundled file: Node starts it in about 0.2 s, where compiling src/ through
# tsx at every start takes 0.5 s. bin/imgfs runs src/ through tsx while the bundle is older than
# src/. Built beside the old one and renamed over it, so a CLI starting meanwhile reads a whole file.
if [ ! -f dist/cli.js ] || [ -n "$(find src -newer dist/cli.js -print -quit)" ]; then
  mkdir -p dist
  bundle=$(mktemp --suffix=.js dist/.cli-XXXXXX)
  node_modules/.bin/esbuild src/cli.ts --bundle --platform=node --format=esm --packages=external \
    --outfile="$bundle" --log-level=warning
  chmod 644 "$bundle"
  mv -f "$bundle" dist/cli.js
fi
