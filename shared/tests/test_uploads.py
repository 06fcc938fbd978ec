"""Upload policy (issue #12): names cleaned before they are checked, types sniffed from
the content, and the blob store's staging: nothing refused reaches the store."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib

import pytest

from shared.blobs import LocalBlobStore
from shared.errors import Invalid, TooManyRequests
from shared.uploads import clean_file_name, is_executable, quota_exceeded, sniff


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def office(member: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr(member, "<x/>")
    return buffer.getvalue()


@pytest.mark.parametrize("name, cleaned", [
    ("run.exe ", "run.exe"), ("run.exe.", "run.exe"), ("run.exe. . ", "run.exe"), ("run.ＥＸＥ", "run.EXE"),
    ("ru\x00n.ex\x07e", "run.exe"), ("a\u202egpj.exe", "agpj.exe"), ("../../etc/passwd", "passwd"),
    ("C:\\Users\\x\\report.pdf", "report.pdf"), ("...", "file"), ("", "file"), ("Отчёт 5А.docx", "Отчёт 5А.docx"),
])
def test_file_names_are_cleaned_before_any_check(name, cleaned):
    assert clean_file_name(name) == cleaned


@pytest.mark.parametrize("name", ["run.exe ", "run.exe.", "RUN.EXE", "run.ｅｘｅ", "setup.msi", "a.js", "x.bat . "])
def test_executable_names_are_executables_however_they_end(name):
    assert is_executable(name, "text/plain")


def test_executable_content_is_an_executable_whatever_its_name():
    assert sniff(b"MZ\x90\x00" + bytes(100), "homework.txt", "text/plain") == "application/x-msdownload"
    assert sniff(b"\x7fELF\x02\x01\x01" + bytes(100), "a.txt") == "application/x-executable"
    assert sniff(b"#!/bin/sh\nrm -rf /\n", "notes.txt") == "application/x-shellscript"
    assert all(is_executable("ok.txt", t) for t in ("application/x-msdownload", "application/x-executable",
                                                    "application/x-shellscript"))


def test_the_type_comes_from_the_content_the_label_only_names_a_container():
    assert sniff(png(), "x.jpg", "image/jpeg") == "image/png"
    assert sniff(b"<!doctype html><script>alert(1)</script>", "x.png", "image/png") == "text/html"
    assert sniff(b"\xef\xbb\xbf  <svg onload=alert(1)>", "x.png", "image/png") == "text/html"
    assert sniff(b"%PDF-1.4\n" + bytes(range(256)), "x.png", "image/png") == "application/pdf"
    assert sniff("Домашнее задание\n".encode(), "dz.txt", "application/pdf") == "text/plain"
    assert sniff(bytes(range(256)), "x.bin") == "application/octet-stream"
    webm = b"\x1a\x45\xdf\xa3" + bytes(8) + b"\x42\x82\x84webm" + bytes(40)
    assert sniff(webm, "voice.webm", "audio/webm") == "audio/webm"
    assert sniff(webm, "clip.webm", "text/html") == "video/webm"
    assert sniff(office("word/document.xml"), "a.pdf", "application/pdf") == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)
    assert (sniff(ole, "a.doc"), sniff(ole, "a.xls"), sniff(ole, "a.txt")) == (
        "application/msword", "application/vnd.ms-excel", "application/x-ole-storage")
    assert sniff("Привет".encode()[:-1], "cut.txt") == "text/plain"  # a character cut at the end of the head


def test_a_refused_stream_leaves_nothing_and_only_a_commit_stores(tmp_path):
    store = LocalBlobStore(tmp_path)
    with pytest.raises(Invalid) as refused:
        store.stage(io.BytesIO(b"x" * 5000), 4096)
    assert refused.value.code == "file.too_large"
    with pytest.raises(TooManyRequests):
        store.stage(io.BytesIO(b"x" * 5000), 100, quota_exceeded("person", 100))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []

    content = png()
    key = hashlib.sha256(content).hexdigest()
    with store.stage(io.BytesIO(content), 1 << 20) as staged:
        assert (staged.key, staged.size, staged.head) == (key, len(content), content)
        assert not store.exists(key)                       # staged is not stored
    assert not store.exists(key) and [p for p in tmp_path.rglob("*") if p.is_file()] == []  # discarded
    with store.stage(io.BytesIO(content), 1 << 20) as staged:
        staged.commit()
    assert store.path(key).read_bytes() == content
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [store.path(key)]
    with pytest.raises(Invalid):
        store.path("../" * 20 + "etc/passwd")
