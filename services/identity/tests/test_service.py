"""identity's nameko entrypoints with nameko's worker_factory (dependencies replaced)."""

import uuid

import pytest
from nameko.testing.services import worker_factory

from identity.application import IdentityApplication
from identity.service import IdentityService
from shared.auth import verify_access_token
from shared.config import settings
from shared.errors import Forbidden
from shared.store import make_application

pytestmark = pytest.mark.unit


@pytest.fixture
def service():
    app = make_application(IdentityApplication, "identity", config=settings({"PERSISTENCE": "memory"}))
    return worker_factory(IdentityService, app=app)


def test_the_code_goes_to_the_delivery_adapter_never_to_the_caller_ID_9(service):
    result = service.request_sign_in_code("+7 900 123-45-67")
    assert set(result) == {"challenge_id", "channel", "phone", "resend_after", "expires_in"}
    (call,) = service.delivery.send_sms.call_args_list
    phone, text = call.args
    code = call.kwargs["code"]
    assert phone == "+79001234567" and code in text
    assert code not in str(result)


def test_confirmation_returns_a_token_the_gateway_can_verify(service):
    issued = service.request_sign_in_code("+79001234567")
    code = service.delivery.send_sms.call_args.kwargs["code"]
    signed_in = service.confirm_sign_in(issued["challenge_id"], code)
    assert verify_access_token(signed_in["access_token"]).user_id == uuid.UUID(signed_in["user_id"])


def test_nobody_reads_another_persons_account(service):
    with pytest.raises(Forbidden):
        service.get_account(str(uuid.uuid4()), str(uuid.uuid4()))
