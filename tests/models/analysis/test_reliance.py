"""Part reliance: the shipped model's answers with one part type left undrawn."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from models import world
from models.analysis import reliance
from models.zoo.tinyweights import load_tiny

SEED, IMAGES = 5150, 44


def test_matches_one_picture_at_a_time() -> None:
    # The independent computation: each picture through the plain network on its own,
    # normalized here, counted here.
    model, meta = load_tiny()
    report = reliance.reliance(model, meta, SEED, IMAGES)
    size = meta["input_size"]
    mean, std = torch.tensor(meta["mean"]).view(3, 1, 1), torch.tensor(meta["std"]).view(3, 1, 1)

    def prob(image: np.ndarray) -> torch.Tensor:
        x = (torch.from_numpy(image).permute(2, 0, 1).float() / 255 - mean) / std
        with torch.no_grad():
            return torch.softmax(model(x[None]), 1)[0]

    whole = [world.generate(SEED, i, size) for i in range(IMAGES)]
    correct = [i for i, s in enumerate(whole) if s.class_name != "scrambled" and int(prob(s.image).argmax()) == s.label]
    assert report["correct_real_objects"] == len(correct) >= 30
    tested = 0
    for part in world.PARTS:
        shown = [i for i in correct if whole[i].part_masks[part].sum() >= world.VISIBLE_PIXELS]
        changed, drops = [], []
        for i in shown:
            before = prob(whole[i].image)
            after = prob(world.generate(SEED, i, size, omit=part).image)
            changed.append(int(after.argmax()) != whole[i].label)
            drops.append(float(before[whole[i].label] - after[whole[i].label]))
        got = report["parts"][part]
        assert got["images"] == len(shown), part
        if shown:
            tested += 1
            assert got["class_changed"] == pytest.approx(np.mean(changed), abs=1e-4), part
            assert got["probability_drop"] == pytest.approx(np.mean(drops), abs=2e-4), part
    assert tested == len(world.PARTS)


class Constant(nn.Module):
    """Ignores the picture: always the same class."""

    def __init__(self, label: int) -> None:
        super().__init__()
        self.label = label

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(len(x), len(world.CLASSES))
        logits[:, self.label] = 5.0
        return logits


def test_a_model_that_ignores_the_picture_relies_on_no_part() -> None:
    face = world.CLASSES.index("face")
    _, meta = load_tiny()
    report = reliance.reliance(Constant(face), meta, SEED, IMAGES)
    faces = [world.generate(SEED, i, meta["input_size"]) for i in range(face, IMAGES, len(world.CLASSES))]
    assert report["correct_real_objects"] == len(faces)
    for part, r in report["parts"].items():
        assert r["images"] == sum(int(s.part_masks[part].sum()) >= world.VISIBLE_PIXELS for s in faces), part
        assert r["class_changed"] == 0.0 and r["probability_drop"] == 0.0
    assert report["parts"]["eye"]["images"] > 0 and report["parts"]["wheel"]["images"] == 0


def test_main_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert reliance.main(["--seed", "77", "--images", "22", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 22 and set(out["parts"]) == set(world.PARTS)
