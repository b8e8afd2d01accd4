"""Tests for course_utils.data: the shipped dataset's shape, integrity, and the loader's errors."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import course_utils.data as data
from course_utils.data import (
    LABELS,
    PHENOMENA,
    Example,
    challenge_sha256,
    dataset_sha256,
    load_challenge,
    load_out_of_domain,
    load_sentiment,
    verify,
)
from course_utils.errors import DataError

ROOT = Path(__file__).resolve().parent.parent
DATA_FILES = ("sentiment.jsonl", "out_of_domain.jsonl", "challenge.jsonl", "MANIFEST.json")
NEGATION = re.compile(r"\b(not|never|no|nothing|n't|didn't|wasn't|weren't|can't|couldn't)\b", re.IGNORECASE)
WORD = re.compile(r"[^\W_]+")


@pytest.fixture(scope="module")
def everything() -> list[Example]:
    return load_sentiment("all")


@pytest.fixture
def copy_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped data files that a test may damage."""
    for name in DATA_FILES:
        shutil.copy(data.DATA_DIR / name, tmp_path / name)
    return tmp_path


def _natural(rows: list[Example]) -> list[Example]:
    return [e for e in rows if e.id.startswith("nat-")]


def _templated(rows: list[Example]) -> list[Example]:
    return [e for e in rows if e.id.startswith("sent-")]


def test_sizes(everything: list[Example]) -> None:
    assert len(everything) >= 1500, "the main set needs at least 1,500 texts"
    assert len(_natural(everything)) >= 2000, "the hand-written portion needs at least 2,000 texts"
    assert len(_natural(everything)) + len(_templated(everything)) == len(everything)
    assert len(load_out_of_domain()) >= 300, "the out-of-domain set needs at least 300 texts"
    sizes = {s: len(load_sentiment(s)) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == len(everything)
    assert sizes["train"] / len(everything) == pytest.approx(0.72, abs=0.02), sizes
    assert sizes["test"] / len(everything) == pytest.approx(0.14, abs=0.02), sizes


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_each_split_is_exactly_balanced(split: str) -> None:
    counts = Counter(e.label for e in load_sentiment(split))  # type: ignore[arg-type]
    assert counts["positive"] == counts["negative"] > 0, f"{split} is not 50/50: {counts}"


def test_out_of_domain_is_balanced_and_labelled() -> None:
    ood = load_out_of_domain()
    assert {e.split for e in ood} == {"ood"}
    assert Counter(e.label for e in ood)["positive"] == len(ood) // 2
    assert len({e.domain for e in ood}) >= 3
    assert not {e.domain for e in ood} & {e.domain for e in load_sentiment()}, "OOD domains must be new"


@pytest.mark.parametrize("portion", [_templated, _natural], ids=["templated", "natural"])
def test_each_portion_is_stratified_by_domain_and_label(everything: list[Example], portion: object) -> None:
    rows = portion(everything)  # type: ignore[operator]
    domains = Counter(e.domain for e in rows)
    assert len(domains) >= 8, domains
    for split in ("train", "val", "test"):
        cells = Counter((e.domain, e.label) for e in rows if e.split == split)
        assert len(cells) == 2 * len(domains), f"{split} lacks some (domain, label) cells: {cells}"
        assert len(set(cells.values())) == 1, f"{split} is not stratified by domain and label: {cells}"


def test_the_natural_portion_covers_every_phenomenon_in_every_split(everything: list[Example]) -> None:
    natural = _natural(everything)
    assert all(not e.phenomena for e in _templated(everything))
    for split in ("train", "val", "test"):
        tags = Counter(tag for e in natural if e.split == split for tag in e.phenomena)
        thin = {tag: tags[tag] for tag in PHENOMENA if tags[tag] < (40 if split == "train" else 10)}
        assert not thin, f"too few natural {split} texts tagged {thin}"
    assert len({e.domain for e in natural}) >= 12


def _normalised(text: str) -> str:
    return " ".join(WORD.findall(text.lower()))


def _near_duplicates(held_out: list[Example], seen: list[Example], threshold: float) -> list[str]:
    """(held-out id, seen id) pairs whose token sets overlap with Jaccard >= threshold, found by an index."""
    tokens = {e.id: set(_normalised(e.text).split()) for e in seen}
    index: dict[str, set[str]] = {}
    for example_id, words in tokens.items():
        for word in words:
            index.setdefault(word, set()).add(example_id)
    pairs = []
    for example in held_out:
        words = set(_normalised(example.text).split())
        candidates = set().union(*(index.get(w, set()) for w in words)) if words else set()
        for other in sorted(candidates):
            union = words | tokens[other]
            if len(words & tokens[other]) / len(union) >= threshold:
                pairs.append(f"{example.id} ~ {other}")
    return pairs


def test_no_challenge_text_is_in_or_close_to_the_training_data(everything: list[Example]) -> None:
    # Only ids are reported: the challenge texts stay unseen, even in a failing test's output.
    challenge = load_challenge()
    seen = {_normalised(e.text): e.id for e in everything}
    exact = [f"{e.id} = {seen[_normalised(e.text)]}" for e in challenge if _normalised(e.text) in seen]
    assert not exact, f"challenge texts equal to train/val/test texts: {exact}"
    near = _near_duplicates(challenge, everything, threshold=0.8)
    assert not near, f"challenge texts nearly equal (token Jaccard >= 0.8) to train/val/test texts: {near}"


def test_near_duplicate_search_finds_a_reworded_copy() -> None:
    seen = [Example("nat-1", "The parcel came two days early, well packed.", "positive", "x", "train")]
    close = [
        Example("chal-1", "the parcel came two days early -- well packed!", "positive", "x", "challenge")
    ]
    far = [Example("chal-2", "The parcel never came at all.", "negative", "x", "challenge")]
    assert _near_duplicates(close, seen, 0.8) == ["chal-1 ~ nat-1"]
    assert _near_duplicates(far, seen, 0.8) == []


def test_challenge_set_is_balanced_broad_and_tagged() -> None:
    challenge = load_challenge()
    assert len(challenge) >= 400
    assert {e.split for e in challenge} == {"challenge"}
    assert all(re.fullmatch(r"chal-\d{4}", e.id) for e in challenge)
    assert Counter(e.label for e in challenge)["positive"] == len(challenge) // 2
    assert len({e.domain for e in challenge}) >= 12
    tags = Counter(tag for e in challenge for tag in e.phenomena)
    assert set(tags) == set(PHENOMENA), tags
    assert len({e.id for e in challenge}) == len(challenge)


def test_no_duplicate_texts_or_ids(everything: list[Example]) -> None:
    rows = everything + load_out_of_domain()
    texts = Counter(e.text.lower() for e in rows)
    assert [t for t, n in texts.items() if n > 1] == []
    assert len({e.id for e in rows}) == len(rows)


def test_no_text_in_two_splits(everything: list[Example]) -> None:
    by_split = {s: {e.text.lower() for e in everything if e.split == s} for s in ("train", "val", "test")}
    assert not by_split["train"] & by_split["val"]
    assert not by_split["train"] & by_split["test"]
    assert not by_split["val"] & by_split["test"]


def test_lengths_vary(everything: list[Example]) -> None:
    words = [len(e.text.split()) for e in everything]
    assert min(words) <= 4, "need some very short texts"
    assert max(words) >= 30, "need some long texts"


def test_negations_and_shared_keywords_in_both_classes(everything: list[Example]) -> None:
    for label in LABELS:
        negated = [e for e in everything if e.label == label and NEGATION.search(e.text)]
        assert len(negated) >= 0.1 * len(everything) / 2, f"too few negations among {label} texts"
    for word in ("good", "bad", "worth", "never"):
        pattern = re.compile(rf"\b{word}\b", re.IGNORECASE)
        labels = {e.label for e in everything if pattern.search(e.text)}
        assert labels == set(LABELS), f"{word!r} must occur in both classes, found only in {labels}"
    assert any(e.label == "positive" and "not bad at all" in e.text.lower() for e in everything)
    assert any(e.label == "negative" and "not worth it" in e.text.lower() for e in everything)


def test_example_fields_and_label_id(everything: list[Example]) -> None:
    first = everything[0]
    assert all(re.fullmatch(r"(sent|nat)-\d{5}", e.id) for e in everything)
    assert LABELS[first.label_id] == first.label
    assert {e.label_id for e in everything} == {0, 1}
    with pytest.raises(AttributeError):
        first.text = "changed"  # type: ignore[misc]


def test_sha256_matches_manifest_and_data_card() -> None:
    manifest = json.loads((data.DATA_DIR / "MANIFEST.json").read_text(encoding="utf-8"))
    card = (data.DATA_DIR / "README.md").read_text(encoding="utf-8")
    for name in ("sentiment.jsonl", "out_of_domain.jsonl", "challenge.jsonl"):
        raw = (data.DATA_DIR / name).read_bytes()
        assert hashlib.sha256(raw).hexdigest() == manifest[name]["sha256"]
        assert manifest[name]["rows"] == raw.count(b"\n")
        assert manifest[name]["sha256"] in card, f"README.md must document the sha256 of {name}"
    assert dataset_sha256() == manifest["sentiment.jsonl"]["sha256"]
    assert challenge_sha256() == manifest["challenge.jsonl"]["sha256"]
    verify()


def test_bad_split_name_is_quoted_with_valid_ones() -> None:
    with pytest.raises(DataError, match=r"'training'.*'train', 'val', 'test', 'all'"):
        load_sentiment("training")  # type: ignore[arg-type]


def test_corrupted_file_is_refused(copy_dir: Path) -> None:
    assert len(load_sentiment("test", data_dir=copy_dir)) > 0
    path = copy_dir / "sentiment.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"positive"', b'"negative"', 1))
    with pytest.raises(DataError, match=r"sentiment\.jsonl.*expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}"):
        load_sentiment("test", data_dir=copy_dir)
    with pytest.raises(DataError, match=r"write_dataset\.py"):
        dataset_sha256(data_dir=copy_dir)


def test_missing_files_are_named(copy_dir: Path) -> None:
    (copy_dir / "out_of_domain.jsonl").unlink()
    with pytest.raises(DataError, match=r"out_of_domain\.jsonl.*missing"):
        load_out_of_domain(data_dir=copy_dir)
    with pytest.raises(DataError, match=r"out_of_domain\.jsonl"):
        verify(data_dir=copy_dir)
    (copy_dir / "MANIFEST.json").unlink()
    with pytest.raises(DataError, match=r"MANIFEST\.json.*missing"):
        load_sentiment(data_dir=copy_dir)


def test_an_edited_challenge_file_is_refused(copy_dir: Path) -> None:
    path = copy_dir / "challenge.jsonl"
    path.write_bytes(path.read_bytes() + b"\n")
    with pytest.raises(DataError, match=r"challenge\.jsonl.*does not match MANIFEST"):
        load_challenge(data_dir=copy_dir)
    with pytest.raises(DataError, match=r"challenge\.jsonl"):
        verify(data_dir=copy_dir)


def test_unknown_phenomenon_names_the_id_not_the_text(tmp_path: Path) -> None:
    line = {"id": "x-1", "text": "secret words", "label": "positive", "domain": "d", "split": "challenge"}
    raw = json.dumps({**line, "phenomena": ["sarcasm"]}).encode() + b"\n"
    (tmp_path / "challenge.jsonl").write_bytes(raw)
    manifest = {"challenge.jsonl": {"sha256": hashlib.sha256(raw).hexdigest()}}
    (tmp_path / "MANIFEST.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(DataError, match=r"line 1 \(id 'x-1'\).*phenomena") as caught:
        load_challenge(data_dir=tmp_path)
    assert "secret" not in str(caught.value)


def test_malformed_line_is_reported_with_its_number(copy_dir: Path) -> None:
    path = copy_dir / "sentiment.jsonl"
    path.write_bytes(path.read_bytes() + b"{not json\n")
    manifest_path = copy_dir / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["sentiment.jsonl"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(DataError, match=r"line \d+ is not a record"):
        load_sentiment(data_dir=copy_dir)


def test_generator_is_deterministic(tmp_path: Path) -> None:
    # The challenge set is hand-made: the generator only hashes it into the manifest, never rewrites it.
    shutil.copy(data.DATA_DIR / "challenge.jsonl", tmp_path / "challenge.jsonl")
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "write_dataset.py"), "--out-dir", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    for name in DATA_FILES:
        assert (tmp_path / name).read_bytes() == (data.DATA_DIR / name).read_bytes(), (
            f"{name} differs from a fresh run of tools/write_dataset.py: re-run it and commit the output"
        )
