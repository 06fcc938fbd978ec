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
compiling=
trap '[ -z "$wheels" ] || kill "$wheels" 2>/dev/null || true; [ -z "$compiling" ] || kill "$compiling" 2>/dev/null || true' EXIT
# Byte-compiled apart (--no-compile): pip compiles file by file on one core inside its install (59 s for the lock
# here); installed without, then compiled on every core beside the rest of the set-up (41 s + 14 s, the 14 s
# overlapping the wheelhouse). Compiled before any test: the first stack's fifteen processes would each compile
# the same modules at once.
"${pip[@]}" install --no-compile -r requirements.lock
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
.venv/bin/python -m compileall -q -j0 "$site" > .venv/compileall.log 2>&1 &
compiling=$!
# Their dependencies are the lock's, installed above; setuptools (the build backend) is pinned there too.
projects=(-e ./shared)
for d in services/*/; do projects+=(-e "./${d%/}"); done
"${pip[@]}" install --no-deps --no-build-isolation "${projects[@]}"
# The repository's own tools (tools/, bench/, tests/) are no packages: the root stays importable.
rm -f "$site/sfera.pth"
pwd > "$site/sfera-repo.pth"
wait "$wheels" || { wheels=; cat .venv/wheelhouse.log >&2; echo "venv.sh: pip wheel failed (above)" >&2; exit 1; }
wheels=
# A module that does not compile (a test fixture of some package) only fails on import, as with pip's own compile.
wait "$compiling" || true
compiling=
touch .venv/.installed
