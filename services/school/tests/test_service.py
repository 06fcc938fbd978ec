"""school's nameko entrypoints with nameko's worker_factory (dependencies replaced): what they check of any
caller's arguments, not only the gateway's."""

import uuid

import pytest
from nameko.testing.services import worker_factory

from school.application import SchoolApplication
from school.service import SchoolService
from shared.config import settings
from shared.errors import Invalid
from shared.store import make_application

pytestmark = pytest.mark.unit


@pytest.fixture
def service():
    app = make_application(SchoolApplication, "school", create_table=True, config=settings({"PERSISTENCE": "memory"}))
    return worker_factory(SchoolService, app=app)


def test_a_join_requests_message_is_checked_in_the_service_too_SC_3(service):
    """The gateway refuses a message over 1,000 characters; an RPC caller's was stored whatever its length."""
    with pytest.raises(Invalid) as refused:
        service.request_to_join(str(uuid.uuid4()), str(uuid.uuid4()), "x" * 1001)
    assert (refused.value.code, list(refused.value.details["fields"])) == ("request.invalid", ["message"])
