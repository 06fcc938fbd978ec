"""Issue #17, "live chat delivery": messaging's entry points make no marshmallow schema a call (making one deep-copies
its declared fields: a post made three, the input, the view and the poll's nested input, more CPU than loading and
dumping with them); one instance of each a process, shared by the workers (it keeps nothing of a call)."""

from __future__ import annotations

import types
from concurrent.futures import ThreadPoolExecutor

import marshmallow
import pytest

from messaging.application import MessagingApplication
from messaging.service import MessagingService
from shared.store import make_application

from .test_application import School

pytestmark = pytest.mark.integration


def test_a_post_makes_no_schema_once_the_entry_point_has_run_CH_4(tmp_path, monkeypatch):
    from shared.config import settings

    config = settings({"SFERA_VAR_DIR": str(tmp_path), "PERSISTENCE": "memory"})
    app = make_application(MessagingApplication, "messaging", create_table=True, config=config)
    school = School(app)
    five = school.klass()
    people = [school.join("student", five) for _ in range(4)]
    (chat,) = school.chat_of("class", people[0])
    service = types.SimpleNamespace(app=app)

    def post(n: int) -> dict:
        return MessagingService.post(service, str(people[n % 4]), str(chat.id),
                                     {"text": f"m{n}", "poll": {"question": "Когда?", "options": ["Сегодня", "Завтра"]}}
                                     if n % 2 else {"text": f"m{n}"})

    post(0), post(1)  # the schemas of the entry point made
    made = []
    init = marshmallow.Schema.__init__
    monkeypatch.setattr(marshmallow.Schema, "__init__",
                        lambda self, *a, **k: (made.append(type(self)), init(self, *a, **k))[1])
    with ThreadPoolExecutor(4) as pool:  # the workers share them
        answers = list(pool.map(post, range(2, 10)))
    assert made == []
    assert sorted(a["seq"] for a in answers) == list(range(2, 10))
    assert all(a["text"] == f"m{a['seq']}" and (a["poll"] is not None) == bool(a["seq"] % 2) for a in answers)
