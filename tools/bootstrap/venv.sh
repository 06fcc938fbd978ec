#!/usr/bin/env bash
# Creates the project-local virtual environment .venv from requirements.lock, installs Sfera's own packages
# (shared/ and every services/*/, each from its own pyproject.toml) editable into it, and fills
# .venv/wheelhouse with the wheels of requirements.lock: tests/packaging installs each package alone from
# there into a fresh venv, offline.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip=(.venv/bin/python -m pip -q --disable-pip-version-check)
# The wheelhouse fills beside the install (the same wheels: copying them and unpacking them overlap on two cores;
# a clean clone's set-up took 173 s one after the other, 154 s side by side); stopped if the install fails.
"${pip[@]}" wheel -r requirements.lock -w .venv/wheelhouse > .venv/wheelhouse.log 2>&1 &
wheels=$!
trap '[ -z "$wheels" ] || kill "$wheels" 2>/dev/null || true' EXIT
# --no-compile: pip byte-compiled every module of the lock (botocore, moto, cfn-lint ... most never imported here),
# 59 vs 41 s of a clean clone's install; Python compiles what is imported, once, on its first import.
"${pip[@]}" install --no-compile -r requirements.lock
# Their dependencies are the lock's, installed above; setuptools (the build backend) is pinned there too.
projects=(-e ./shared)
for d in services/*/; do projects+=(-e "./${d%/}"); done
"${pip[@]}" install --no-deps --no-build-isolation "${projects[@]}"
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# The repository's own tools (tools/, bench/, tests/) are no packages: the root stays importable.
rm -f "$site/sfera.pth"
pwd > "$site/sfera-repo.pth"
wait "$wheels" || { wheels=; cat .venv/wheelhouse.log >&2; echo "venv.sh: pip wheel failed (above)" >&2; exit 1; }
wheels=
touch .venv/.installed
