#!/usr/bin/env bash
# Creates the project-local virtual environment .venv from requirements.lock
# and puts the repository's packages (shared/, services/*/) on its path.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.lock
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
{
  pwd
  for d in services/*/; do echo "$(pwd)/${d%/}"; done
} > "$site/sfera.pth"
touch .venv/.installed
