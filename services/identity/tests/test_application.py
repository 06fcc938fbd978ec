"""Identity's application against every store (memory, SQLite, PostgreSQL)."""

import threading

import pytest

from identity.application import IdentityApplication
from identity.domain import Account
from identity.outbox import to_integration_events
from shared.contracts import make_event
from shared.errors import Invalid, NotFound
from shared.store import make_application

pytestmark = pytest.mark.integration


@pytest.fixture
def app(store_settings):
    return make_application(IdentityApplication, "identity", create_table=True, config=store_settings)


def sign_in(app, phone="+79001234567"):
    issued = app.request_sign_in_code(phone)
    return app.confirm_sign_in(issued.challenge.id, issued.code)


def test_first_confirmation_registers_an_account_ID_1(app):
    result = sign_in(app)
    assert result.new_account
    assert result.account.phone == "+79001234567"
    assert app.get_account(result.account.id).registered_via == "phone"


def test_one_phone_is_one_account_ID_3(app):
    first = sign_in(app, "+7 900 123-45-67")
    second = sign_in(app, "8 900 123 45 67")
    assert second.new_account is False
    assert second.account.id == first.account.id


def test_a_wrong_code_is_refused_and_says_how_many_tries_remain(app):
    issued = app.request_sign_in_code("+79001234567")
    with pytest.raises(Invalid) as info:
        app.confirm_sign_in(issued.challenge.id, "000000" if issued.code != "000000" else "111111")
    assert info.value.code == "sign_in.wrong_code"
    assert info.value.details["attempts_left"] == 4


def test_unknown_challenge_is_not_found(app):
    import uuid

    with pytest.raises(NotFound):
        app.confirm_sign_in(uuid.uuid4(), "123456")


def test_registration_publishes_user_registered_through_the_outbox(app):
    result = sign_in(app)
    published = []
    for notification in app.process_recorder.select_notifications(start=1, limit=100):
        for event_type, data, subject in to_integration_events(app.mapper.to_domain_event(notification)):
            published.append(make_event(event_type, data, event_id=f"identity:{notification.id}", subject=subject))
    assert [e.type for e in published] == ["identity.UserRegistered.v1"]
    assert published[0].data["user_id"] == result.account.id
    assert published[0].data["phone"] == "+79001234567"


def test_concurrent_registrations_of_one_phone_make_one_account_ID_3(durable_store_settings):
    make_application(IdentityApplication, "identity", create_table=True, config=durable_store_settings)
    apps = [make_application(IdentityApplication, "identity", config=durable_store_settings) for _ in range(4)]
    codes = [a.request_sign_in_code("+79001234567") for a in apps]
    barrier = threading.Barrier(len(apps))
    results = []

    def confirm(a, issued):
        barrier.wait()
        results.append(a.confirm_sign_in(issued.challenge.id, issued.code))

    threads = [threading.Thread(target=confirm, args=pair) for pair in zip(apps, codes, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    assert len({r.account.id for r in results}) == 1
    assert sum(r.new_account for r in results) == 1
    registered = [n for n in apps[0].process_recorder.select_notifications(start=1, limit=1000)
                  if n.topic.endswith("Account.Registered")]
    assert len(registered) == 1
    assert isinstance(apps[0].repository.get(results[0].account.id), Account)
