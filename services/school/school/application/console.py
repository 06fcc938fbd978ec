"""The platform operator's console on the machine itself (``python -m school.operator``)."""

from __future__ import annotations

import uuid


class OperatorConsole:
    """The platform operator at the machine itself (``python -m school.operator``): the
    console builds this application on school's store and acts as ``CONSOLE``. It is
    an object of the console's own process; nothing that arrives over RPC can be it."""

    def __repr__(self) -> str:
        return "<operator console>"


CONSOLE = OperatorConsole()
Actor = uuid.UUID | OperatorConsole | None
