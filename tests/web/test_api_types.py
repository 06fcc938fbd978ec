"""web/src/api/schema.d.ts is generated from the gateway's /openapi.json: regenerated from
the running platform it must be the committed file (`cd web && npm run gen:api` with the
platform running refreshes it)."""

from __future__ import annotations

import difflib

import pytest

from tests.web.conftest import ROOT, web_tool

pytestmark = pytest.mark.e2e


def test_the_committed_api_types_match_the_gateways_openapi(web, tmp_path):
    out = tmp_path / "schema.d.ts"
    done = web_tool("npm", "exec", "--", "openapi-typescript", f"{web.gateway_url}/openapi.json",
                    "--default-non-nullable", "false", "-o", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    committed = (ROOT / "web" / "src" / "api" / "schema.d.ts").read_text()
    fresh = out.read_text()
    diff = "".join(difflib.unified_diff(committed.splitlines(True), fresh.splitlines(True), "committed", "fresh", n=1))
    assert not diff, ("web/src/api/schema.d.ts is stale: run `npm run gen:api` in web/ against a running platform "
                      "(SFERA_OPENAPI_URL)\n" + diff[:6000])
