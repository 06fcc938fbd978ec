#!/usr/bin/env bash
# The web client: `npm ci` when package-lock.json changed, `npm run build` into web/dist when
# its sources changed (a stamp of their hash), nothing when both are current.
#   web.sh          install + build (make setup)
#   web.sh dev      Vite's dev server proxying /api to the gateway (make web-dev)
#   web.sh npm ...  any npm command in web/ with the right node (tests use it)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
node_dir=$(bash tools/bootstrap/node.sh)
export PATH="$node_dir:$PATH"
cd web
# One install or build at a time (the test workers each ask for the build; the second then finds the stamp current).
exec 9>"$root/web/.build.lock"
flock 9

hash_of() { (cd "$root/web" && find "$@" -type f -print0 2>/dev/null | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64); }

lock_hash=$(hash_of package.json package-lock.json)
if [ ! -d node_modules ] || [ "$(cat node_modules/.sfera-lock 2>/dev/null)" != "$lock_hash" ]; then
  echo "web: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.sfera-lock
fi

case "${1:-build}" in
  dev)
    exec 9>&-
    exec npm run dev -- --host 127.0.0.1
    ;;
  npm)
    shift
    exec 9>&-
    exec npm "$@"
    ;;
  build)
    src_hash=$(hash_of package.json package-lock.json index.html vite.config.ts tsconfig.json public src)
    if [ ! -f dist/index.html ] || [ "$(cat .stamp 2>/dev/null)" != "$src_hash" ]; then
      echo "web: npm run build"
      npm run build --silent
      echo "$src_hash" > .stamp
    fi
    ;;
  *)
    echo "usage: web.sh [build|dev|npm ...]" >&2
    exit 2
    ;;
esac
