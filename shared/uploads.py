"""What an upload is allowed to be, decided the same way by the gateway and the services
that own the files (issue #12): the file name as it will be shown, the real type sniffed
from the content (never the client's label), executables refused whatever they are
called, and how many bytes a person or a school may upload a day."""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import date

import filetype
from eventsourcing.domain import Aggregate, event

from shared.config import env_int
from shared.errors import TooManyRequests

MB = 1024 * 1024
SNIFF_BYTES = 8192  # what the sniffer reads: the head of the file

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
IMAGE_MAX_BYTES = 5 * MB
# Shown in the page (Content-Disposition: inline); everything else is a download.
INLINE_TYPES = IMAGE_TYPES
EXECUTABLE_TYPES = frozenset({"application/x-msdownload", "application/x-msdos-program", "application/x-executable",
                              "application/vnd.microsoft.portable-executable", "application/x-sh",
                              "application/x-shellscript", "application/x-bat", "application/java-archive",
                              "application/x-msi", "application/x-mach-binary"})
EXECUTABLE_SUFFIXES = (".exe", ".bat", ".cmd", ".com", ".scr", ".msi", ".vbs", ".ps1", ".jar", ".sh", ".apk",
                       ".pif", ".cpl", ".hta", ".js", ".jse", ".wsf", ".lnk", ".reg", ".dll")
OLE_TYPES = {".doc": "application/msword", ".xls": "application/vnd.ms-excel",
             ".ppt": "application/vnd.ms-powerpoint"}
# One container, several names: the label (or the extension) picks among these, never outside them.
CONTAINER_VARIANTS = {
    "video/webm": ("audio/webm",),
    "video/mp4": ("audio/mp4",),
    "audio/x-wav": ("audio/wav",),
}
SNIFFED_ALIASES = {"image/apng": "image/png", "audio/x-flac": "audio/flac", "audio/m4a": "audio/mp4",
                   "audio/x-m4a": "audio/mp4"}
MARKUP = re.compile(rb"^\s*(<\?xml|<!doctype\s+html|<html|<head|<body|<script|<svg|<iframe|<!--)", re.IGNORECASE)
MAX_NAME = 255


def clean_file_name(name: str | None) -> str:
    """The file name as it is checked, stored and offered for download: Unicode NFKC
    (full-width letters become plain ones), no control or format characters (NUL,
    bidirectional overrides), no folders, no trailing dots or spaces (Windows drops
    them, so ``run.exe.`` *is* ``run.exe``)."""
    name = unicodedata.normalize("NFKC", name or "")
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp"))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = name.strip().rstrip(". ").strip()
    return name[-MAX_NAME:] if name not in ("", ".", "..") else "file"


def is_executable(file_name: str, media_type: str) -> bool:
    """An executable by its (cleaned) name or by its sniffed type."""
    return clean_file_name(file_name).lower().endswith(EXECUTABLE_SUFFIXES) or media_type in EXECUTABLE_TYPES


def sniff(head: bytes, file_name: str = "", label: str = "") -> str:
    """The media type of a file from its first bytes. The client's label and the
    extension only choose between names of one container (a WebM voice message is
    ``audio/webm``; an OLE2 file is a .doc, .xls or .ppt by its extension); they never
    make a file something its bytes are not. Unknown binary content is
    ``application/octet-stream``; text is ``text/plain`` unless it is markup."""
    label = (label or "").split(";")[0].strip().lower()
    cleaned = clean_file_name(file_name).lower()
    suffix = "." + cleaned.rsplit(".", 1)[-1] if "." in cleaned else ""
    kind = filetype.guess(head[:SNIFF_BYTES]) if head else None
    if kind is not None:
        found = SNIFFED_ALIASES.get(kind.mime, kind.mime)
        if label in CONTAINER_VARIANTS.get(found, ()):
            return label
        return found
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return OLE_TYPES.get(suffix, "application/x-ole-storage")
    if head.startswith(b"#!"):
        return "application/x-shellscript"
    if _is_text(head):
        return "text/html" if MARKUP.match(head.lstrip(b"\xef\xbb\xbf")) else "text/plain"
    return "application/octet-stream"


def _is_text(head: bytes) -> bool:
    if not head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:  # only a character cut at the end of the head may be incomplete
            return False
        text = head[:e.start].decode("utf-8")
    return all(c.isprintable() or c in "\t\n\r\f" for c in text.removeprefix("\ufeff"))


# -- quotas ------------------------------------------------------------------------------------------

def person_daily_bytes() -> int:
    """What one person may upload a day into one service's files (school's materials; chats)."""
    return env_int("SFERA_UPLOAD_DAILY_BYTES_PER_PERSON", 1024 * MB)


def school_daily_bytes() -> int:
    """What the people of one school may upload a day into one service's files."""
    return env_int("SFERA_UPLOAD_DAILY_BYTES_PER_SCHOOL", 20 * 1024 * MB)


LEDGER_NAMESPACE = uuid.UUID("5b0e7f43-2f51-4c83-9f0d-3a1f6c2e8d47")


class UploadLedger(Aggregate):
    """The bytes uploaded by one person (``scope="person"``) or into one school
    (``scope="organization"``) on one day, UTC."""

    @staticmethod
    def create_id(scope: str, owner_id: uuid.UUID, day: date, **_: object) -> uuid.UUID:
        return uuid.uuid5(LEDGER_NAMESPACE, f"upload-ledger:{scope}:{owner_id}:{day.isoformat()}")

    @event("Opened")
    def __init__(self, scope: str, owner_id: uuid.UUID, day: date):
        self.scope, self.owner_id, self.day = scope, owner_id, day
        self.bytes = 0

    @event("Charged")
    def charge(self, size: int) -> None:
        self.bytes += size


class Quotas:
    """The ledgers one upload is charged to: its person's, and its school's when it has one."""

    def __init__(self, find, person_id: uuid.UUID, organization_id: uuid.UUID | None, day: date):
        self.limits = {"person": person_daily_bytes(), "organization": school_daily_bytes()}
        owners = [("person", person_id)] + ([("organization", organization_id)] if organization_id else [])
        self.ledgers = [find(UploadLedger, UploadLedger.create_id(scope, owner, day))
                        or UploadLedger(scope=scope, owner_id=owner, day=day) for scope, owner in owners]

    def left(self) -> tuple[int, str]:
        """The bytes still allowed today, and the scope that allows the fewest."""
        return min((max(0, self.limits[ledger.scope] - ledger.bytes), ledger.scope) for ledger in self.ledgers)

    def charge(self, size: int) -> list[UploadLedger]:
        """Charge ``size`` to every ledger, or refuse when any would go past its limit; the ledgers to save."""
        left, scope = self.left()
        if size > left:
            raise quota_exceeded(scope, left)
        for ledger in self.ledgers:
            ledger.charge(size)
        return self.ledgers


def quota_exceeded(scope: str, left: int) -> TooManyRequests:
    whose = "you" if scope == "person" else "your school"
    return TooManyRequests("upload.quota_exceeded", f"Today {whose} can upload at most {left} more bytes here.",
                           {"scope": scope, "bytes_left": left})
