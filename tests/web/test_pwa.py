"""The client is installable (a manifest, a service worker) and its shell opens without a
connection: a signed-in person reopening the chats offline sees the page and the offline banner,
not the browser's error page (issue #15)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def test_installable_and_the_shell_opens_offline(people, api):
    me = people("pwa")
    me.sign_in_as(api.person("Орлова", "Вера", "2012-02-02", "female"), "/chats")
    page = me.page
    manifest = page.evaluate("fetch(document.querySelector('link[rel=manifest]').href).then(r => r.json())")
    assert manifest["display"] == "standalone" and manifest["start_url"] == "/" and manifest["icons"]
    assert page.evaluate("navigator.serviceWorker.ready.then(r => Boolean(r.active))")
    page.reload()  # now under the worker: the shell and its assets are in its cache
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    expect(page.get_by_role("heading", name="Чаты")).to_be_visible()
    me.context.set_offline(True)
    page.reload()
    expect(page.get_by_role("heading", name="Чаты")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Нет связи")).to_be_visible()
    me.context.set_offline(False)
    me.errors.clear()  # the offline page's failed requests are expected
