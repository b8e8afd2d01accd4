"""The course's own labelled sentiment data, shipped with the package and checked by sha256.

Three files live beside this module (see README.md, the data card, and tools/write_dataset.py):

- `sentiment.jsonl`: reviews with a fixed train/val/test split, used to fine-tune, calibrate and
  evaluate the course model: templated texts from ten domains ("sent-" ids) and hand-written natural
  ones from nineteen ("nat-" ids);
- `out_of_domain.jsonl`: tickets, posts, headlines and workplace feedback, used to show data drift;
- `challenge.jsonl`: independently written natural reviews tagged with phenomena (implicit sentiment,
  negation, contrast, ...). Held out: never used for training or for choosing anything, only to report.

Every load checks the file against `MANIFEST.json` first, so a notebook never trains or grades on a
silently edited or truncated file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

from course_utils.errors import DataError

__all__ = [
    "LABELS",
    "SPLITS",
    "Example",
    "challenge_sha256",
    "dataset_sha256",
    "load_challenge",
    "load_out_of_domain",
    "load_sentiment",
    "verify",
]

LABELS: tuple[str, str] = ("negative", "positive")
"""Class names; the index of a label is the class id the model predicts."""

Split = Literal["train", "val", "test", "all"]
SPLITS: Final[tuple[str, ...]] = get_args(Split)
"""Valid values of `load_sentiment(split=...)`."""

DATA_DIR: Final[Path] = Path(__file__).resolve().parent
SENTIMENT_FILE: Final[str] = "sentiment.jsonl"
OUT_OF_DOMAIN_FILE: Final[str] = "out_of_domain.jsonl"
CHALLENGE_FILE: Final[str] = "challenge.jsonl"
MANIFEST_FILE: Final[str] = "MANIFEST.json"
_FIELDS: Final[tuple[str, ...]] = ("id", "text", "label", "domain", "split")
PHENOMENA: Final[tuple[str, ...]] = (
    "implicit",
    "negation",
    "contrast",
    "multi_sentence",
    "slang",
    "non_ascii",
)
"""Tags of `Example.phenomena`: what makes a natural text hard (see the data card)."""
NATURAL_ID_PREFIX: Final[str] = "nat-"
_REGENERATE: Final[str] = (
    "Reinstall the package (pip install --force-reinstall course-utils) or regenerate the files with "
    "`python tools/write_dataset.py`"
)

# (folder, file name) -> (size, mtime_ns) of the file when its sha256 last matched the manifest.
_verified: dict[tuple[Path, str], tuple[int, int]] = {}


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled text; `split` is "train", "val", "test", "ood" or "challenge".

    `phenomena` tags hand-written texts (values from PHENOMENA); templated and out-of-domain texts have none.
    """

    id: str
    text: str
    label: str
    domain: str
    split: str
    phenomena: tuple[str, ...] = ()

    @property
    def hand_written(self) -> bool:
        """True for the hand-written reviews of sentiment.jsonl (ids "nat-"), False for templated ones."""
        return self.id.startswith(NATURAL_ID_PREFIX)

    @property
    def label_id(self) -> int:
        """The class id the model uses for this label (its index in `LABELS`)."""
        return LABELS.index(self.label)


def _folder(data_dir: Path | None) -> Path:
    """The folder to read: the packaged one unless a test or notebook points elsewhere."""
    return DATA_DIR if data_dir is None else Path(data_dir).resolve()


def _manifest(folder: Path) -> dict[str, dict[str, object]]:
    """Read MANIFEST.json, the documented sha256 and counts of each data file."""
    path = folder / MANIFEST_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(
            f"Data manifest {str(path)!r} is missing, so the data cannot be checked. {_REGENERATE}."
        ) from exc
    except (OSError, ValueError) as exc:
        raise DataError(f"Data manifest {str(path)!r} is not readable JSON ({exc}). {_REGENERATE}.") from exc
    if not isinstance(raw, dict):
        raise DataError(f"Data manifest {str(path)!r} is not a JSON object. {_REGENERATE}.")
    return raw


def _sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _expected_sha256(folder: Path, name: str) -> str:
    """The sha256 MANIFEST.json documents for `name`."""
    entry = _manifest(folder).get(name)
    sha = entry.get("sha256") if isinstance(entry, dict) else None
    if not isinstance(sha, str):
        raise DataError(
            f"Data manifest {str(folder / MANIFEST_FILE)!r} has no sha256 for {name!r}, so it cannot be "
            f"checked. {_REGENERATE}."
        )
    return sha


def _verify_file(folder: Path, name: str) -> str:
    """Check one file against the manifest (cached while its size and mtime do not change)."""
    path = folder / name
    try:
        stat = path.stat()
    except FileNotFoundError as exc:
        raise DataError(f"Data file {str(path)!r} is missing. {_REGENERATE}.") from exc
    expected = _expected_sha256(folder, name)
    key, stamp = (folder, name), (stat.st_size, stat.st_mtime_ns)
    if _verified.get(key) == stamp:
        return expected
    actual = _sha256(path)
    if actual != expected:
        raise DataError(
            f"Data file {str(path)!r} does not match MANIFEST.json: expected sha256 {expected}, got "
            f"{actual}. The file was edited, truncated or corrupted; results on it would not be comparable. "
            f"{_REGENERATE}."
        )
    _verified[key] = stamp
    return expected


def verify(*, data_dir: Path | None = None) -> None:
    """Raise DataError unless every data file (the two generated ones and any other the manifest lists)
    exists and matches its sha256 in MANIFEST.json."""
    folder = _folder(data_dir)
    for name in sorted({SENTIMENT_FILE, OUT_OF_DOMAIN_FILE} | set(_manifest(folder))):
        _verify_file(folder, name)


def dataset_sha256(*, data_dir: Path | None = None) -> str:
    """The verified sha256 of sentiment.jsonl: record it next to a model to say what it was trained on."""
    return _verify_file(_folder(data_dir), SENTIMENT_FILE)


def challenge_sha256(*, data_dir: Path | None = None) -> str:
    """The verified sha256 of challenge.jsonl: record it next to the numbers a model card reports on it."""
    return _verify_file(_folder(data_dir), CHALLENGE_FILE)


def _read(folder: Path, name: str) -> list[Example]:
    """Verify then parse a JSONL file, naming the line of any malformed record."""
    _verify_file(folder, name)
    path = folder / name
    examples: list[Example] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                values = [record[field] for field in _FIELDS]
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(
                    f"{str(path)!r} line {number} is not a record with fields {list(_FIELDS)} ({exc!r}). "
                    f"{_REGENERATE}."
                ) from exc
            phenomena = record.get("phenomena", [])
            if (
                not all(isinstance(v, str) for v in values)
                or values[2] not in LABELS
                or not isinstance(phenomena, list)
                or not set(phenomena) <= set(PHENOMENA)
            ):
                # Only the id is quoted: a line of the held-out challenge set must not leak into logs.
                raise DataError(
                    f"{str(path)!r} line {number} (id {record.get('id')!r}) has a non-string field, a label "
                    f"outside {LABELS} or phenomena outside {PHENOMENA}. {_REGENERATE}."
                )
            id_, text, label, domain, split = values
            examples.append(Example(id_, text, label, domain, split, tuple(phenomena)))
    return examples


def load_sentiment(split: Split = "all", *, data_dir: Path | None = None) -> list[Example]:
    """Examples of one split ("train", "val", "test") or all of them, in file order (already shuffled).

    The split is fixed in the file (stratified by label and domain: templated texts 70/15/15, hand-written
    ones 12/4/4 per cell), so every student and the grader evaluate on the same test set.
    """
    if split not in SPLITS:
        raise DataError(f"Unknown split {split!r}: use one of {', '.join(repr(s) for s in SPLITS)}.")
    examples = _read(_folder(data_dir), SENTIMENT_FILE)
    return examples if split == "all" else [e for e in examples if e.split == split]


def load_out_of_domain(*, data_dir: Path | None = None) -> list[Example]:
    """The out-of-domain examples (split "ood"), for measuring drift and accuracy outside the reviews."""
    return _read(_folder(data_dir), OUT_OF_DOMAIN_FILE)


def load_challenge(*, data_dir: Path | None = None) -> list[Example]:
    """The natural challenge set (split "challenge"): report on it, never train or choose anything on it.

    Every text carries `phenomena` tags, so a model card can report accuracy per phenomenon.
    """
    return _read(_folder(data_dir), CHALLENGE_FILE)
