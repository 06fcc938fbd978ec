"""Identity's application, by use case (``app.py`` composes them)."""

from identity.application.app import IdentityApplication
from identity.application.base import InviteInfo, IssuedCode, ParentInviteView, SignIn

__all__ = ["IdentityApplication", "InviteInfo", "IssuedCode", "ParentInviteView", "SignIn"]
