"""Every service is wired the same way."""

import pytest
from nameko.rpc import Rpc

from shared.errors import DomainError
from shared.platform import SERVICES, load
from shared.service import EventSourcedApp, Observability

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", list(SERVICES))
def test_service_has_store_observability_and_typed_rpc_errors(name):
    cls = load(SERVICES[name].service)
    assert cls.name == name
    assert isinstance(cls.app, EventSourcedApp)
    assert any(isinstance(v, Observability) for v in vars(cls).values())
    rpcs = [e for attr in dir(cls) for e in getattr(getattr(cls, attr), "nameko_entrypoints", ())
            if isinstance(e, Rpc)]
    assert rpcs, f"{name} has no RPC entrypoint"
    for entrypoint in rpcs:
        assert entrypoint.expected_exceptions == (DomainError,)
