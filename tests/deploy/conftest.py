"""The e2e platform's fixtures, for the test that scrapes it with a real Prometheus."""

from tests.e2e.conftest import api, klass, platform, room  # noqa: F401  (pytest finds fixtures imported here)
