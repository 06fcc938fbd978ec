"""/healthz of the processes without a web framework (shared/observability/http.py): ok only when the process
says it is ready and every check passes."""

from __future__ import annotations

import json

from shared.observability.http import Readiness, make_wsgi_app


def get(app, path: str = "/healthz") -> tuple[str, dict]:
    answer: dict = {}

    def start_response(status, headers):
        answer["status"] = status
        answer["headers"] = dict(headers)

    body = b"".join(app({"PATH_INFO": path}, start_response))
    assert answer["headers"]["Content-Type"] == "application/json"
    return answer["status"], json.loads(body)


def failing() -> None:
    raise RuntimeError("no broker")


def test_starting_then_ok_then_stopping():
    readiness = Readiness()
    app = make_wsgi_app("identity", {"broker": lambda: None}, readiness)
    status, body = get(app)
    assert status.startswith("503")
    assert body["status"] == "starting" and body["process"] == "identity" and body["checks"] == {"broker": "ok"}
    assert "not started" in body["message"]
    readiness.ready()
    assert get(app) == ("200 OK", {"process": "identity", "status": "ok", "checks": {"broker": "ok"}})
    readiness.stopping()
    status, body = get(app)
    assert status.startswith("503") and body["status"] == "stopping" and body["message"]


def test_a_stop_asked_for_during_the_start_stays_a_stop():
    readiness = Readiness()
    readiness.stopping()
    readiness.ready()
    assert get(make_wsgi_app("identity", {}, readiness))[1]["status"] == "stopping"


def test_a_failing_check_fails_a_ready_process():
    readiness = Readiness()
    readiness.ready()
    status, body = get(make_wsgi_app("identity", {"broker": failing}, readiness))
    assert status.startswith("503")
    assert body == {"process": "identity", "status": "failing", "checks": {"broker": "failing: no broker"}}


def test_without_readiness_the_checks_alone_decide():
    assert get(make_wsgi_app("x", {"broker": lambda: None}))[0] == "200 OK"


def test_livez_answers_while_starting_and_runs_no_check():
    ran = []
    app = make_wsgi_app("identity-relay", {"broker": lambda: ran.append("broker") or failing()}, Readiness())
    assert get(app, "/livez") == ("200 OK", {"process": "identity-relay", "status": "alive"})
    assert ran == []


class _ReadyDuringTheAnswer(Readiness):
    """The runner's thread makes the process ready while /healthz answers: "starting" on the first look at the
    state, "ok" on every look after it."""

    looks = 0

    @property
    def state(self) -> str:
        self.looks += 1
        return "starting" if self.looks == 1 else "ok"

    @state.setter
    def state(self, value: str) -> None:
        pass


def test_the_process_made_ready_while_healthz_answers_gets_one_answer_not_a_server_error():
    """CI: /healthz answered wsgiref's 500 page once during a start (the state read twice: "starting", then "ok",
    which has no message: KeyError). One look at the state decides the whole answer."""
    status, body = get(make_wsgi_app("identity", {}, _ReadyDuringTheAnswer()))
    assert status.startswith("503") and body["status"] == "starting" and "not started" in body["message"]


def test_a_check_added_while_healthz_runs_the_checks_gives_an_answer_not_a_server_error():
    """The runner registers checks as its dependencies start, in another thread, while /healthz may be running
    them: CI got 'dictionary changed size during iteration' and wsgiref's 500 page during a start. Now the checks
    of the moment are run; the one added shows in the next answer."""
    checks: dict = {}

    def adds_one() -> None:
        checks["store"] = lambda: None

    checks["broker"] = adds_one
    status, body = get(make_wsgi_app("identity", checks))
    assert status == "200 OK" and body["checks"] == {"broker": "ok"}
    assert get(make_wsgi_app("identity", checks))[1]["checks"] == {"broker": "ok", "store": "ok"}
