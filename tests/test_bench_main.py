"""``make bench`` (bench/__main__.py): a benchmark that fails is named and the others still run, the closing table
has the rows of those that ran, and the run exits non-zero (bench.web's failure once stopped make bench before the
SFU's successor and the table)."""

from __future__ import annotations

import types

import pytest

from bench import __main__ as make_bench
from bench import report

pytestmark = pytest.mark.unit


def fake(name: str, run) -> types.SimpleNamespace:
    return types.SimpleNamespace(__name__=f"bench.{name}", main=run)


def test_a_failing_bench_is_named_and_the_others_and_the_table_still_run(monkeypatch, capsys):
    ran = []

    def fails() -> None:
        ran.append("first")
        raise RuntimeError("a browser that never showed its composer")

    def measures() -> None:
        ran.append("second")
        report.row("second", "a figure", "1 ms", "2 ms", 0.5, "< 1x")

    def argparse_done() -> None:  # a bench's parser ending the process after --help: not a failure
        ran.append("third")
        raise SystemExit(0)

    monkeypatch.setattr(make_bench, "BENCHES", (fake("first", fails), fake("second", measures),
                                                fake("third", argparse_done)))
    assert make_bench.main() == 1
    out = capsys.readouterr()
    assert ran == ["first", "second", "third"]
    assert "| second | a figure | 1 ms | 2 ms | 0.50x | < 1x |" in out.out
    assert "FAILED: bench.first" in out.out and "bench.third" not in out.out.split("FAILED:")[1]
    assert "a browser that never showed its composer" in out.err
