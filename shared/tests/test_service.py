"""Every service is wired the same way."""

import pytest
from nameko.rpc import Rpc

from shared.contracts.api.school import RejectionInput
from shared.errors import DomainError, Invalid
from shared.platform import SERVICES, load
from shared.service import EventSourcedApp, Observability, rpc

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


def test_arguments_a_service_loads_through_their_schema_are_refused_as_the_gateway_refuses_a_body():
    """A caller other than the gateway (which checks bodies first) gave arguments the schema refuses: a typed
    400 request.invalid naming the fields, as the gateway's answer to the same body (was: the ValidationError
    crashed the worker and reached the caller as a remote error, a 502 behind the gateway)."""

    @rpc
    def reject(payload: dict) -> str:
        return RejectionInput().load(payload)["reason"]

    assert reject({"reason": "Не школа"}) == "Не школа"
    with pytest.raises(Invalid) as refused:
        reject({"reason": "x" * 2001})
    assert (refused.value.code, list(refused.value.details["fields"])) == ("request.invalid", ["reason"])
