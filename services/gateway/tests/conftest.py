"""The gateway's unit tests: the Flask app with its RPC pool replaced by a fake."""

from __future__ import annotations

_NO_DEFAULT = object()


class FakeRpc:
    """Answers RPCs from ``answers[(service, method)]`` (a value, an exception to
    raise, or a function of the call's keyword arguments) and records each call
    as ``(service, method, request_id, kwargs)``."""

    def __init__(self, default=_NO_DEFAULT):
        self.calls = []
        self.answers = {}
        self.default = default

    def call(self, service, method, *, request_id=None, **kwargs):
        self.calls.append((service, method, request_id, kwargs))
        if (service, method) in self.answers or self.default is _NO_DEFAULT:
            answer = self.answers[(service, method)]
        else:
            answer = self.default
        if isinstance(answer, BaseException):
            raise answer
        return answer(**kwargs) if callable(answer) else answer
