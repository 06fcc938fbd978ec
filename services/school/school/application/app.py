"""School's application: commands and queries, no transport (docs/rules.md RO-*, SC-*).

One module per use case, each a mixin over ``base`` (the getters and rights checks they share); this class
composes them. Other services' events reach it through ``school.handlers`` as plain values and the event's id."""

from __future__ import annotations

from school.application.channels import Channels
from school.application.classes import Classes
from school.application.dashboard import Dashboard
from school.application.invites import Invites
from school.application.join_requests import JoinRequests
from school.application.materials import Materials
from school.application.members import Members
from school.application.organizations import Organizations
from school.application.parents import Parents
from school.application.people import People
from school.domain import (
    ApplicationQueue,
    Channel,
    CityDirectory,
    GraduationYear,
    InviteIndex,
    InviteLink,
    JoinRequestQueue,
    MaterialsIndex,
    Organization,
    PersonOrganizations,
    Roster,
)


class SchoolApplication(Organizations, Classes, Dashboard, Members, Invites, JoinRequests, Materials, Channels,
                        People, Parents):
    name = "school"
    snapshotting_intervals = {Roster: 100, Organization: 100, CityDirectory: 100, InviteIndex: 100,
                              MaterialsIndex: 100, Channel: 50, JoinRequestQueue: 100, GraduationYear: 100,
                              ApplicationQueue: 100, InviteLink: 100, PersonOrganizations: 50}
