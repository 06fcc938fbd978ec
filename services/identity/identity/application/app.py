"""Identity's application: commands and queries by use case, no transport (docs/rules.md ID-*, PL-*); the events'
handlers are ``identity/handlers.py``."""

from __future__ import annotations

from identity.application.memberships import Memberships
from identity.application.parent_links import ParentLinking
from identity.application.passwords import Passwords
from identity.application.people import People
from identity.application.sessions import Sessions
from identity.application.sign_in import SignInCodes


class IdentityApplication(SignInCodes, Passwords, Sessions, People, Memberships, ParentLinking):
    name = "identity"
