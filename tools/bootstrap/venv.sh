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
"${pip[@]}" install -r requirements.lock
# Their dependencies are the lock's, installed above; setuptools (the build backend) is pinned there too.
projects=(-e ./shared)
for d in services/*/; do projects+=(-e "./${d%/}"); done
"${pip[@]}" install --no-deps --no-build-isolation "${projects[@]}"
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# The repository's own tools (tools/, bench/, tests/) are no packages: the root stays importable.
rm -f "$site/sfera.pth"
pwd > "$site/sfera-repo.pth"
"${pip[@]}" wheel -r requirements.lock -w .venv/wheelhouse
touch .venv/.installed
