"""The web client's own checks inside `make test`: vue-tsc (strict types against the
generated API types) and vitest (session refresh, error messages, router guards, plurals)."""

from __future__ import annotations

import json
import re

import pytest

from tests.web.conftest import ROOT, web_tool

pytestmark = pytest.mark.unit


def test_the_client_type_checks():
    """vue-tsc over the client's sources, once per change of them: `npm run build` runs it before vite, and
    web.sh builds whenever an input of the build changed (its stamp, the hash of them all, is written after a
    build that passed). So the build of exactly these sources is the check; `make setup` has made it before the
    tests (CI ran vue-tsc twice, 20 s of CPU each), and it is made here when it has not been."""
    scripts = json.loads((ROOT / "web" / "package.json").read_text())["scripts"]
    assert scripts["build"].startswith("vue-tsc --noEmit && "), "the build no longer type-checks first"
    stamped = re.search(r"src_hash=\$\(hash_of ([^)]*)\)", (ROOT / "tools" / "bootstrap" / "web.sh").read_text())
    included = json.loads((ROOT / "web" / "tsconfig.json").read_text())["include"]
    assert stamped and {path.split("/")[0] for path in included} <= set(stamped[1].split()), \
        "vue-tsc reads files the build's stamp does not cover"
    done = web_tool("build")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


def test_the_client_unit_tests_pass():
    done = web_tool("npm", "run", "test:unit", "--silent")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-4000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
