"""School records the people identity registers, once (against every store)."""

import uuid
from datetime import datetime, timezone

import pytest

from school.application import SchoolApplication
from shared.contracts import make_event
from shared.errors import NotFound
from shared.store import make_application

pytestmark = pytest.mark.integration


def user_registered(event_id: str, user_id: uuid.UUID):
    return make_event("identity.UserRegistered.v1", {
        "user_id": user_id, "phone": "+79001234567", "registered_via": "phone",
        "registered_at": datetime(2026, 9, 1, tzinfo=timezone.utc),
    }, event_id=event_id)


def test_user_registered_is_recorded_once(store_settings):
    app = make_application(SchoolApplication, "school", create_table=True, config=store_settings)
    user_id = uuid.uuid4()
    assert app.record_user(user_registered("identity:1:UserRegistered.v1", user_id)) is True
    assert app.record_user(user_registered("identity:1:UserRegistered.v1", user_id)) is False
    person = app.get_person(user_id)
    assert person.version == 1
    assert person.registered_via == "phone"


def test_a_republished_copy_with_a_new_id_does_not_duplicate_the_person(store_settings):
    app = make_application(SchoolApplication, "school", create_table=True, config=store_settings)
    user_id = uuid.uuid4()
    app.record_user(user_registered("identity:1:UserRegistered.v1", user_id))
    assert app.record_user(user_registered("identity:1:UserRegistered.v2", user_id)) is True
    assert app.get_person(user_id).version == 1


def test_an_unknown_person_is_not_found(store_settings):
    app = make_application(SchoolApplication, "school", create_table=True, config=store_settings)
    with pytest.raises(NotFound):
        app.get_person(uuid.uuid4())
