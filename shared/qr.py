"""QR codes of links (parent invites, school invites), as SVG or PNG, with segno."""

from __future__ import annotations

import io

import segno

FORMATS = {"svg": "image/svg+xml", "png": "image/png"}


def render(text: str, fmt: str = "svg", scale: int = 8) -> tuple[bytes, str]:
    """The QR code of ``text`` and its media type."""
    if fmt not in FORMATS:
        raise ValueError(f"QR format {fmt!r}: expected one of {', '.join(FORMATS)}")
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind=fmt, scale=scale, border=2)
    return out.getvalue(), FORMATS[fmt]
