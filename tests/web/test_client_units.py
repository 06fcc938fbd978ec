"""The web client's own checks inside `make test`: vue-tsc (strict types against the
generated API types) and vitest (session refresh, error messages, router guards, plurals)."""

from __future__ import annotations

import pytest

from tests.web.conftest import web_tool

pytestmark = pytest.mark.unit


def test_the_client_type_checks():
    done = web_tool("npm", "run", "typecheck", "--silent")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


def test_the_client_unit_tests_pass():
    done = web_tool("npm", "run", "test:unit", "--silent")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-4000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
