"""identity's nameko entrypoints with nameko's worker_factory (dependencies replaced)."""

import uuid

import pytest
from nameko.testing.services import worker_factory

from identity.application import IdentityApplication
from identity.delivery import DeliveryError
from identity.service import IdentityService
from shared.auth import verify_access_token
from shared.config import settings
from shared.errors import DomainError, Forbidden
from shared.store import make_application

pytestmark = pytest.mark.unit


@pytest.fixture
def service():
    app = make_application(IdentityApplication, "identity", config=settings({"PERSISTENCE": "memory"}))
    return worker_factory(IdentityService, app=app)


def test_the_code_goes_to_the_delivery_adapter_never_to_the_caller_ID_9(service):
    result = service.request_sign_in_code("+7 900 123-45-67", client="10.0.0.1")
    assert set(result) == {"challenge_id", "channel", "sent_to", "resend_after", "expires_in"}
    (call,) = service.delivery.sender.send_sms.call_args_list
    phone, text = call.args
    code = call.kwargs["code"]
    assert phone == "+79001234567" and code in text
    assert code not in str(result)


def test_confirmation_returns_a_token_the_gateway_can_verify(service):
    issued = service.request_sign_in_code("+79001234567", client="10.0.0.1")
    code = service.delivery.sender.send_sms.call_args.kwargs["code"]
    signed_in = service.confirm_sign_in(issued["challenge_id"], code, device="test")
    principal = verify_access_token(signed_in["access_token"])
    assert principal.user_id == uuid.UUID(signed_in["user_id"])
    assert principal.session_id == signed_in["session_id"] and principal.method == "code"


def test_a_flash_call_comes_from_a_number_ending_in_the_code_ID_1(service):
    service.request_sign_in_code("+79001234567", client="10.0.0.1", channel="flash_call")
    (call,) = service.delivery.sender.flash_call.call_args_list
    phone, caller = call.args
    assert caller.endswith(call.kwargs["code"]) and len(call.kwargs["code"]) == 4


def test_a_junior_email_code_needs_schools_word_on_the_invite_ID_4(service):
    service.school.validate_invite.return_value = {
        "organization_id": str(uuid.uuid4()), "class_id": str(uuid.uuid4()), "role": "student",
        "email_registration_allowed": True}
    issued = service.request_email_code("kid@example.org", invite_token="inv-1", client="10.0.0.1")
    service.school.validate_invite.assert_called_once_with(token="inv-1")
    assert issued["channel"] == "email" and issued["sent_to"] == "kid@example.org"
    service.school.validate_invite.return_value["email_registration_allowed"] = False
    with pytest.raises(Forbidden):
        service.request_email_code("kid2@example.org", invite_token="inv-2", client="10.0.0.1")


def test_revoking_a_parent_link_goes_to_the_application_PL_2(service):
    child = str(uuid.uuid4())
    assert service.revoke_parent_invite(actor_id=child, child_id=child) is None  # no link yet: nothing to revoke
    with pytest.raises(Forbidden) as info:
        service.revoke_parent_invite(actor_id=str(uuid.uuid4()), child_id=child)
    assert info.value.code == "parent_link.revoke_forbidden"


def test_a_failed_delivery_tells_the_caller_no_more_than_that_ID_9(service):
    """An outside audit: the SMS gateway's error (its address, paths, what it echoed) went back in the answer to
    anyone asking for a code. It goes to the log; the caller learns only that the code was not sent."""
    service.delivery.sender.send_sms.side_effect = DeliveryError(
        "SMS gateway unreachable: host='sms-gw.internal.svc.cluster.local', port=9900, url: /v1?api_key=SECRET")
    with pytest.raises(DomainError) as failed:
        service.request_sign_in_code("+79001234567", client="10.0.0.1")
    assert failed.value.code == "sign_in.delivery_failed" and failed.value.details == {}
    assert "sms-gw" not in str(failed.value.args)
