"""Line fingerprints: copies are found whatever the file or indentation; given and short lines are not."""

from __future__ import annotations

import json
from pathlib import Path

from course_utils.fingerprint import (
    MIN_CHARS,
    find_leaks,
    fingerprint,
    read_text_lines,
    secret_fingerprints,
    tree_texts,
)

ANSWER = "probabilities = torch.softmax(logits / temperature, dim=-1)"
GIVEN = "from fastapi import FastAPI, HTTPException, Request"


def test_reindented_copy_is_found_in_another_file() -> None:
    secret = secret_fingerprints([f"        {ANSWER}"], given=[])
    leaks = find_leaks({"notes/anything.txt": f"intro\n{ANSWER.replace(' ', '   ')}\n"}, secret)
    assert [(leak.path, leak.line_number) for leak in leaks] == [("notes/anything.txt", 2)]


def test_given_lines_and_short_lines_are_not_secret() -> None:
    short = "return x + 1"
    assert len(short) < MIN_CHARS and fingerprint(short) is None
    secret = secret_fingerprints([ANSWER, GIVEN, short], given=[GIVEN])
    assert find_leaks({"a.py": [GIVEN, short]}, secret) == []
    assert len(secret) == 1


def test_a_changed_line_is_not_a_leak() -> None:
    secret = secret_fingerprints([ANSWER], given=[])
    assert find_leaks({"a.py": ANSWER.replace("dim=-1", "dim=1")}, secret) == []


def test_notebook_cells_are_read_as_source_not_json(tmp_path: Path) -> None:
    notebook = {
        "cells": [
            {"cell_type": "code", "source": ["x = 1\n", f"    {ANSWER}\n"], "outputs": []},
            {"cell_type": "markdown", "source": "text"},
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(notebook))
    (tmp_path / "weights.onnx").write_bytes(b"\x00\x01")
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9")
    assert read_text_lines(path) == ["x = 1", f"    {ANSWER}", "text"]
    texts = tree_texts(tmp_path)
    assert list(texts) == ["nb.ipynb"]
    leaks = find_leaks(texts, secret_fingerprints([ANSWER], given=[]))
    assert [str(leak) for leak in leaks] == [f"nb.ipynb:2: {ANSWER}"]


def test_a_notebook_of_an_odd_shape_is_read_as_text(tmp_path: Path) -> None:
    """Student files are untrusted: valid JSON of another shape never raises, it is read as plain text."""
    for number, body in enumerate(
        [
            '["a list"]',
            '{"cells": null}',
            '{"cells": [{"source": 5}]}',
            '{"cells": [{"source": "x", "outputs": [{"data": []}]}]}',
        ]
    ):
        path = tmp_path / f"odd{number}.ipynb"
        path.write_text(body)
        assert read_text_lines(path) is not None, body
