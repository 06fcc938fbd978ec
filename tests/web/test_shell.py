"""The app's shell (issue #14): on a phone (<= 600 px) the destinations are a bottom tab bar — four
tabs with icons and labels and "More" for the rest — with the current one marked (aria-current) and
usable by keyboard; no screen's content ends behind it. Wider screens keep the sidebar."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

# The lowest bottom of the content's own boxes (main's children), the page scrolled to its end.
CONTENT_END = """() => {
  window.scrollTo(0, document.documentElement.scrollHeight)
  const main = document.querySelector('main')
  return Math.max(...[...main.children].filter((e) => e.getClientRects().length)
                                       .map((e) => e.getBoundingClientRect().bottom))
}"""

# Every visible control of the page that the bar covers (the point at its centre belongs to the bar).
COVERED = """() => [...document.querySelectorAll('main a, main button, main input, main textarea, main select')]
  .filter((e) => e.checkVisibility())
  .filter((e) => { const r = e.getBoundingClientRect(); const y = (r.top + r.bottom) / 2
                   if (y < 0 || y > innerHeight) return false
                   return document.elementFromPoint((r.left + r.right) / 2, y)?.closest('.tabbar') })
  .map((e) => e.outerHTML.slice(0, 80))"""


def test_phone_tab_bar_more_menu_keyboard_help_and_nothing_hidden_behind_it_SU_1(people, api):
    org, admin = api.organization("Гимназия №7", "Самара")
    chat = api.chat_once_members_known(org, admin, "Навигация", [])
    me = people("shell")
    me.sign_in_as(admin, "/")
    page = me.page

    nav = page.get_by_role("navigation", name="Основное меню")
    expect(nav).to_have_count(1)  # the sidebar is not there on a phone
    expect(nav).to_have_class(re.compile("tabbar"))
    tabs = nav.get_by_role("link")
    expect(tabs).to_have_count(4)
    expect(tabs).to_have_text(["Главная", "Чаты", "Школы", "Профиль"])
    for i in range(4):
        assert tabs.nth(i).locator("svg.nav-icon").count() == 1
        assert tabs.nth(i).bounding_box()["height"] >= 44
    box = nav.bounding_box()
    assert abs(box["y"] + box["height"] - 740) < 1 and box["width"] == 360  # at the bottom, full width
    expect(nav.get_by_role("link", name="Главная")).to_have_attribute("aria-current", "page")
    me.screen("shell-home")

    # The current tab follows the page, also inside a section.
    nav.get_by_role("link", name="Школы").click()
    expect(page).to_have_url("/schools")
    expect(nav.get_by_role("link", name="Школы")).to_have_attribute("aria-current", "page")
    expect(nav.get_by_role("link", name="Главная")).not_to_have_attribute("aria-current", "page")
    me.open(f"/schools/{org}")
    expect(nav.get_by_role("link", name="Школы")).to_have_attribute("aria-current", "page")

    # "More" by keyboard: opens with Enter onto its first link, Escape closes it back onto the button.
    more = nav.get_by_role("button", name="Ещё")
    expect(more).to_have_attribute("aria-expanded", "false")
    more.focus()
    page.keyboard.press("Enter")
    expect(more).to_have_attribute("aria-expanded", "true")
    expect(nav.get_by_role("link", name="Электронный журнал")).to_be_focused()
    expect(nav.get_by_role("link", name="Помощь")).to_be_visible()
    me.screen("shell-more")
    page.keyboard.press("Escape")
    expect(more).to_have_attribute("aria-expanded", "false")
    expect(more).to_be_focused()
    expect(nav.get_by_role("link", name="Помощь")).to_be_hidden()
    # Tab moves from the button into the open menu; a choice closes it and marks "More".
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(nav.get_by_role("link", name="Помощь")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url("/help")
    expect(page.locator("main a[href^='mailto:']")).to_have_count(1)  # SU-1: support's contact, a tap away
    expect(more).to_have_attribute("aria-expanded", "false")
    expect(more).to_have_class(re.compile("tab-item--active"))
    more.click()
    expect(nav.get_by_role("link", name="Помощь")).to_have_attribute("aria-current", "page")
    page.mouse.click(180, 100)  # outside: the menu closes
    expect(more).to_have_attribute("aria-expanded", "false")

    # No screen's content ends behind the bar, and nothing on it is covered (the chat's composer too).
    for path in ("/", "/profile", "/schools", f"/schools/{org}", "/help", "/ejournal", "/chats", f"/chats/{chat}"):
        me.open(path)
        page.locator("main h1, main h2").first.wait_for()
        bar_top = nav.bounding_box()["y"]
        assert page.evaluate(CONTENT_END) <= bar_top + 0.5, path
        assert page.evaluate(COVERED) == [], path
    expect(page.locator("#composer-text")).to_be_visible()
    me.screen("shell-chat")

    # Wider screens: every destination in the sidebar, no tab bar.
    page.set_viewport_size({"width": 1366, "height": 768})
    nav = page.get_by_role("navigation", name="Основное меню")
    expect(nav).to_have_count(1)
    expect(nav).to_have_class(re.compile("nav--side"))
    expect(nav.get_by_role("link")).to_have_text(["Главная", "Чаты", "Школы", "Профиль", "Электронный журнал",
                                                  "Помощь"])
    expect(nav.get_by_role("link", name="Чаты")).to_have_attribute("aria-current", "page")
