"""What a finished run says about itself: the words the page shows for what the network was taught."""

from __future__ import annotations

from dataclasses import replace

from models.training.config import TrainConfig
from models.training.finish import trained_on


def test_trained_on_says_what_the_network_was_taught() -> None:
    plain = trained_on(replace(TrainConfig(), parts_task="", parts_weight=0.0))
    assert "480,000" in plain and "world seed 1" in plain and "conv" not in plain
    where = trained_on(replace(TrainConfig(), parts_task="where", parts_weight=1.0, parts_readout="linear"))
    assert where.startswith(plain) and "conv4 was trained to say where each part type is" in where
    names = trained_on(replace(TrainConfig(), parts_task="names", parts_weight=1.0, parts_layer=5))
    assert "conv5" in names and "never where" in names
    one = trained_on(replace(TrainConfig(), parts_readout="one-unit"))
    assert "one unit the training chose" in one and "one unit" not in where


def test_trained_on_names_the_assigned_units() -> None:
    text = trained_on(replace(TrainConfig(), parts_readout="assigned", parts_layer=4))
    assert "conv4 units 0-11" in text and "wheel, window, door" in text and "given to it before training" in text
