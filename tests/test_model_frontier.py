"""tools/model_frontier.py: its grid points, its data subsets and its table (training is test_model's)."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertModel

from course_utils.data import load_sentiment
from course_utils.model import SentimentClassifier
from tools.model_frontier import ClsPooling, Point, _training_texts, table


def _tiny_encoder() -> BertModel:
    config = BertConfig(
        vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16
    )
    torch.manual_seed(0)
    return BertModel(config, add_pooling_layer=False)


def test_point_parses_the_documented_form_and_refuses_others() -> None:
    assert Point.parse("cls,mlp,5") == Point("cls", "mlp", 5)
    assert Point.parse("mean,linear,4,1064").label == "mean,linear,4,1064"
    for wrong in ("max,linear,4", "mean,lstm,4", "mean,linear"):
        with pytest.raises(SystemExit, match="POOLING,HEAD,EPOCHS"):
            Point.parse(wrong)


def test_points_build_the_pooling_and_head_they_name() -> None:
    ids, mask = torch.tensor([[1, 5, 7, 2, 0]]), torch.tensor([[1, 1, 1, 1, 0]])
    cls_model = Point("cls", "linear", 4).build(_tiny_encoder()).eval()
    hidden = cls_model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    assert isinstance(cls_model, ClsPooling)
    assert torch.allclose(cls_model(ids, mask), cls_model.head(hidden[:, 0]))
    mlp = Point("mean", "mlp", 4).build(_tiny_encoder())
    assert type(mlp) is SentimentClassifier and isinstance(mlp.head, torch.nn.Sequential)
    assert mlp(ids, mask).shape == (1, 2)


def test_training_texts_keep_every_templated_text_and_a_sample_of_hand_written_ones() -> None:
    train = load_sentiment("train")
    subset = _training_texts(100, seed=1)
    assert sum(e.hand_written for e in subset) == 100
    assert [e for e in subset if not e.hand_written] == [e for e in train if not e.hand_written]
    assert _training_texts(100, seed=1) == subset and _training_texts(None, seed=1) == train
    with pytest.raises(SystemExit, match="NATURAL must be"):
        _training_texts(10**6, seed=1)


def test_table_puts_the_best_validation_point_first_and_labels_the_challenge_column() -> None:
    row = {
        "pooling": "mean",
        "head": "linear",
        "epochs": 4,
        "hand_written_train": 1672,
        "val_templated_accuracy": 0.99,
        "train_cpu_s": 300.0,
        "challenge_accuracy_reported_only": 0.88,
    }
    rows = [{**row, "val_natural_accuracy": 0.85}, {**row, "pooling": "cls", "val_natural_accuracy": 0.9}]
    lines = table(rows).splitlines()
    assert "reported only, never used to choose" in lines[0]
    assert lines[2].startswith("| cls |") and "0.900" in lines[2]
