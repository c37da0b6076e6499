"""The recipe sweep: its pictures are the trainer's, its loop uses each recipe knob, its score is the dissection's."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from models import world
from models.analysis import evaluate
from models.nets import MiniAlexNet
from models.preprocess import MEAN, STD
from models.training.config import TrainConfig
from models.training.data import parts_where, readout_alignment
from models.world import seeds
from scripts import cuda_sweep

SMALL = replace(TrainConfig(), steps=3, batch_size=4, input_size=128)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("sweep")
    cuda_sweep.generate(data, SMALL, workers=2)
    return data


def test_the_pictures_are_the_training_stream(pictures: Path) -> None:
    images = np.load(pictures / "images.npy")
    labels = np.load(pictures / "labels.npy")
    targets = np.load(pictures / "targets.npy")
    assert len(images) == SMALL.steps * SMALL.batch_size
    align, side = readout_alignment(MiniAlexNet(SMALL.net_config()), SMALL.parts_layer, SMALL.input_size)
    for i in (0, 5, len(images) - 1):
        s = world.generate(SMALL.world_seed, i, SMALL.input_size)
        assert np.array_equal(images[i], s.image.transpose(2, 0, 1))
        assert labels[i] == s.label
        expected = parts_where(s, align, side).numpy()
        assert np.allclose(targets[i], expected, atol=1e-3)  # stored as float16


def _weights(net: MiniAlexNet) -> torch.Tensor:
    return torch.cat([p.flatten() for p in net.state_dict().values()])


def test_each_recipe_knob_changes_the_run(pictures: Path) -> None:
    base = _weights(cuda_sweep.train_one(SMALL, pictures, "cpu"))
    assert torch.equal(base, _weights(cuda_sweep.train_one(SMALL, pictures, "cpu")))  # seeded
    for knob in ({"parts_weight": 0.0}, {"parts_area_power": 0.5}, {"parts_dropout": 0.5}, {"parts_readout": "linear"},
                 {"seed": 1}):
        other = _weights(cuda_sweep.train_one(replace(SMALL, **knob), pictures, "cpu"))
        assert not torch.equal(base, other), knob


def test_the_score_counts_what_evaluate_counts() -> None:
    torch.manual_seed(0)
    net = MiniAlexNet(TrainConfig().net_config()).eval()
    got = cuda_sweep.score(net, eval_images=200, dissect_images=20)
    meta = {"classes": world.CLASSES, "input_size": 128, "mean": MEAN, "std": STD}
    assert got["accuracy"] == evaluate.evaluate(net, meta, seeds.EVALUATION, 200)["accuracy"]
    assert got["parts_detected"] == sum(v >= 0.2 for v in got["part_best_iou"].values())
    assert set(got["part_best_iou"]) == set(world.PARTS)
    assert "scrambled" not in got["object_best_iou"]
