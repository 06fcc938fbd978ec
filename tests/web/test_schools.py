"""Schools in the browser (SC-1..SC-12): a school is applied for and an operator decides in the
console; a person finds a school by words of its name, city or region (any word form, as one types) and asks
to join, an admin adds or hides the request; the admins' pages (classes, invite links with their QR,
members); documents uploaded with a progress bar, an article written, covered and published, a channel
posted in and read."""

from __future__ import annotations

import json
import os
import random
import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.helpers import eventually
from tests.web.conftest import operator_in_browser

pytestmark = pytest.mark.e2e

# A 1×1 PNG: a cover the API sniffs as an image.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082")


LOCALES = Path(__file__).resolve().parents[2] / "web" / "src" / "i18n"


def city() -> str:
    return f"Тестоград-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def school(api):
    org, admin = api.organization("Лицей №2", city())
    token = admin["access_token"]
    five = api.ok("POST", f"/organizations/{org}/classes", token, status=201,
                  json={"name": "5А", "start_year": 2025, "end_year": 2032})["class_id"]
    six = api.ok("POST", f"/organizations/{org}/classes", token, status=201,
                 json={"name": "6А", "start_year": 2024, "end_year": 2031})["class_id"]
    return {"org": org, "admin": admin, "five": five, "six": six}


def test_a_school_is_applied_for_and_the_operator_approves_or_rejects_SC_1(people, api):
    place = city()
    phone = api.new_phone()
    me = people("applicant")
    me.open("/schools/apply")
    page = me.page
    page.get_by_label("Название").fill("Школа «Радуга»")
    page.get_by_label("Колледж").check()
    page.get_by_label("Город").fill(place)
    page.get_by_label("Регион").select_option(label="Республика Татарстан")  # SC-2: names from the locale
    page.get_by_label("Телефон администратора").fill(phone)
    me.screen("school-apply")
    page.get_by_role("button", name="Отправить заявку").click()
    expect(page.get_by_role("status")).to_contain_text("Заявка «Школа «Радуга»» отправлена")
    me.screen("school-apply-sent")
    other = api.ok("POST", "/organization-applications", status=201, json={
        "name": "Не та школа", "kind": "school", "country": "RU", "city": place, "admin_phone": api.new_phone()})

    _, operator = operator_in_browser(people, api, "operator", "/schools")
    page = operator.page
    operator.screen("schools")
    page.get_by_role("link", name="Консоль оператора").click()
    expect(page.get_by_role("heading", name="Консоль оператора")).to_be_visible()
    operator.screen("operator-console")
    expect(page.locator("[data-application='Не та школа']")).to_contain_text(f"{place}, Россия")  # not "RU"
    expect(page.locator("[data-application='Школа «Радуга»']")).to_contain_text(
        f"{place}, Республика Татарстан, Россия")  # SC-2: the region by its name, not "16"
    page.get_by_role("button", name="Одобрить: Школа «Радуга»").click()
    expect(page.get_by_role("status").first).to_contain_text("«Школа «Радуга»» зарегистрирована")
    page.get_by_role("button", name="Отклонить: Не та школа").click()
    page.get_by_label("Причина отказа").fill("Такой школы нет в реестре")
    page.get_by_role("button", name="Отклонить", exact=True).click()
    expect(page.locator("[data-application='Не та школа']")).to_have_count(0)
    assert other["application_id"] not in {a["application_id"] for a in
                                           api.ok("GET", "/operator/applications", api.operator()["access_token"])}

    # The approved school's admin signs in with the named phone and finds it among their schools.
    admin = api.sign_in(phone)
    eventually(lambda: api.ok("GET", "/me/organizations", admin["access_token"]), what="the new admin's school")

    # Registering a region's e-journal shows its webhook secret once. Its region is chosen by name, as a school's
    # (EJ-1, SC-2), and the registered journal is named by it.
    names = json.loads((LOCALES / "ru.json").read_text())["regions"]
    region = random.choice([c for c in names if c.isdigit() and int(c) >= 50 and c != "77"])  # 77: the simulator's
    page.get_by_label("Регион", exact=True).select_option(label=names[region])
    journal = f"Журнал региона {uuid.uuid4().hex[:6]}"  # other tests register journals in regions too
    page.get_by_label("Название", exact=True).fill(journal)
    page.get_by_label("Адрес журнала").fill("https://journal.example.org")
    page.get_by_label("Идентификатор клиента (client_id)").fill("sfera")
    page.get_by_label("Секрет клиента (client_secret)").fill("secret-of-the-client")
    page.get_by_role("button", name="Подключить", exact=True).click()
    expect(page.get_by_text("Секрет показывается только сейчас")).to_be_visible()
    created = page.locator(f"[data-provider-region='{region}']").filter(has_text=journal)
    expect(created).to_contain_text(f"{names[region]} (код {region})")
    operator.screen("operator-provider-created")


def test_find_a_school_by_city_ask_to_join_and_the_admin_adds_or_hides_SC_2_SC_3(people, api, school):
    token = school["admin"]["access_token"]
    place = api.ok("GET", f"/organizations/{school['org']}", token)["city"]
    teacher = api.person("Смирнова", "Ольга", "1985-02-02", "female")
    stranger = api.person("Лишний", "Пётр", "1990-01-01", "male")
    api.ok("POST", f"/organizations/{school['org']}/join-requests", stranger["access_token"], status=201,
           json={"message": "Возьмите меня"})

    me = people("seeker")
    me.sign_in_as(teacher, "/")
    page = me.page
    page.get_by_role("link", name="Найти школу").click()
    # One box, searched as one types (issue #17): a word form of the name ("лицея": "Лицей") and the city's
    # own word (the city is unique to this module), no button pressed.
    words = page.get_by_label("Название, город, регион или адрес")
    words.press_sequentially("щщщщ", delay=30)
    expect(page.get_by_text("По запросу ничего не нашлось")).to_be_visible()
    me.screen("school-find-nothing")
    words.fill("")
    expect(page.get_by_role("heading", name="Поиск:")).to_have_count(0)
    with page.expect_request(lambda r: "/api/v1/organizations?" in r.url and "q=" in r.url) as asked:
        words.press_sequentially(f"лицея {place.split('-')[1]}", delay=30)
    found = page.locator(".tile", has_text="Лицей №2")
    expect(found).to_have_count(1)
    expect(found).to_contain_text(place)  # the city tells apart schools of one name
    assert "city=" not in asked.value.url
    expect(page.get_by_role("heading", name=f"Поиск: «лицея {place.split('-')[1]}»")).to_be_visible()
    me.screen("school-find-results")
    page.get_by_role("button", name="English").click()
    expect(page.get_by_label("Name, city, region or address")).to_have_value(f"лицея {place.split('-')[1]}")
    expect(page.get_by_role("heading", name="Search: “")).to_be_visible()
    me.screen("school-find-en")
    page.get_by_role("button", name="Русский").click()
    # The search is in the address: back from the school's page shows it again.
    found.get_by_role("link", name="Лицей №2").click()
    expect(page).to_have_url(re.compile(f"/schools/{school['org']}$"))
    page.go_back()
    expect(page.get_by_label("Название, город, регион или адрес")).to_have_value(f"лицея {place.split('-')[1]}")
    expect(found).to_have_count(1)
    page.get_by_role("button", name="Попроситься в школу").click()
    page.get_by_label("Сообщение администраторам").fill("Я учитель математики")
    me.screen("school-find")
    page.get_by_role("button", name="Отправить заявку").click()
    expect(page.get_by_role("status")).to_contain_text("Заявка отправлена")

    # Someone given the school's page (not a member) asks from there.
    visitor = people("visitor")
    visitor.sign_in_as(api.person("Гостева", "Дина", "1991-01-01", "female"), f"/schools/{school['org']}")
    expect(visitor.page.get_by_text("видят участники школы")).to_be_visible()
    visitor.page.get_by_role("button", name="Попроситься в школу").click()
    expect(visitor.page.get_by_role("status")).to_contain_text("Заявка отправлена")
    visitor.screen("school-page-visitor")

    admin = people("admin-requests")
    admin.sign_in_as(school["admin"], f"/schools/{school['org']}/manage/requests")
    page = admin.page
    expect(page.get_by_text("Я учитель математики")).to_be_visible()
    expect(page.locator("[data-request='Гостева Дина']")).to_be_visible()
    admin.screen("admin-requests")
    item = page.locator("[data-request='Смирнова Ольга']")
    item.get_by_label("Роль").select_option("teacher")
    item.get_by_label("Класс").select_option(label="5А")
    page.get_by_role("button", name="Добавить: Смирнова Ольга").click()
    expect(page.get_by_role("status").first).to_contain_text("Смирнова Ольга теперь в школе")
    page.get_by_role("button", name="Скрыть: Лишний Пётр").click()
    expect(page.get_by_role("status").first).to_contain_text("Заявка Лишний Пётр скрыта")
    mine = api.ok("GET", "/me/organizations", teacher["access_token"])
    assert [m["membership"]["roles"] for m in mine if m["organization"]["organization_id"] == school["org"]] == [
        ["teacher"]]
    again = api.call("POST", f"/organizations/{school['org']}/join-requests", stranger["access_token"], json={})
    assert again.status_code in (403, 410) and again.json()["error"]["code"] == "join_request.hidden"


def test_the_admin_changes_the_schools_region_and_search_finds_it_by_the_regions_name_SC_2_RO_2(people, api):
    """SC-2 (issue #17): a school's region is set in its settings by an admin (RO-2); search finds the school by
    the region's name in Russian or English, and its hit says "city, region" in the language shown."""
    place = city()
    org, admin = api.organization("Гимназия Приречная", place, region="16")
    me = people("admin-region")
    me.sign_in_as(admin, f"/schools/{org}/manage/details")
    page = me.page
    region = page.get_by_label("Регион")
    expect(region).to_have_value("16")
    region.select_option(label="Москва")
    me.screen("admin-details-region")
    page.get_by_role("button", name="Сохранить").click()
    expect(page.get_by_role("status").first).to_contain_text("Сохранено")
    assert api.ok("GET", f"/organizations/{org}", admin["access_token"])["region"] == "77"

    seeker = people("region-seeker")
    seeker.sign_in_as(api.person("Искателева", "Вера", "1988-03-03", "female"), "/schools/find")
    page = seeker.page
    words = page.get_by_label("Название, город, регион или адрес")
    words.press_sequentially(f"{place.split('-')[1]} татарстан", delay=30)
    expect(page.get_by_text("По запросу ничего не нашлось")).to_be_visible()  # no longer in Tatarstan
    words.fill("")
    words.press_sequentially(f"приречная {place.split('-')[1]} moscow", delay=30)
    found = page.locator(".tile", has_text="Гимназия Приречная")
    expect(found).to_contain_text(f"{place}, Москва")
    with page.expect_request(lambda r: "region=16" in r.url):  # the region filter narrows the same words
        page.get_by_label("Регион", exact=True).select_option(label="Республика Татарстан")
    expect(page.get_by_text("По запросу ничего не нашлось")).to_be_visible()
    page.get_by_label("Регион", exact=True).select_option(label="Москва")
    expect(found).to_contain_text(f"{place}, Москва")
    assert "region=77" in page.url  # kept in the address with the words
    seeker.screen("school-find-region")
    page.get_by_role("button", name="English").click()
    expect(found).to_contain_text(f"{place}, Moscow")
    seeker.screen("school-find-region-en")
    page.get_by_role("button", name="Русский").click()
    found.get_by_role("link", name="Гимназия Приречная").click()
    expect(page.locator(".facts")).to_contain_text("Москва")


def test_admin_pages_classes_invite_links_and_members_SC_4_SC_5_SC_9_RO_7(people, api, school):
    token = school["admin"]["access_token"]
    pupil = api.member(school["org"], school["admin"], "student", school["five"],
                       last_name="Зайцев", first_name="Миша", birth_date="2014-01-01", sex="male")
    teacher = api.member(school["org"], school["admin"], "teacher",
                         last_name="Волкова", first_name="Нина", birth_date="1980-01-01", sex="female")
    api.ok("POST", f"/organizations/{school['org']}/classes", token, status=201,
           json={"name": "11Б", "start_year": 2009, "end_year": 2020})

    # PL-7: a parent of siblings in 5А and 6А is a parent in both classes (was: the first child's only).
    parent = api.person("Соколова", "Ольга", "1985-03-03", "female")
    for klass, name in (("five", "Петя"), ("six", "Ваня")):
        child = api.member(school["org"], school["admin"], "student", school[klass], last_name="Соколов",
                           first_name=name, birth_date="2014-02-02", sex="male")
        eventually(lambda c=child: api.call("GET", "/me/parent-invite", c["access_token"]).status_code == 200,
                   what="identity to learn from school's MemberJoined that this is a student")
        link = api.ok("GET", "/me/parent-invite", child["access_token"])["token"]
        api.ok("POST", f"/parent-invites/{link}/confirmation", parent["access_token"], status=201,
               json={"consent": True})
    parent_id = api.ok("GET", "/me", parent["access_token"])["user_id"]
    eventually(lambda: parent_id in {m["user_id"] for m in api.ok(
        "GET", f"/organizations/{school['org']}/members?class_id={school['six']}", token)["items"]},
        what="school to make the parent a parent in the second child's class too")

    me = people("admin")
    me.context.grant_permissions(["clipboard-read", "clipboard-write"])
    me.sign_in_as(school["admin"], f"/schools/{school['org']}")
    page = me.page
    me.screen("school-page-admin")
    page.get_by_role("link", name="Управление школой").click()
    expect(page).to_have_url(f"/schools/{school['org']}/manage/members")

    # SC-4: classes, the graduated one marked; a new class.
    page.get_by_role("link", name="Классы").click()
    expect(page.get_by_role("heading", name="Классы", level=1)).to_be_visible()
    expect(page.locator(".tile", has_text="11Б")).to_contain_text("выпущен")
    page.get_by_label("Название").fill("2В")
    page.get_by_label("Год начала").fill("2025")
    page.get_by_label("Год выпуска").fill("2036")
    page.get_by_role("button", name="Добавить класс").click()
    expect(page.locator(".tile", has_text="2В")).to_contain_text("2025–2036")
    me.screen("admin-classes")

    # SC-5, ID-4: an invite link: preset, uses, class, e-mail for juniors (grade 2); copy, a big QR, revoke.
    page.get_by_role("link", name="Приглашения").click()
    expect(page.get_by_role("heading", name="Ссылки-приглашения")).to_be_visible()
    page.get_by_label("Класс", exact=True).select_option(label="2В")
    page.get_by_label("1 день").check()
    page.get_by_label("Сколько человек может присоединиться").fill("25")
    page.get_by_label("Разрешить регистрацию по электронной почте").check()
    page.get_by_role("button", name="Создать ссылку").click()
    invite = page.locator(".invite", has_text="Присоединились: 0 из 25")
    expect(invite).to_be_visible()
    expect(invite).to_contain_text("по почте")
    me.screen("admin-invites")
    invite.get_by_role("button", name="Скопировать").click()
    expect(invite.get_by_role("status")).to_contain_text("Ссылка скопирована")
    url = page.evaluate("navigator.clipboard.readText()")
    assert re.search(r"/invite/[\w-]+$", url), url
    invite_token = url.rsplit("/", 1)[1]
    assert api.ok("GET", f"/invites/{invite_token}")["class_name"] == "2В"
    invite.get_by_role("button", name="QR-код на весь экран").click()
    qr = page.get_by_role("dialog").get_by_role("img")
    expect(qr).to_be_visible()
    assert page.evaluate("document.querySelector('.qr-big').naturalWidth") > 0
    page.set_viewport_size({"width": 1366, "height": 768})
    box = qr.bounding_box()
    assert box and box["width"] >= 500, box  # big enough to scan from the back of a classroom
    page.screenshot(path=str(me_screens() / "admin-invite-qr-1366.png"))
    page.set_viewport_size({"width": 360, "height": 740})
    page.get_by_role("button", name="Закрыть").click()
    invite.get_by_role("button", name="Аннулировать ссылку").click()
    invite.get_by_role("button", name="Аннулировать ссылку").click()
    expect(invite).to_contain_text("аннулирована")
    assert api.call("GET", f"/invites/{invite_token}").json()["error"]["code"] == "invite.revoked"

    # SC-9, RO-7: members filtered by class; a class changed, an admin appointed, a member removed.
    page.get_by_role("link", name="Участники").click()
    expect(page.get_by_role("heading", name="Участники")).to_be_visible()
    page.get_by_label("Класс", exact=True).select_option(label="5А")
    expect(page.locator("[data-member='Зайцев Миша']")).to_be_visible()
    expect(page.locator("[data-member='Волкова Нина']")).to_have_count(0)
    expect(page.locator("[data-member='Соколова Ольга']")).to_contain_text("5А, 6А")
    me.screen("admin-members")
    page.get_by_role("button", name="Изменить: Зайцев Миша").click()
    page.locator("[data-member='Зайцев Миша']").get_by_label("Класс").select_option(label="6А")
    page.get_by_role("button", name="Сохранить").click()
    expect(page.get_by_role("status").first).to_contain_text("Данные участника Зайцев Миша изменены")
    page.get_by_label("Класс", exact=True).first.select_option("")
    page.get_by_role("button", name="Сделать администратором: Волкова Нина").click()
    expect(page.get_by_role("status").first).to_contain_text("Волкова Нина теперь администратор")
    page.get_by_role("button", name="Удалить из школы: Зайцев Миша").click()
    page.get_by_role("button", name="Удалить из школы", exact=True).click()
    expect(page.locator("[data-member='Зайцев Миша']")).to_have_count(0)
    # English second: the same page in English.
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Members", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Make admin: Zaitsev Misha")).to_have_count(0)
    me.screen("admin-members-en")
    page.get_by_role("button", name="Русский").click()
    assert "admin" in [m for m in api.ok("GET", "/me/organizations", teacher["access_token"])
                       if m["organization"]["organization_id"] == school["org"]][0]["membership"]["roles"]
    assert not [m for m in api.ok("GET", "/me/organizations", pupil["access_token"])
                if m["organization"]["organization_id"] == school["org"]]


def me_screens():
    from tests.web.conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def test_documents_articles_and_channels_SC_10_SC_11_SC_12(people, api, school, tmp_path):
    org = school["org"]
    token = school["admin"]["access_token"]
    reader = api.member(org, school["admin"], "student", school["five"],
                        last_name="Юрьева", first_name="Ася", birth_date="2014-01-01", sex="female")
    channel = api.ok("POST", f"/organizations/{org}/channels", token, status=201, json={"name": "Новости"})
    for n in range(21):
        api.ok("POST", f"/channels/{channel['channel_id']}/posts", token, status=201,
               json={"text": f"Старая новость {n}"})

    me = people("admin-content")
    me.sign_in_as(school["admin"], f"/schools/{org}/manage/documents")
    page = me.page

    # SC-10: an upload shows its progress (the connection slowed down so it can be seen).
    doc = tmp_path / "Расписание.pdf"
    doc.write_bytes(b"%PDF-1.4\n%" + uuid.uuid4().hex.encode() + b"\n" + os.urandom(150_000))
    cdp = me.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 20, "downloadThroughput": -1,
                                                   "uploadThroughput": 60_000})
    page.get_by_label("Файл").set_input_files(str(doc))
    expect(page.get_by_label("Название документа")).to_have_value("Расписание")
    page.get_by_role("button", name="Загрузить").click()
    expect(page.locator("progress")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Загружено [1-9]\d?%"))).to_be_visible(timeout=20_000)  # it moves
    me.page.screenshot(path=str(me_screens() / "admin-document-progress-360.png"))
    expect(page.get_by_role("status")).to_contain_text("Документ «Расписание» загружен", timeout=30_000)
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                   "uploadThroughput": -1})
    me.screen("admin-documents")

    # SC-11: an article: cover, rich text (the API drops what is unsafe), a draft, then published.
    me.open(f"/schools/{org}")
    page.get_by_role("link", name="Написать статью").click()
    page.get_by_label("Заголовок").fill("День открытых дверей")
    cover = tmp_path / "cover.png"
    cover.write_bytes(PNG)
    page.get_by_label("Обложка").set_input_files(str(cover))
    expect(page.get_by_alt_text("Обложка статьи")).to_be_visible()
    body = page.get_by_role("textbox", name="Текст статьи")
    body.click()
    page.get_by_role("button", name="Жирный").click()
    page.keyboard.type("Ждём всех")
    page.get_by_role("button", name="Жирный").click()
    page.keyboard.type(" в субботу.")
    # What a pasted page could carry (the browser would run none of it under the CSP, but the API must drop it):
    # added to the draft on its way to the API, the editor then shows what the API kept.
    unsafe = ('<p>Схема: <span onmouseover="alert(1)">проезд</span> <a href="javascript:alert(2)">тут</a></p>'
              '<script>x()</script>')

    def taint(route):
        if route.request.method != "POST":
            return route.continue_()
        draft = json.loads(route.request.post_data)
        return route.continue_(post_data=json.dumps({**draft, "html": draft["html"] + unsafe}))

    page.route("**/api/v1/organizations/*/articles", taint)
    page.get_by_role("button", name="Сохранить черновик").click()
    expect(page.get_by_role("status")).to_contain_text("Черновик сохранён")
    expect(page).to_have_url(re.compile(f"/schools/{org}/editor/[0-9a-f-]+$"))
    html = body.inner_html()
    assert "<b>Ждём всех</b>" in html or "<strong>Ждём всех</strong>" in html, html
    assert "проезд" in html and "onmouseover" not in html and "javascript:" not in html and "<script" not in html, html
    me.screen("article-editor")
    page.get_by_role("button", name="Опубликовать").click()
    expect(page.get_by_role("heading", name="День открытых дверей")).to_be_visible()
    expect(page.locator(".article img.cover")).to_be_visible()
    me.screen("article")
    # The article and the channel are asked by their ids, not looked for in the school's whole list (issue #17).
    whole_lists = []
    page.on("request", lambda r: whole_lists.append(r.url) if r.method == "GET" and re.search(
        r"/organizations/[^/]+/(articles|channels)(\?|$)", r.url) else None)
    page.reload()
    expect(page.get_by_role("heading", name="День открытых дверей")).to_be_visible()
    expect(page.locator(".article img.cover")).to_be_visible()

    # SC-12: the admin posts in a channel; a pupil reads it, older posts a page at a time.
    # A network blip: the failed post says so, keeps its text and goes on "Повторить".
    me.open(f"/schools/{org}/channels/{channel['channel_id']}")
    expect(page.get_by_role("heading", name="Новости", exact=True)).to_be_visible()
    assert whole_lists == []
    blips = [1]

    def blip(route):
        if route.request.method == "POST" and blips:
            blips.pop()
            return route.abort("internetdisconnected")
        return route.continue_()

    page.route("**/api/v1/channels/*/posts", blip)
    page.get_by_label("Новая публикация").fill("Завтра линейка в 9:00")
    page.get_by_role("button", name="Опубликовать").click()
    expect(page.get_by_role("alert").first).to_contain_text("Нет связи с сервером")
    expect(page.get_by_label("Новая публикация")).to_have_value("Завтра линейка в 9:00")
    page.get_by_role("button", name="Повторить").click()
    expect(page.locator(".post").first).to_contain_text("Завтра линейка в 9:00")
    expect(page.get_by_label("Новая публикация")).to_have_value("")

    # The admins' channels: the list the school's page shows too (ChannelList), a new channel in it at once.
    me.open(f"/schools/{org}/manage/channels")
    channels = page.get_by_role("region", name="Каналы")
    expect(channels.get_by_role("link", name="Новости")).to_be_visible()
    page.get_by_label("Название нового канала").fill("Объявления")
    page.get_by_role("button", name="Создать канал").click()
    expect(channels.get_by_role("link", name="Объявления")).to_be_visible()
    me.screen("admin-channels")

    pupil = people("pupil-reader")
    pupil.sign_in_as(reader, f"/schools/{org}")
    page = pupil.page
    expect(page.get_by_text("Расписание", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="День открытых дверей")).to_be_visible()
    pupil.screen("school-page")
    with page.expect_download() as download:
        page.get_by_role("button", name="Скачать «Расписание»").click()
    assert download.value.suggested_filename == "Расписание.pdf"
    page.get_by_role("link", name="Новости").click()
    expect(page.locator(".post")).to_have_count(20)
    expect(page.get_by_label("Новая публикация")).to_have_count(0)
    # Scrolled to, the list's end asks the older posts itself (MoreItems' sentinel): clicking the button raced it
    # (the scroll before the click loaded them and took the button away).
    page.get_by_role("button", name="Показать более ранние").scroll_into_view_if_needed()
    expect(page.locator(".post")).to_have_count(22)
    expect(page.get_by_role("button", name="Показать более ранние")).to_have_count(0)
    pupil.screen("channel")


def test_a_teacher_invites_pupils_to_the_class_they_teach_SC_5(people, api, school):
    teacher = api.member(school["org"], school["admin"], "teacher", school["five"],
                         last_name="Кедрова", first_name="Ия", birth_date="1982-01-01", sex="female")
    me = people("teacher-invites")
    me.sign_in_as(teacher, f"/schools/{school['org']}")
    page = me.page
    page.get_by_role("link", name="Ссылки-приглашения").click()
    expect(page.get_by_role("heading", name="Ссылки-приглашения")).to_be_visible()
    expect(page.get_by_role("navigation", name="Управление школой")).to_have_count(0)
    expect(page.get_by_label("учитель")).to_have_count(0)  # only admins invite teachers
    expect(page.get_by_label("Класс", exact=True).locator("option")).to_have_text(["5А"])
    page.get_by_label("7 дней").check()
    page.get_by_role("button", name="Создать ссылку").click()
    expect(page.locator(".invite", has_text="ученик, 5А").first).to_be_visible()
    me.screen("teacher-invites")
    me.open(f"/schools/{school['org']}/manage/members")
    expect(page.get_by_text("Эти страницы доступны только администраторам школы")).to_be_visible()
