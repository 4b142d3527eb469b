"""`undertow classify file`: one output line per valid input line, same order, bad lines named."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from classify.base import PostInput, Prediction
from cli.classify import app, classify_stream

INPUT = "\n".join(
    [
        json.dumps({"id": "a", "text": "Claude refused to summarize a court ruling. Censorship."}),
        '{"id": "b", "text": "unterminated',
        json.dumps({"id": "c", "text": ""}),
        json.dumps({"text": "no id"}),
        "",
        json.dumps({"id": 7, "text": "x" * 100_000, "parent_text": "ChatGPT deleted my chats"}),
        json.dumps([1, 2]),
        json.dumps({"id": "d", "text": "same here", "parent_text": "Gemini wiped my history"}),
    ]
)


class Echo:
    """A stand-in classifier that records what it was given."""

    version = "echo-1"

    def __init__(self) -> None:
        self.seen: list[PostInput] = []

    def predict(self, posts: list[PostInput]) -> list[Prediction]:
        self.seen.extend(posts)
        return [
            Prediction(
                id=p.id, themes=[], scores={"t": 0.1}, products=[], model_version=self.version
            )
            for p in posts
        ]


def test_stream_keeps_order_and_reports_bad_lines() -> None:
    clf, out = Echo(), io.StringIO()
    written, errors = classify_stream(clf, iter(INPUT.splitlines()), out, batch_size=2)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["id"] for r in rows] == ["a", "c", 7, "d"]  # ids as written: 7 stays a number
    assert written == 4
    assert [n for n, _ in errors] == [2, 4, 5, 7]
    assert "not JSON" in errors[0][1]
    assert all(set(r) >= {"id", "themes", "scores", "products", "model_version"} for r in rows)
    # Over-long text is cut, not rejected; the parent reaches the classifier.
    long_post = next(p for p in clf.seen if p.id == "7")
    assert 0 < len(long_post.text) < 100_000
    assert long_post.parent_text == "ChatGPT deleted my chats"


def test_cli_file_contract_with_rules_model(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(INPUT + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["file", str(src), "-o", str(dst), "--model", "rules"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "c", 7, "d"]
    assert rows[0]["products"] == ["claude"]
    assert "refusal_complaint" in rows[0]["themes"]
    assert rows[1]["themes"] == []
    assert ":2: skipped" in result.output and ":7: skipped" in result.output
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_file_reads_past_a_byte_order_mark(tmp_path: Path) -> None:
    """A file saved as "UTF-8 with BOM" keeps its first line (and `eval` reads such a file too)."""
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [{"id": "first", "text": "Claude refused again"}, {"id": "second", "text": "hi"}]
    src.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in lines).encode())
    result = CliRunner().invoke(app, ["file", str(src), "-o", str(dst), "--model", "rules"])
    assert result.exit_code == 0 and "skipped" not in result.output.split("classified")[0]
    assert [json.loads(line)["id"] for line in dst.read_text().splitlines()] == ["first", "second"]


def test_cli_file_into_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(INPUT + "\n", encoding="utf-8")
    dst = tmp_path / "no" / "such" / "out.jsonl"
    result = CliRunner().invoke(app, ["file", str(src), "-o", str(dst), "--model", "rules"])
    assert result.exit_code == 2 and "no such directory" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_file_survives_a_cut_emoji_and_deep_nesting(tmp_path: Path) -> None:
    """A lone surrogate ("\\ud83d", half an emoji) reads as U+FFFD instead of failing the
    tokenizer and the output file for the whole run; a line nested past Python's recursion limit
    is one skipped line."""
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [{"id": "cut\ud83d", "text": "Claude refused \ud83d"}, {"id": "ok", "text": "fine"}]
    src.write_text(
        "[" * 100_000 + "\n" + "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"
    )
    result = CliRunner().invoke(app, ["file", str(src), "-o", str(dst), "--model", "rules"])
    assert result.exit_code == 0, result.output
    assert ":1: skipped: not JSON (nested too deep)" in result.output
    out = [json.loads(line) for line in dst.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in out] == ["cut\ufffd", "ok"]
    assert "refusal_complaint" in out[0]["themes"]


def test_cli_file_missing_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["file", str(tmp_path / "nope.jsonl"), "-o", "-"])
    assert result.exit_code == 2


class Overlapping(Echo):
    """Each batch but the first waits for the next one to start: only a pipeline gets through."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[threading.Event] = [threading.Event() for _ in range(64)]
        self.calls = 0
        self.lock = threading.Lock()

    def predict(self, posts: list[PostInput]) -> list[Prediction]:
        with self.lock:
            k = self.calls
            self.calls += 1
        self.started[k].set()
        if k + 1 < 3:  # batches 0 and 1 finish only once the one after them is running
            assert self.started[k + 1].wait(timeout=10), "the next batch never started"
        time.sleep(0.002 * ((k * 7) % 5))  # uneven durations: a race would reorder the output
        return super().predict(posts)


def test_stream_overlaps_batches_and_keeps_input_order() -> None:
    lines = [json.dumps({"id": f"p{i}", "text": f"post {i}"}) for i in range(50)]
    lines.insert(17, "{broken")
    clf, out = Overlapping(), io.StringIO()
    written, errors = classify_stream(clf, iter(lines), out, batch_size=4)
    ids = [json.loads(line)["id"] for line in out.getvalue().splitlines()]
    assert ids == [f"p{i}" for i in range(50)]
    assert written == 50 and clf.calls == 13
    assert [n for n, _ in errors] == [18]


def test_stream_stops_on_a_failing_batch() -> None:
    class Failing(Echo):
        def predict(self, posts: list[PostInput]) -> list[Prediction]:
            if any(p.id == "p9" for p in posts):
                raise RuntimeError("boom")
            return super().predict(posts)

    lines = [json.dumps({"id": f"p{i}", "text": "x"}) for i in range(40)]
    out = io.StringIO()
    with pytest.raises(RuntimeError, match="boom"):
        classify_stream(Failing(), iter(lines), out, batch_size=4)
    # Everything before the failing batch was written, in order, and nothing after it.
    assert [json.loads(line)["id"] for line in out.getvalue().splitlines()] == [
        f"p{i}" for i in range(8)
    ]
