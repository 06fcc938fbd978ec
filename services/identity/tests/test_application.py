"""Identity's application against every store (memory, SQLite, PostgreSQL).
Each test names the docs/rules.md rule it checks."""

from __future__ import annotations

import threading
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from identity import handlers
from identity.application import IdentityApplication, InviteInfo
from identity.domain import Account
from identity.outbox import to_integration_events
from shared.contracts import make_event
from shared.contracts.api.identity import Profile, UpdateProfile
from shared.errors import Conflict, Forbidden, Gone, Invalid, NotFound, TooManyRequests, Unauthorized
from shared.store import make_application

from .conftest import Identity

pytestmark = pytest.mark.integration


def published(app: IdentityApplication) -> list:
    events = []
    for notification in app.process_recorder.select_notifications(start=1, limit=10_000):
        for event_type, data, subject in to_integration_events(app.mapper.to_domain_event(notification)):
            events.append(make_event(event_type, data, event_id=f"identity:{notification.id}", subject=subject))
    return events


# -- ID-1 sign-in codes ----------------------------------------------------------------------


def test_first_confirmation_registers_an_account_ID_1(identity):
    result = identity.sign_in("+7 900 123-45-67")
    assert result.new_account
    assert result.account.phone == "+79001234567"
    assert [e.type for e in published(identity.app)] == ["identity.UserRegistered.v1"]
    assert published(identity.app)[0].data["user_id"] == result.account.id


def test_a_new_code_only_after_the_countdown_ID_1(identity):
    app, now = identity.app, identity.clock.now
    app.request_code("+79001234567", "sms", "c", now=now)
    with pytest.raises(TooManyRequests) as info:
        app.request_code("+79001234567", "sms", "c", now=now + timedelta(seconds=30))
    assert info.value.code == "sign_in.resend_too_early"
    assert 0 < info.value.details["retry_after"] <= 31
    assert app.request_code("+79001234567", "sms", "c", now=now + timedelta(seconds=61)).code


def test_a_corrected_number_gets_a_fresh_code_at_once_ID_1(identity):
    app, now = identity.app, identity.clock.now
    wrong = app.request_code("+79001234560", "sms", "c", now=now)
    right = app.request_code("+79001234567", "sms", "c", now=now + timedelta(seconds=2))
    assert right.challenge.address == "+79001234567" and right.challenge.id != wrong.challenge.id


def test_codes_per_phone_and_per_client_are_limited_ID_1(identity):
    app, clock = identity.app, identity.clock
    for _ in range(5):
        app.request_code("+79001234567", "sms", "c1", now=clock.advance(seconds=61))
    with pytest.raises(TooManyRequests) as info:
        app.request_code("+79001234567", "sms", "c1", now=clock.advance(seconds=61))
    assert info.value.code == "sign_in.too_many_codes"
    for i in range(195):  # 5 above + 195 = the client's 200 an hour
        app.request_code(f"+7900765{i:04d}", "sms", "c1", now=clock.now)
    with pytest.raises(TooManyRequests) as info:
        app.request_code("+79007659999", "sms", "c1", now=clock.now)
    assert info.value.code == "sign_in.too_many_requests"
    assert app.request_code("+79007659999", "sms", "another-client", now=clock.now)


def test_the_response_does_not_reveal_whether_an_account_exists_ID_1(identity):
    identity.sign_in("+79001234567")
    now = identity.clock.advance(seconds=61)
    known = identity.app.request_code("+79001234567", "sms", "c", now=now).challenge
    unknown = identity.app.request_code("+79001234568", "sms", "c", now=now).challenge
    assert (known.channel, known.expires_at, known.resend_at) == (unknown.channel, unknown.expires_at,
                                                                  unknown.resend_at)


def test_a_flash_call_code_is_the_last_four_digits_ID_1(identity):
    issued = identity.app.request_code("+79001234567", "flash_call", "c", now=identity.clock.now)
    assert issued.challenge.channel == "flash_call" and len(issued.code) == 4


def test_a_wrong_code_counts_down_and_an_expired_one_is_refused_ID_1(identity):
    app, now = identity.app, identity.clock.now
    issued = app.request_code("+79001234567", "sms", "c", now=now)
    wrong = "000000" if issued.code != "000000" else "111111"
    with pytest.raises(Invalid) as info:
        app.confirm_code(issued.challenge.id, wrong, "d", now=now)
    assert info.value.code == "sign_in.wrong_code" and info.value.details["attempts_left"] == 4
    with pytest.raises(Gone) as expired:
        app.confirm_code(issued.challenge.id, issued.code, "d", now=now + timedelta(minutes=6))
    assert expired.value.code == "sign_in.code_expired"
    with pytest.raises(NotFound):
        app.confirm_code(uuid.uuid4(), "123456", "d", now=now)


# -- ID-3 one phone, one account ----------------------------------------------------------------


def test_one_phone_is_one_account_ID_3(identity):
    first = identity.sign_in("+7 900 123-45-67")
    second = identity.sign_in("8 900 123 45 67")
    assert second.new_account is False and second.account.id == first.account.id


def test_concurrent_registrations_of_one_phone_make_one_account_ID_3(durable_store_settings):
    make_application(IdentityApplication, "identity", create_table=True, config=durable_store_settings)
    apps = [make_application(IdentityApplication, "identity", config=durable_store_settings) for _ in range(4)]
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    codes = [a.request_code("+79001234567", "sms", f"c{i}", now=now + timedelta(seconds=61 * i))
             for i, a in enumerate(apps)]
    barrier = threading.Barrier(len(apps))
    results = []

    def confirm(a, issued):
        barrier.wait()
        results.append(a.confirm_code(issued.challenge.id, issued.code, "d", now=now + timedelta(minutes=4)))

    threads = [threading.Thread(target=confirm, args=pair) for pair in zip(apps, codes, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    assert len({r.account.id for r in results}) == 1
    assert sum(r.new_account for r in results) == 1
    registered = [e for e in published(apps[0]) if e.type == "identity.UserRegistered.v1"]
    assert len(registered) == 1
    assert isinstance(apps[0].repository.get(results[0].account.id), Account)


# -- ID-2 passwords ----------------------------------------------------------------------------------


def test_password_sign_in_and_forgot_password_ID_2(identity):
    app = identity.app
    user = identity.sign_in("+79001234567").account.id
    app.set_password(user, "correct horse battery", None)
    signed = app.sign_in_with_password("+7 900 123 45 67", "correct horse battery", "c", "laptop")
    assert signed.account.id == user and signed.session.method == "password"
    with pytest.raises(Forbidden):
        app.set_password(user, "another fine password", "not the current one")
    issued = app.request_code("+79001234567", "sms", "c", now=identity.clock.advance(seconds=61))
    app.reset_password(issued.challenge.id, issued.code, "a brand new password", "phone", now=identity.clock.now)
    assert app.sign_in_with_password("+79001234567", "a brand new password", "c", "d").account.id == user


def test_a_wrong_password_and_an_unknown_phone_look_the_same_ID_2(identity):
    identity.app.set_password(identity.sign_in("+79001234567").account.id, "correct horse battery", None)
    errors = []
    for phone, password in (("+79001234567", "wrong password!"), ("+79009999999", "whatever password")):
        with pytest.raises(Unauthorized) as info:
            identity.app.sign_in_with_password(phone, password, "c", "d")
        errors.append(info.value.to_dict())
    assert errors[0] == errors[1]


def test_weak_passwords_are_refused_ID_2(identity):
    user = identity.sign_in().account.id
    for weak in ("short", "12345678901", "aaaaaaaaaa"):
        with pytest.raises(Invalid) as info:
            identity.app.set_password(user, weak, None)
        assert info.value.code == "password.too_weak"


# -- ID-4 juniors by e-mail ------------------------------------------------------------------------------

JUNIOR_INVITE = InviteInfo(uuid.uuid4(), uuid.uuid4(), "student", email_registration_allowed=True)


def test_a_junior_registers_by_email_only_through_an_invite_that_allows_it_ID_4(identity):
    app, now = identity.app, identity.clock.now
    with pytest.raises(Forbidden) as info:
        app.request_code("kid@example.org", "email", "c", now=now)
    assert info.value.code == "sign_in.email_not_allowed"
    closed = InviteInfo(uuid.uuid4(), uuid.uuid4(), "student", email_registration_allowed=False)
    with pytest.raises(Forbidden):
        app.request_code("kid@example.org", "email", "c", invite=closed, now=now)
    issued = app.request_code("Kid@Example.org", "email", "c", invite=JUNIOR_INVITE, invite_token="tok", now=now)
    signed = app.confirm_code(issued.challenge.id, issued.code, "tablet", now=now)
    assert signed.new_account and signed.account.email == "kid@example.org" and signed.account.phone is None
    registered = published(app)[-1]
    assert registered.data["registered_via"] == "email" and registered.data["invite_token"] == "tok"


# -- ID-5 profile -----------------------------------------------------------------------------------------


def test_profile_is_real_names_birth_date_and_sex_ID_5(identity):
    user = identity.sign_in().account.id
    identity.app.update_profile(user, UpdateProfile("Петров", "Пётр", date(2010, 3, 1), "male", user_id=user))
    view = identity.app.view_person(user, user)
    assert (view["last_name"], view["patronymic"], view["profile_complete"]) == ("Петров", None, True)
    assert published(identity.app)[-1].type == "identity.ProfileUpdated.v1"
    with pytest.raises(Invalid) as info:
        identity.app.update_profile(user, UpdateProfile("", "Пётр2", date(2999, 1, 1), "male", user_id=user))
    assert set(info.value.details["fields"]) == {"last_name", "first_name", "birth_date"}


def test_nobody_edits_someone_elses_profile(identity):
    a, b = identity.sign_in().account.id, identity.sign_in().account.id
    with pytest.raises(Forbidden):
        identity.app.update_profile(a, UpdateProfile("Сидоров", "Иван", date(2000, 1, 1), "male", user_id=b))


# -- ID-6 this is not me ------------------------------------------------------------------------------------


def test_this_is_not_me_detaches_the_phone_and_starts_a_new_account_ID_6(identity):
    old = identity.sign_in("+79001234567").account.id
    fresh = identity.sign_in("+79001234567", not_me=True)
    assert fresh.new_account and fresh.account.id != old
    old_account = identity.app.get_account(old)
    assert old_account.phone is None and old_account.phone_detached
    assert identity.sign_in("+79001234567").account.id == fresh.account.id
    detached = [e for e in published(identity.app) if e.type == "identity.PhoneDetached.v1"]
    assert [(e.data["user_id"], e.data["new_user_id"]) for e in detached] == [(old, fresh.account.id)]


def test_two_this_is_not_me_at_once_leave_one_account_holding_the_phone_ID_3_ID_6(durable_store_settings):
    """An outside audit: two "this is not me" for one phone on two replicas. One decided on the phone's index, the
    other re-pointed it and saved meanwhile, and the first then read the index again, re-pointed the other's new
    account's index to its own and saved with no conflict: two accounts with the phone, one of them never signed
    into by it again. The index the command decides on is the one it re-points, so the later save conflicts and
    runs again against the account that holds the phone by then."""
    one = make_application(IdentityApplication, "identity", create_table=True, config=durable_store_settings)
    two = make_application(IdentityApplication, "identity", config=durable_store_settings)
    phone, t0 = "+79001234567", datetime(2026, 9, 1, 8, 0, tzinfo=timezone.utc)
    issued = one.request_code(phone, "sms", "c", now=t0)
    one.confirm_code(issued.challenge.id, issued.code, "d", now=t0)
    mine = one.request_code(phone, "sms", "c", now=t0 + timedelta(seconds=61))
    theirs = two.request_code(phone, "sms", "c2", now=t0 + timedelta(seconds=122))
    get, held, now = one.get_account, [], t0 + timedelta(seconds=130)

    def the_other_saves_first(account_id):  # after this one read the index, before it reads the old account
        if not held:
            held.append(two.confirm_code(theirs.challenge.id, theirs.code, "d", not_me=True, now=now).account.id)
        return get(account_id)

    one.get_account = the_other_saves_first
    last = one.confirm_code(mine.challenge.id, mine.code, "d", not_me=True, now=now).account.id
    one.get_account = get
    holders = {str(e.data["user_id"]) for e in published(one) if e.type == "identity.UserRegistered.v1"
               if one.get_account(uuid.UUID(str(e.data["user_id"]))).phone == phone}
    assert held and holders == {str(last)}
    assert one.account_by_phone(phone).id == last and get(held[0]).phone is None


# -- ID-8 sessions --------------------------------------------------------------------------------------------


def test_refresh_tokens_rotate_and_a_reused_one_ends_the_session_ID_8(identity):
    signed = identity.sign_in()
    now = identity.clock.now
    session, second = identity.app.refresh_session(signed.refresh_token, now=now)
    assert second != signed.refresh_token
    _, third = identity.app.refresh_session(second, now=now)
    with pytest.raises(Unauthorized) as info:
        identity.app.refresh_session(second, now=now)  # a stolen copy of a used token
    assert info.value.code == "auth.refresh_reused"
    with pytest.raises(Unauthorized) as info:
        identity.app.refresh_session(third, now=now)  # the thief's and the owner's tokens die together
    assert info.value.code == "auth.session_revoked"
    assert not identity.app.session_is_active(session.id)


def test_sessions_are_listed_and_can_be_ended_one_or_all_ID_8(identity):
    first = identity.sign_in("+79001234567", device="laptop")
    user = first.account.id
    phone = identity.sign_in("+79001234567", device="phone")
    tablet = identity.sign_in("+79001234567", device="tablet")
    assert {s.device for s in identity.app.sessions_of(user)} == {"laptop", "phone", "tablet"}
    identity.app.sign_out(user, phone.session.id)
    assert {s.device for s in identity.app.sessions_of(user)} == {"laptop", "tablet"}
    with pytest.raises(Unauthorized) as info:
        identity.app.refresh_session(phone.refresh_token, now=identity.clock.now)
    assert info.value.code == "auth.session_revoked"
    assert identity.app.sign_out_everywhere(user, keep=tablet.session.id) == 1
    assert [s.device for s in identity.app.sessions_of(user)] == ["tablet"]
    other = identity.sign_in().account.id
    with pytest.raises(NotFound):
        identity.app.sign_out(other, tablet.session.id)


def test_every_ended_session_is_published_for_the_gateway_to_close_its_sockets_ID_8(identity):
    first = identity.sign_in("+79001234568", device="laptop")
    user = first.account.id
    second = identity.sign_in("+79001234568", device="phone")
    identity.app.sign_out(user, first.session.id)
    identity.app.sign_out_everywhere(user)
    ended = [(e.data["session_id"], e.data["reason"]) for e in published(identity.app)
             if e.type == "identity.SessionEnded.v1"]
    assert ended == [(first.session.id, "signed_out"), (second.session.id, "signed_out_everywhere")]


def test_an_idle_session_expires_ID_8(identity):
    signed = identity.sign_in()
    with pytest.raises(Unauthorized) as info:
        identity.app.refresh_session(signed.refresh_token, now=identity.clock.advance(days=31))
    assert info.value.code == "auth.session_expired"


def test_garbage_refresh_tokens_are_refused_ID_8(identity):
    for token in ("", "nonsense", f"{uuid.uuid4()}.secret"):
        with pytest.raises(Unauthorized):
            identity.app.refresh_session(token)


# -- PL parent linking ----------------------------------------------------------------------------------------------


def test_only_a_student_can_create_the_parent_invite_PL_1(identity):
    teacher = identity.person()
    identity.join(teacher, "teacher")
    with pytest.raises(Forbidden) as info:
        identity.app.parent_invite(teacher)
    assert info.value.code == "parent_link.students_only"


def role_changed(identity, organization_id, user_id, roles, at, class_id=None):
    """school's MemberRoleChanged (SC-9): the member's roles there as they are now."""
    return make_event("school.MemberRoleChanged.v1", {
        "organization_id": organization_id, "user_id": user_id, "roles": roles, "class_id": class_id,
        "changed_by": uuid.uuid4(), "changed_at": at}, event_id=f"school:{uuid.uuid4()}:MemberRoleChanged.v1")


def test_a_student_made_teacher_cannot_invite_parents_PL_1(identity):
    school = uuid.uuid4()
    pupil = identity.person()
    identity.join(pupil, "student", school, uuid.uuid4())
    assert identity.app.parent_invite(pupil, now=identity.clock.now).token  # a student may
    changed = role_changed(identity, school, pupil, ["teacher"], identity.clock.advance(minutes=1))
    assert handlers.on_member_role_changed(identity.app, changed) is True
    assert handlers.on_member_role_changed(identity.app, changed) is False  # a redelivery is applied once
    assert identity.app.membership(pupil).roles == {str(school): ["teacher"]}
    for school_says_student in (None, lambda: False):
        with pytest.raises(Forbidden) as info:
            identity.app.parent_invite(pupil, now=identity.clock.now, school_says_student=school_says_student)
        assert info.value.code == "parent_link.students_only"
    made_student_again = role_changed(identity, school, pupil, ["student"], identity.clock.advance(minutes=1))
    handlers.on_member_role_changed(identity.app, made_student_again)
    assert identity.app.parent_invite(pupil, now=identity.clock.now).token


def test_a_late_school_event_does_not_bring_an_old_role_back_PL_1(identity):
    """Each event type has its queue: a MemberJoined may arrive after a newer MemberRoleChanged, a
    MemberRoleChanged after a newer MemberLeft. The newest report of the person's roles there wins."""
    school, pupil = uuid.uuid4(), identity.person()
    joined_at = identity.clock.now
    changed_at = identity.clock.advance(minutes=1)
    handlers.on_member_role_changed(identity.app, role_changed(identity, school, pupil, ["teacher"], changed_at))
    late_join = make_event("school.MemberJoined.v1", {
        "organization_id": school, "user_id": pupil, "role": "student", "roles": ["student"],
        "class_id": uuid.uuid4(), "joined_at": joined_at}, event_id=f"school:{uuid.uuid4()}:MemberJoined.v1")
    handlers.on_member_joined(identity.app, late_join)
    assert identity.app.membership(pupil).roles == {str(school): ["teacher"]}
    with pytest.raises(Forbidden):
        identity.app.parent_invite(pupil, now=identity.clock.now)
    left = make_event("school.MemberLeft.v1", {"organization_id": school, "user_id": pupil,
                                               "left_at": identity.clock.advance(minutes=2)},
                      event_id=f"school:{uuid.uuid4()}:MemberLeft.v1")
    assert handlers.on_member_left(identity.app, left) is True
    late_change = role_changed(identity, school, pupil, ["student"], changed_at + timedelta(seconds=30))
    handlers.on_member_role_changed(identity.app, late_change)
    assert identity.app.membership(pupil).roles == {}
    rejoined = make_event("school.MemberJoined.v1", {
        "organization_id": school, "user_id": pupil, "role": "student", "roles": ["student"],
        "class_id": uuid.uuid4(), "joined_at": identity.clock.advance(minutes=1)},
        event_id=f"school:{uuid.uuid4()}:MemberJoined.v1")
    assert handlers.on_member_joined(identity.app, rejoined) is True  # a newer join is a join
    assert identity.app.parent_invite(pupil, now=identity.clock.now).token


def test_an_admin_made_teacher_no_longer_unlinks_parents_SC_9(identity):
    school = uuid.uuid4()
    child = identity.person()
    identity.join(child, "student", school, uuid.uuid4())
    mum, dad, admin = identity.person(), identity.person(), identity.person()
    identity.link_parent(child, mum)
    identity.link_parent(child, dad)
    identity.join(admin, "admin", school)
    identity.app.unlink_parent(admin, child, mum)  # an admin of the child's school may
    handlers.on_member_role_changed(identity.app, role_changed(identity, school, admin, ["teacher"],
                                                               identity.clock.advance(minutes=1)))
    with pytest.raises(Forbidden) as info:
        identity.app.unlink_parent(admin, child, dad)
    assert info.value.code == "parent_link.unlink_forbidden"
    assert [p["user_id"] for p in identity.app.parents(child)] == [dad]


def test_the_live_invite_is_shown_again_PL_2(identity):
    child = identity.student()
    first = identity.app.parent_invite(child, now=identity.clock.now)
    again = identity.app.parent_invite(child, now=identity.clock.advance(days=1))
    assert again.token == first.token
    renewed = identity.app.parent_invite(child, now=identity.clock.advance(days=7))
    assert renewed.token != first.token
    with pytest.raises(Gone):
        identity.app.open_parent_invite(first.token, identity.person(), now=identity.clock.now)


def test_before_signing_in_the_link_shows_whose_it_is_not_the_childs_data_PL_3(identity):
    child = identity.student(last_name="Иванова", first_name="Мари")
    token = identity.app.parent_invite(child, now=identity.clock.now).token
    preview = identity.app.preview_parent_invite(token, now=identity.clock.now)
    assert (preview["first_name"], preview["last_initial"]) == ("Мари", "И")
    assert len(preview["organization_ids"]) == 1
    assert not {"birth_date", "sex", "last_name", "user_id", "phone"} & set(preview)
    with pytest.raises(NotFound):
        identity.app.preview_parent_invite("forged")


def test_the_parent_checks_corrects_and_consents_PL_3(identity):
    child = identity.student(last_name="Иванова", first_name="Мари")
    parent = identity.person(last_name="Иванов", first_name="Иван", birth_date=date(1985, 1, 1), sex="male")
    token = identity.app.parent_invite(child, now=identity.clock.now).token
    opened = identity.app.open_parent_invite(token, parent, now=identity.clock.now)
    assert opened["first_name"] == "Мари" and opened["birth_date"] == date(2014, 5, 17)
    assert "phone" not in opened  # the child's credentials are not shown (ID-9)
    with pytest.raises(Invalid) as info:
        identity.app.confirm_parent_link(token, parent, consent=False, now=identity.clock.now)
    assert info.value.code == "parent_link.consent_required"
    corrected = Profile("Иванова", "Мария", date(2014, 5, 17), "female")
    identity.app.confirm_parent_link(token, parent, consent=True, child_profile=corrected, now=identity.clock.now)
    assert identity.app.get_account(child).first_name == "Мария"


def test_after_confirmation_each_appears_in_the_others_profile_PL_4(identity):
    child, parent = identity.student(), identity.person(birth_date=date(1980, 1, 1))
    identity.link_parent(child, parent)
    assert [c["user_id"] for c in identity.app.children(parent)] == [child]
    assert [p["user_id"] for p in identity.app.parents(child)] == [parent]
    linked = [e for e in published(identity.app) if e.type == "identity.ParentLinked.v1"]
    assert [(e.data["parent_user_id"], e.data["child_user_id"], e.data["parent_number"]) for e in linked] == [
        (parent, child, 1)]


def test_a_third_parent_is_refused_PL_5(identity):
    child = identity.student()
    identity.link_parent(child, identity.person())
    identity.link_parent(child, identity.person())
    with pytest.raises(Forbidden) as info:
        identity.link_parent(child, identity.person())
    assert info.value.code == "parent_link.limit_reached"


def test_three_parents_confirming_at_once_link_only_two_PL_5(durable_store_settings):
    setup = Identity(make_application(IdentityApplication, "identity", create_table=True,
                                      config=durable_store_settings))
    child = setup.student()
    parents = [setup.person() for _ in range(3)]
    token = setup.app.parent_invite(child).token
    apps = [make_application(IdentityApplication, "identity", config=durable_store_settings) for _ in parents]
    barrier = threading.Barrier(len(parents))
    outcomes: list[str] = []

    def confirm(app, parent):
        barrier.wait()
        try:
            app.confirm_parent_link(token, parent, consent=True)
            outcomes.append("linked")
        except Forbidden as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=confirm, args=pair) for pair in zip(apps, parents, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["linked", "linked", "parent_link.limit_reached"]
    assert len(setup.app.parents(child)) == 2


def test_opening_ones_own_parent_link_fails_with_the_ways_out_PL_6(identity):
    child = identity.student()
    token = identity.app.parent_invite(child, now=identity.clock.now).token
    for attempt in (identity.app.open_parent_invite, lambda t, u, now: identity.app.confirm_parent_link(
            t, u, consent=True, now=now)):
        with pytest.raises(Forbidden) as info:
            attempt(token, child, now=identity.clock.now)
        assert info.value.code == "parent_link.self_link"
        assert len(info.value.details["ways_out"]) == 3


def test_a_parent_of_several_children_in_different_schools_sees_all_PL_7(identity):
    parent = identity.person(birth_date=date(1980, 1, 1))
    school_a, school_b = uuid.uuid4(), uuid.uuid4()
    kids = []
    for school in (school_a, school_b):
        kid = identity.person()
        identity.join(kid, "student", school, uuid.uuid4())
        identity.link_parent(kid, parent)
        kids.append(kid)
    assert sorted(c["user_id"] for c in identity.app.children(parent)) == sorted(kids)


def test_a_teacher_who_is_a_parent_uses_the_same_account_PL_8(identity):
    teacher = identity.person(birth_date=date(1980, 1, 1))
    identity.join(teacher, "teacher")
    child = identity.student()
    identity.link_parent(child, teacher)
    assert identity.app.membership(teacher).roles  # still a teacher
    assert [c["user_id"] for c in identity.app.children(teacher)] == [child]


def test_a_parent_is_unlinked_by_the_parent_or_the_childs_school_admin(identity):
    school = uuid.uuid4()
    child = identity.person()
    identity.join(child, "student", school, uuid.uuid4())
    mum, dad = identity.person(), identity.person()
    identity.link_parent(child, mum)
    identity.link_parent(child, dad)
    stranger, other_admin, admin = identity.person(), identity.person(), identity.person()
    identity.join(other_admin, "admin")
    identity.join(admin, "admin", school)
    for outsider in (stranger, other_admin):
        with pytest.raises(Forbidden):
            identity.app.unlink_parent(outsider, child, mum)
    identity.app.unlink_parent(mum, child, mum)
    identity.app.unlink_parent(admin, child, dad)
    assert identity.app.parents(child) == [] and identity.app.children(mum) == []
    unlinked = [e for e in published(identity.app) if e.type == "identity.ParentUnlinked.v1"]
    assert [e.data["unlinked_by"] for e in unlinked] == [mum, admin]
    identity.link_parent(child, identity.person())  # a freed place can be taken again


def test_the_same_parent_cannot_link_twice(identity):
    child, parent = identity.student(), identity.person()
    identity.link_parent(child, parent)
    with pytest.raises(Conflict):
        identity.link_parent(child, parent)


def test_a_forged_parent_link_is_not_found(identity):
    child = identity.student()
    token = identity.app.parent_invite(child).token
    forged = token[:32] + ("0" * 32)
    with pytest.raises(NotFound):
        identity.app.open_parent_invite(forged, identity.person())


def test_memberships_from_school_are_applied_once(identity):
    user = identity.person()
    event = make_event("school.MemberJoined.v1", {"organization_id": uuid.uuid4(), "user_id": user,
                                                  "role": "student", "joined_at": identity.clock.now},
                       event_id="school:1:MemberJoined.v1")
    assert handlers.on_member_joined(identity.app, event) is True
    assert handlers.on_member_joined(identity.app, event) is False
    assert identity.app.membership(user).version == 2


def joined(identity, organization_id, user_id, role="student"):
    return make_event("school.MemberJoined.v1", {"organization_id": organization_id, "user_id": user_id,
                                                 "role": role, "joined_at": identity.clock.now},
                      event_id=f"school:{uuid.uuid4()}:MemberJoined.v1")


def test_only_people_who_share_an_organization_or_a_family_see_a_name_ID_7_ID_9(identity):
    child, classmate, stranger = (identity.sign_in().account for _ in range(3))
    school = uuid.uuid4()
    for user in (child, classmate):
        handlers.on_member_joined(identity.app, joined(identity, school, user.id))
    assert identity.app.view_person(classmate.id, child.id)["relation"] == "other"
    with pytest.raises(NotFound) as hidden:
        identity.app.view_person(stranger.id, child.id)
    with pytest.raises(NotFound) as unknown:
        identity.app.view_person(stranger.id, uuid.uuid4())
    assert hidden.value.code == unknown.value.code == "account.not_found"
    left = make_event("school.MemberLeft.v1", {"organization_id": school, "user_id": classmate.id,
                                               "left_at": identity.clock.now}, event_id="school:9:MemberLeft.v1")
    assert handlers.on_member_left(identity.app, left) is True and handlers.on_member_left(identity.app, left) is False
    with pytest.raises(NotFound):
        identity.app.view_person(classmate.id, child.id)


def test_people_who_share_a_chat_see_each_others_names_ID_7(identity):
    a, b, c = (identity.sign_in().account for _ in range(3))
    chat = uuid.uuid4()
    created = make_event("messaging.ChatCreated.v1", {"chat_id": chat, "kind": "subject", "member_ids": [a.id, b.id],
                                                      "created_at": identity.clock.now}, event_id="messaging:1:x")
    assert handlers.on_chat_members(identity.app, created) is True
    assert handlers.on_chat_members(identity.app, created) is False
    assert identity.app.view_person(a.id, b.id)["first_name"] == b.first_name
    with pytest.raises(NotFound):
        identity.app.view_person(c.id, b.id)
    changed = make_event("messaging.ChatMembersChanged.v1", {"chat_id": chat, "added": [c.id], "removed": [a.id],
                                                             "changed_at": identity.clock.now}, event_id="m:2")
    handlers.on_chat_members(identity.app, changed)
    assert identity.app.view_person(c.id, b.id)["relation"] == "other"
    with pytest.raises(NotFound):
        identity.app.view_person(a.id, b.id)


def test_who_shares_a_chat_follows_the_chats_versions_whatever_order_its_events_come_in_ID_7_ID_9(identity):
    """An outside review: an adult added to a chat with a child and then removed, the removal applied first (two
    ChatMembersChanged on two workers; ChatCreated comes through another queue), kept seeing the child's name.
    Each says its chat's version (``sequence``): what a person's membership of a chat is after an older version
    changes nothing once a newer one is applied."""
    child, adult, teacher = (identity.sign_in().account for _ in range(3))
    chat = uuid.uuid4()

    def members(sequence: int, **data) -> None:
        kind = "ChatCreated" if "member_ids" in data else "ChatMembersChanged"
        handlers.on_chat_members(identity.app, make_event(
            f"messaging.{kind}.v1", {"chat_id": chat, "kind": "manual", **data, "created_at": identity.clock.now,
                                     "changed_at": identity.clock.now} if kind == "ChatCreated" else
            {"chat_id": chat, **data, "changed_at": identity.clock.now},
            event_id=f"messaging:{sequence}:{kind}.v1", sequence=sequence))

    members(3, added=[], removed=[adult.id])        # the removal first
    members(2, added=[adult.id], removed=[])        # then the older addition
    members(1, member_ids=[child.id, teacher.id])   # and the chat's creation last
    assert identity.app.view_person(teacher.id, child.id)["relation"] == "other"
    with pytest.raises(NotFound):
        identity.app.view_person(adult.id, child.id)
    members(4, added=[adult.id], removed=[child.id])  # newer: applied
    assert identity.app.view_person(adult.id, teacher.id)["relation"] == "other"
    with pytest.raises(NotFound):
        identity.app.view_person(adult.id, child.id)


# -- EJ-2: an e-journal link confirms a teacher's profile ------------------------------------------------


def test_linking_the_e_journal_as_a_teacher_confirms_the_profile_EJ_2(identity):
    teacher, student = identity.sign_in().account, identity.sign_in().account
    provider = uuid.uuid4()

    def linked(user, role):
        return make_event("ejournal_bridge.EjournalAccountLinked.v1", {
            "user_id": user.id, "provider_id": provider, "region": "16", "external_person_id": f"p-{user.id}",
            "role": role, "linked_at": datetime(2026, 9, 1, 8, tzinfo=timezone.utc)}, event_id=f"bridge:{uuid.uuid4()}")

    event = linked(teacher, "teacher")
    assert handlers.on_journal_account_linked(identity.app, event)
    assert not handlers.on_journal_account_linked(identity.app, event)  # a redelivery is applied once
    handlers.on_journal_account_linked(identity.app, linked(student, "student"))
    school = uuid.uuid4()
    for user, role in ((teacher, "teacher"), (student, "student")):
        handlers.on_member_joined(identity.app, joined(identity, school, user.id, role))
    assert identity.app.view_person(student.id, teacher.id)["teacher_confirmed"] is True
    assert identity.app.view_person(student.id, student.id)["teacher_confirmed"] is False


def journal_link(user_id, provider_id, at, *, unlinked=False, role="teacher", person="T-1"):
    """The e-journal bridge's EjournalAccountLinked / EjournalAccountUnlinked."""
    data = {"user_id": user_id, "provider_id": provider_id, "external_person_id": person}
    if unlinked:
        return make_event("ejournal_bridge.EjournalAccountUnlinked.v1", {**data, "unlinked_at": at},
                          event_id=f"bridge:{uuid.uuid4()}")
    return make_event("ejournal_bridge.EjournalAccountLinked.v1", {**data, "region": "16", "role": role,
                                                                   "linked_at": at}, event_id=f"bridge:{uuid.uuid4()}")


def test_the_confirmed_teacher_badge_goes_with_the_journal_link_EJ_2(identity):
    a, b = identity.person(), identity.person()
    journal, other_journal, clock = uuid.uuid4(), uuid.uuid4(), identity.clock

    def confirmed(user) -> bool:
        return identity.app.view_person(user, user)["teacher_confirmed"]

    handlers.on_journal_account_linked(identity.app, journal_link(a, journal, clock.advance(minutes=1)))
    assert confirmed(a)
    unlinked = journal_link(a, journal, clock.advance(minutes=1), unlinked=True)  # A unlinks
    assert handlers.on_journal_account_unlinked(identity.app, unlinked) is True
    assert handlers.on_journal_account_unlinked(identity.app, unlinked) is False  # a redelivery is applied once
    assert confirmed(a) is False
    handlers.on_journal_account_linked(identity.app, journal_link(a, journal, clock.advance(minutes=1)))
    assert confirmed(a)
    # B links the same journal teacher: the bridge unlinks A (one person, one account)
    at = clock.advance(minutes=1)
    handlers.on_journal_account_linked(identity.app, journal_link(b, journal, at))
    handlers.on_journal_account_unlinked(identity.app, journal_link(a, journal, at, unlinked=True))
    assert (confirmed(a), confirmed(b)) == (False, True)
    # a teacher of two journals stays confirmed while one link is still held
    handlers.on_journal_account_linked(identity.app, journal_link(b, other_journal, clock.advance(minutes=1),
                                                                  person="T-2"))
    handlers.on_journal_account_unlinked(identity.app, journal_link(b, journal, clock.advance(minutes=1),
                                                                    unlinked=True))
    assert confirmed(b)
    handlers.on_journal_account_unlinked(identity.app, journal_link(b, other_journal, clock.advance(minutes=1),
                                                                    unlinked=True, person="T-2"))
    assert confirmed(b) is False


def test_a_late_journal_link_does_not_bring_the_badge_back_EJ_2(identity):
    """Linked and Unlinked come through two queues: an Unlinked may arrive before the older Linked it ends."""
    a, journal, clock = identity.person(), uuid.uuid4(), identity.clock
    linked_at, unlinked_at = clock.advance(minutes=1), clock.advance(minutes=1)
    handlers.on_journal_account_unlinked(identity.app, journal_link(a, journal, unlinked_at, unlinked=True))
    handlers.on_journal_account_linked(identity.app, journal_link(a, journal, linked_at))
    assert identity.app.view_person(a, a)["teacher_confirmed"] is False
    handlers.on_journal_account_linked(identity.app, journal_link(a, journal, clock.advance(minutes=1)))
    assert identity.app.view_person(a, a)["teacher_confirmed"] is True  # linked again since


def test_replicas_racing_on_one_person_lose_nothing_ID_8_PL_2(durable_store_settings):
    """No lost write (issue #12): two password sign-ins at once through two replicas
    both get a session that is listed; two tabs asking for the parent link at once
    get the same live link (the loser re-reads instead of failing or forking it)."""
    from identity.application import IdentityApplication
    from shared.store import make_application
    from shared.store.testing import racing, run_together

    from .conftest import Identity

    identity = Identity(make_application(IdentityApplication, "identity", create_table=True,
                                         config=durable_store_settings))
    student = identity.student()
    identity.app.set_password(student, "correct horse battery", None)
    phone = identity.app.get_account(student).phone
    one, two = (make_application(IdentityApplication, "identity", config=durable_store_settings) for _ in "12")
    with racing(one, two):
        signed = run_together(lambda: one.sign_in_with_password(phone, "correct horse battery", "c1", "laptop"),
                              lambda: two.sign_in_with_password(phone, "correct horse battery", "c2", "phone"))
    assert not [s for s in signed if isinstance(s, Exception)], signed
    assert {s.session.id for s in signed} <= {s.id for s in identity.app.sessions_of(student)}
    with racing(one, two):
        links = run_together(lambda: one.parent_invite(student), lambda: two.parent_invite(student))
    assert not [v for v in links if isinstance(v, Exception)], links
    assert links[0].token == links[1].token == identity.app.parent_invite(student).token
