"""The gateway serves the web client's build (gateway.webapp): pages fall back to index.html
(history routing), hashed assets are cached for a year, the API keeps its own 404s, and the
pages' CSP lets the build's own scripts run and nothing inline."""

import pytest

from gateway.app import create_app

pytestmark = pytest.mark.unit

INDEX = '<!doctype html><html><head><script type="module" src="/assets/index-abc123.js"></script></head></html>'


class NoRpc:
    def call(self, *args, **kwargs):
        raise AssertionError("no service is called for the web client")


@pytest.fixture
def dist(tmp_path, monkeypatch):
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-abc123.js").write_text("console.log('app')")
    (root / "favicon.svg").write_text("<svg/>")
    monkeypatch.setenv("SFERA_WEB_DIST", str(root))
    return root


@pytest.fixture
def client(dist):
    return create_app(rpc=NoRpc()).test_client()


def test_the_root_is_the_app_revalidated_on_every_load(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.get_data(as_text=True) == INDEX
    assert response.headers["Cache-Control"] == "no-cache"
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'self'" in csp


@pytest.mark.parametrize("path", [
    "/invite/abc.def-ghi", "/parent-invite/tok_en", "/chat-invite/xyz", "/ejournal/link?provider_id=p1",
    "/profile", "/some/deep/page", "/call/6f1c2a52-3d1e-4a55-9e0b-2f7d2c1e9a10",
])
def test_every_link_the_platform_hands_out_is_a_page_of_the_app(client, path):
    response = client.get(path)
    assert response.status_code == 200, path
    assert response.get_data(as_text=True) == INDEX
    assert response.headers["Cache-Control"] == "no-cache"


def test_a_call_is_a_page_of_the_app_that_may_reach_the_sfu_and_the_camera(client, monkeypatch):
    """CA-10: /call/<id> is the web client's call view (the gateway's own call page is gone): its
    pages may open the SFU's signaling socket and show the camera and attachments (blob:)."""
    monkeypatch.setenv("SFERA_SFU_URL", "wss://sfu.example:8443/ws")
    response = client.get("/call/6f1c2a52-3d1e-4a55-9e0b-2f7d2c1e9a10")
    assert response.get_data(as_text=True) == INDEX
    csp = response.headers["Content-Security-Policy"]
    assert "connect-src 'self' wss://sfu.example:8443;" in csp
    # several nodes (deploy/k8s: wss://sfu-N.<SFERA_SFU_NODE_DOMAIN>/ws, what calls hands out): each may be reached
    monkeypatch.setenv("SFERA_SFU_NODE_DOMAIN", "sfu.sfera.example.org")
    csp = client.get("/call/6f1c2a52-3d1e-4a55-9e0b-2f7d2c1e9a10").headers["Content-Security-Policy"]
    assert "connect-src 'self' wss://sfu.example:8443 wss://*.sfu.sfera.example.org;" in csp
    assert "media-src 'self' blob: mediastream:;" in csp
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp
    assert client.get("/static/call.js").status_code == 404


def test_hashed_assets_are_cached_for_a_year(client):
    response = client.get("/assets/index-abc123.js")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert client.get("/favicon.svg").headers["Cache-Control"] == "no-cache"


def test_a_missing_asset_is_a_404_not_the_page(client):
    response = client.get("/assets/index-gone.js")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "route.not_found"


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/api/v1/nothing-here", 404), ("GET", "/api/nope", 404), ("POST", "/api/v1/me", 405),
    ("GET", "/static/nothing.js", 404),
])
def test_the_api_keeps_its_own_errors(client, method, path, status):
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] in ("route.not_found", "route.method_not_allowed")
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_openapi_and_docs_stay_where_they_are(client):
    assert client.get("/openapi.json").get_json()["openapi"].startswith("3.")
    assert client.get("/docs").mimetype == "text/html"


def test_a_path_outside_the_build_is_never_served(client, dist):
    (dist.parent / "secret.txt").write_text("nope")
    response = client.get("/../secret.txt")
    assert "nope" not in response.get_data(as_text=True)


def test_without_a_build_the_root_describes_the_api(tmp_path, monkeypatch):
    monkeypatch.setenv("SFERA_WEB_DIST", str(tmp_path / "none"))
    response = create_app(rpc=NoRpc()).test_client().get("/")
    assert response.get_json()["api"] == "/api/v1"
