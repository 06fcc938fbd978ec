"""The gateway's door (issue #12): bad input is a 400/413 with a stable code, never a
5xx and never a call to a service; bounded metric labels; security headers;
one paging shape. Services are replaced by a fake RPC pool."""

import io
import uuid

import pytest

from gateway.app import create_app
from shared.errors import Invalid
from shared.paging import decode_cursor, encode_cursor

from .conftest import FakeRpc, bearer

pytestmark = pytest.mark.unit

SIGN_IN = "/api/v1/auth/sign-in-codes"
# An id nobody has; fixed, as it names parametrized tests (the same on every pytest-xdist worker).
UNKNOWN = "0b7e3c4d-5a61-4f28-8d9e-2c4f6a8b1e07"


@pytest.fixture
def rpc():
    return FakeRpc({})  # every call the door lets through answers {}


def assert_error(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert body["error"]["message"] and isinstance(body["error"]["details"], dict)
    return body["error"]


# -- JSON bodies ------------------------------------------------------------------------------------------

def test_a_100000_deep_json_body_is_a_400_not_a_500(client, rpc):
    deep = b"[" * 100_000 + b"]" * 100_000
    assert_error(client.post(SIGN_IN, data=deep, content_type="application/json"), 400, "request.too_deep")
    deep_object = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    assert_error(client.post(SIGN_IN, data=deep_object, content_type="application/json"), 400, "request.too_deep")
    assert rpc.calls == []


def test_json_deeper_than_the_limit_but_parseable_is_refused(client, rpc):
    body = '{"phone": ' + "[" * 40 + "]" * 40 + "}"
    error = assert_error(client.post(SIGN_IN, data=body, content_type="application/json"), 400, "request.too_deep")
    assert error["details"]["max_depth"] == 32
    assert rpc.calls == []


@pytest.mark.parametrize("raw", [
    b'{"phone": "\\ud800"}',                 # an escaped lone surrogate
    b'{"phone": "\xed\xa0\x80"}',            # the same surrogate as raw bytes
    b'{"phone": "+7900\\u0000"}',            # NUL: PostgreSQL cannot store it
    b'{"\\udfff": "+79001234567"}',          # in a key
    b'{"phone": "+79001234567", "x": ["ok", {"y": "\\ud83d"}]}',  # anywhere in the document
])
def test_text_that_is_not_storable_unicode_is_refused_at_the_door(client, rpc, raw):
    assert_error(client.post(SIGN_IN, data=raw, content_type="application/json"), 400, "request.invalid_text")
    assert rpc.calls == []


def test_a_proper_surrogate_pair_is_fine(client, rpc):
    rpc.answers[("identity", "request_sign_in_code")] = {
        "challenge_id": str(uuid.uuid4()), "channel": "sms", "sent_to": "x", "resend_after": 60, "expires_in": 300}
    response = client.post(SIGN_IN, data=b'{"phone": "+7900 \\ud83d\\ude00"}', content_type="application/json")
    assert response.status_code == 201
    assert rpc.calls[0][3]["phone"] == "+7900 \U0001F600"


@pytest.mark.parametrize("raw", [b'{"phone": ', b"\xff\xfe{}", b'{"phone": NaN'])
def test_malformed_json_is_a_400_invalid_json(client, rpc, raw):
    assert_error(client.post(SIGN_IN, data=raw, content_type="application/json"), 400, "request.invalid_json")
    assert rpc.calls == []


def test_query_and_path_text_is_checked_too(client, rpc):
    assert_error(client.get("/api/v1/organizations?country=RU&city=%00", headers=bearer()), 400,
                 "request.invalid_text")
    assert_error(client.get("/api/v1/invites/ab%00cd"), 400, "request.invalid_text")
    assert rpc.calls == []


# -- body size -----------------------------------------------------------------------------------------------

def test_a_json_body_over_the_json_limit_is_413_before_it_is_read(client, rpc):
    big = b'{"phone": "' + b"1" * (1 << 20) + b'"}'
    response = client.post(SIGN_IN, data=big, content_type="application/json")
    error = assert_error(response, 413, "request.too_large")
    assert error["details"]["max_bytes"] == 1 << 20
    assert response.headers["Connection"] == "close"  # not drained for keep-alive
    assert rpc.calls == []


def test_a_body_read_whole_keeps_the_connection_under_a_server_that_ends_the_input_itself(client, rpc):
    """gunicorn says it ends the input (``wsgi.input_terminated``): werkzeug then bounds the stream by the endpoint's
    maximum, not by Content-Length, and the stream's end is not the body's. A chat post read whole said
    ``Connection: close`` all the same: every POST through the asyncio front opened and closed a connection to
    gunicorn (issue #17: an accept, a connect and a graceful close a post)."""
    rpc.answers[("messaging", "post")] = lambda **kwargs: {"chat_id": kwargs["chat_id"], "seq": 1}
    body = b'{"text": "hello"}'
    response = client.post(f"/api/v1/chats/{uuid.uuid4()}/messages", input_stream=io.BytesIO(body),
                           content_type="application/json", content_length=len(body), headers=bearer(),
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 201
    assert "Connection" not in response.headers
    unread = client.post(f"/api/v1/chats/{uuid.uuid4()}/messages", input_stream=io.BytesIO(body),
                         content_type="application/json", content_length=len(body),
                         environ_overrides={"wsgi.input_terminated": True})  # refused before reading: 401
    assert unread.status_code == 401 and unread.headers["Connection"] == "close"


def test_the_json_limit_is_configurable(rpc, monkeypatch, tmp_path):
    monkeypatch.setenv("SFERA_JSON_MAX_BYTES", "100")
    client = create_app(rpc=rpc).test_client()
    assert_error(client.post(SIGN_IN, json={"phone": "1" * 200}), 413, "request.too_large")


def test_a_chunked_json_body_is_cut_off_at_the_limit_while_reading(client, rpc):
    stream = io.BytesIO(b'{"phone": "' + b"1" * (2 << 20) + b'"}')
    response = client.post(SIGN_IN, input_stream=stream, content_type="application/json",
                           headers={"Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})
    assert_error(response, 413, "request.too_large")
    assert stream.tell() <= (1 << 20) + 64 * 1024  # read no further than the limit (and one buffer)
    assert rpc.calls == []


def test_an_anonymous_large_body_to_an_upload_endpoint_is_not_read(client, rpc):
    stream = io.BytesIO(b"x" * (3 << 20))
    response = client.post(f"/api/v1/organizations/{uuid.uuid4()}/documents", input_stream=stream,
                           content_type="multipart/form-data; boundary=b", content_length=3 << 20)
    assert_error(response, 401, "auth.required")
    assert stream.tell() == 0
    assert response.headers["Connection"] == "close"


def test_uploads_keep_their_own_limit_above_the_json_limit(client, rpc, monkeypatch):
    monkeypatch.setenv("SFERA_DOCUMENT_MAX_BYTES", str(3 << 20))
    data = {"title": "Расписание", "file": (io.BytesIO(b"%PDF-1.4 " + b"0" * (2 << 20)), "plan.pdf",
                                             "application/pdf")}
    response = client.post(f"/api/v1/organizations/{uuid.uuid4()}/documents", data=data, headers=bearer())
    assert response.status_code != 413 and rpc.calls  # past the door: the upload goes on to school
    too_big = {"title": "x", "file": (io.BytesIO(b"0" * (4 << 20)), "big.pdf", "application/pdf")}
    response = client.post(f"/api/v1/organizations/{uuid.uuid4()}/documents", data=too_big, headers=bearer())
    assert_error(response, 413, "request.too_large")


# -- metrics labels ------------------------------------------------------------------------------------------

def series(client, method):
    text = client.get("/metrics").get_data(as_text=True)
    return [line for line in text.splitlines()
            if line.startswith("sfera_http_request_duration_seconds_count") and f'method="{method}"' in line]


def test_unknown_methods_do_not_add_metric_series(client):
    for n in range(5):
        client.open("/api/v1/me", method=f"FOOBAR{n}")
    assert series(client, "FOOBAR1") == []
    assert series(client, "other")  # counted, under one bounded label


# -- security headers -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v1/me", "/nowhere", "/metrics", "/openapi.json", "/docs",
                                  f"/call/{UNKNOWN}", "/"])
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp
    if path.startswith("/api/"):  # one person's answers, errors included: no browser or proxy keeps them
        assert response.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in response.headers  # the public URL is http here


def test_the_docs_page_has_no_inline_script(client):
    page = client.get("/docs")
    assert "script-src 'self';" in page.headers["Content-Security-Policy"]
    assert "<script>" not in page.get_data(as_text=True)
    assert client.get("/static/docs.js").status_code == 200


def test_hsts_when_the_public_url_is_https(client, monkeypatch):
    monkeypatch.setenv("SFERA_PUBLIC_URL", "https://sfera.example")
    assert client.get("/api/v1/me").headers["Strict-Transport-Security"].startswith("max-age=")


# -- paging ---------------------------------------------------------------------------------------------------------

CHAT = f"/api/v1/chats/{uuid.uuid4()}/messages"


@pytest.mark.parametrize("query", ["after=-5", "before=-1", "before=1e23", "after=99999999999999999999999",
                                   "limit=0", "limit=201", "limit=abc", "before=1.5"])
def test_invalid_history_paging_is_a_400(client, rpc, query):
    assert_error(client.get(f"{CHAT}?{query}", headers=bearer()), 400, "request.invalid")
    assert rpc.calls == []


@pytest.mark.parametrize("path", ["/organizations?country=RU&city=Kazan", f"/channels/{UNKNOWN}/posts",
                                  f"/organizations/{UNKNOWN}/members"])
@pytest.mark.parametrize("cursor", ["garbage", "%%%", "cDE", "Zm9vYmFy", "x" * 700])
def test_a_cursor_no_page_gave_is_a_400(client, rpc, path, cursor):
    sep = "&" if "?" in path else "?"
    assert_error(client.get(f"/api/v1{path}{sep}cursor={cursor}", headers=bearer()), 400, "paging.invalid_cursor")
    assert rpc.calls == []


def test_a_cursor_a_page_gave_is_passed_on(client, rpc):
    cursor = encode_cursor("самара|" + str(uuid.uuid4()))
    rpc.answers[("school", "search")] = {"items": [], "next_cursor": None}
    response = client.get(f"/api/v1/organizations?country=RU&city=Kazan&cursor={cursor}", headers=bearer())
    assert response.status_code == 200
    assert rpc.calls[0][3]["cursor"] == cursor


def test_cursors_round_trip_and_refuse_what_they_did_not_make():
    assert decode_cursor(encode_cursor("a|b")) == "a|b"
    assert decode_cursor(None) is None and decode_cursor("") is None
    for bad in ("garbage", "Zm9vYmFy", "\ud800", "!!"):
        with pytest.raises(Invalid) as raised:
            decode_cursor(bad)
        assert raised.value.code == "paging.invalid_cursor"


# -- the document tells the truth ----------------------------------------------------------------------------------

def test_the_openapi_document_lists_every_status_instead_of_default(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert "default" not in operation["responses"], (method, path)
    join = paths["/api/v1/calls/{call_id}/join"]["post"]["responses"]
    assert {"200", "400", "401", "403", "404", "409", "503"} <= set(join), sorted(join)
    assert "call.full" in join["409"]["description"] and "call.not_found" in join["404"]["description"]
    sign_in = paths["/api/v1/auth/sign-in-codes"]["post"]["responses"]
    assert {"201", "400", "413", "429"} <= set(sign_in) and "401" not in sign_in
    qr = paths["/api/v1/invites/{token}/qr.{fmt}"]["get"]
    assert qr["parameters"][1]["schema"] == {"type": "string", "enum": ["svg", "png"]}
    assert set(qr["responses"]["200"]["content"]) == {"image/svg+xml", "image/png"}
