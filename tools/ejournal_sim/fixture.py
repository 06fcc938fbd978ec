"""A realistic school, generated the same for the same seed: 30 classes, about
1,000 students, their parents (one or two each), 80 teachers with subjects, a
class teacher per class and a week's timetable (6 lessons a day, Monday to
Friday), some lessons remote. Records use OneRoster's vocabulary (``sourcedId``,
``role``, ``agents``, ``enrollments``) plus our lesson slot."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

SUBJECTS = {
    "primary": ["Русский язык", "Литературное чтение", "Математика", "Окружающий мир", "Музыка",
                "Изобразительное искусство", "Технология", "Физическая культура", "Английский язык"],
    "middle": ["Русский язык", "Литература", "Математика", "История", "Обществознание", "География", "Биология",
               "Английский язык", "Физическая культура", "Информатика", "Музыка", "Технология"],
    "senior": ["Русский язык", "Литература", "Алгебра", "Геометрия", "Физика", "Химия", "Биология", "История",
               "Обществознание", "Английский язык", "Информатика", "Физическая культура"],
}
LAST = ["Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков", "Фёдоров",
        "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров", "Павлов", "Козлов", "Степанов", "Николаев"]
FIRST_M = ["Александр", "Максим", "Иван", "Артём", "Дмитрий", "Никита", "Михаил", "Егор", "Матвей", "Андрей"]
FIRST_F = ["Анна", "Мария", "Софья", "Алиса", "Виктория", "Полина", "Елизавета", "Дарья", "Варвара", "Ксения"]
BELLS = [time(8, 30), time(9, 25), time(10, 30), time(11, 35), time(12, 35), time(13, 35)]
TZ = timezone(timedelta(hours=3))


def _name(rng: random.Random) -> tuple[str, str]:
    female = rng.random() < 0.5
    last = rng.choice(LAST) + ("а" if female else "")
    return last, rng.choice(FIRST_F if female else FIRST_M)


@dataclass
class School:
    region: str
    org: dict
    classes: list[dict] = field(default_factory=list)
    users: list[dict] = field(default_factory=list)
    enrollments: list[dict] = field(default_factory=list)
    lessons: list[dict] = field(default_factory=list)

    def user(self, sourced_id: str) -> dict:
        return self._users[sourced_id]

    def index(self) -> School:
        self._users = {u["sourcedId"]: u for u in self.users}
        return self

    def of_role(self, role: str) -> list[dict]:
        return [u for u in self.users if u["role"] == role]

    def students_of(self, class_id: str) -> list[str]:
        return [e["user"] for e in self.enrollments if e["class"] == class_id and e["role"] == "student"]

    def class_teacher(self, class_id: str) -> str:
        return next(e["user"] for e in self.enrollments
                    if e["class"] == class_id and e["role"] == "teacher" and e["primary"])

    def password(self, sourced_id: str) -> str:
        """Test-only credentials of the simulated e-journal."""
        return f"pw-{sourced_id}"


def build_school(region: str = "16", seed: int = 1, classes: int = 30, students: int = 1000, teachers: int = 80,
                 week_of: date = date(2026, 9, 7), remote_share: float = 0.05) -> School:
    rng = random.Random(f"{region}:{seed}")
    prefix = f"r{region}"
    school = School(region, {"sourcedId": f"{prefix}-org-1", "name": f"Школа №{seed} (регион {region})",
                             "type": "school"})
    org_ref = school.org["sourcedId"]
    grades = [g for g in range(1, 12) for _ in range(3)][:classes]  # three parallels per grade
    letters = "АБВ"
    for n, grade in enumerate(grades):
        school.classes.append({"sourcedId": f"{prefix}-class-{n + 1}", "title": f"{grade}{letters[n % 3]}",
                               "grades": [str(grade)], "org": org_ref})
    # Teachers with two or three subjects each; every subject of every level has teachers.
    levels = {"primary": range(1, 5), "middle": range(5, 10), "senior": range(10, 12)}
    teacher_subjects: dict[str, list[str]] = {}
    all_subjects = sorted({s for subjects in SUBJECTS.values() for s in subjects})
    for n in range(teachers):
        sourced_id = f"{prefix}-teacher-{n + 1}"
        last, first = _name(rng)
        first_subject = all_subjects[n] if n < len(all_subjects) else rng.choice(all_subjects)
        subjects = [first_subject, rng.choice(all_subjects)]
        teacher_subjects[sourced_id] = sorted(set(subjects))
        school.users.append({"sourcedId": sourced_id, "role": "teacher", "familyName": last, "givenName": first,
                             "orgs": [org_ref], "agents": []})
    teacher_ids = list(teacher_subjects)
    # Students spread over the classes, each with one or two parents.
    for n in range(students):
        klass = school.classes[n % len(school.classes)]
        sourced_id = f"{prefix}-student-{n + 1}"
        last, first = _name(rng)
        parents = []
        for p in range(1 if rng.random() < 0.3 else 2):
            parent_id = f"{prefix}-parent-{n + 1}-{p + 1}"
            parents.append(parent_id)
            school.users.append({"sourcedId": parent_id, "role": "parent", "familyName": last,
                                 "givenName": rng.choice(FIRST_F if p == 0 else FIRST_M), "orgs": [org_ref],
                                 "agents": [sourced_id]})
        school.users.append({"sourcedId": sourced_id, "role": "student", "familyName": last, "givenName": first,
                             "orgs": [org_ref], "agents": parents})
        school.enrollments.append({"sourcedId": f"{prefix}-enr-{sourced_id}", "class": klass["sourcedId"],
                                   "user": sourced_id, "role": "student", "primary": False})
    # A class teacher per class, and a timetable: 6 lessons a day, Monday to Friday.
    for n, klass in enumerate(school.classes):
        grade = int(klass["grades"][0])
        level = next(name for name, grades_of in levels.items() if grade in grades_of)
        subjects = SUBJECTS[level]
        teacher_of = {}
        for subject in subjects:
            able = [t for t in teacher_ids if subject in teacher_subjects[t]] or teacher_ids
            teacher_of[subject] = rng.choice(able)
        homeroom = teacher_ids[n % len(teacher_ids)]
        school.enrollments.append({"sourcedId": f"{prefix}-enr-{homeroom}-{klass['sourcedId']}-primary",
                                   "class": klass["sourcedId"], "user": homeroom, "role": "teacher",
                                   "primary": True})
        for teacher in sorted(set(teacher_of.values()) - {homeroom}):
            school.enrollments.append({"sourcedId": f"{prefix}-enr-{teacher}-{klass['sourcedId']}",
                                       "class": klass["sourcedId"], "user": teacher, "role": "teacher",
                                       "primary": False})
        for day in range(5):
            for slot, bell in enumerate(BELLS):
                subject = subjects[(day * len(BELLS) + slot + n) % len(subjects)]
                starts = datetime.combine(week_of + timedelta(days=day), bell, TZ)
                school.lessons.append({
                    "sourcedId": f"{prefix}-lesson-{klass['sourcedId']}-{day}-{slot}", "class": klass["sourcedId"],
                    "subject": subject, "teacher": teacher_of[subject], "startsAt": starts.isoformat(),
                    "endsAt": (starts + timedelta(minutes=45)).isoformat(),
                    "remote": rng.random() < remote_share, "published": False})
    return school.index()


class FixtureJournal:
    """The journal client (``ejournal_bridge.journal``'s token exchange and /me) of in-process tests, answering from
    a built school: the sign-in's code is the person's sourcedId. ``others``: people the journal has besides the
    school's fixture."""

    def __init__(self, school: School):
        self.school = school
        self.others: dict[str, dict] = {}

    def exchange_code(self, provider, code: str, redirect_uri: str, code_verifier: str, client_secret: str) -> str:
        return f"token-{code}"

    def me(self, provider, access_token: str) -> dict:
        sourced_id = access_token.removeprefix("token-")
        return self.others.get(sourced_id) or self.school.user(sourced_id)
