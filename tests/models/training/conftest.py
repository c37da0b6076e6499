"""What the training tests share: a recipe small enough to train in a second."""

from __future__ import annotations

from models.training.config import TrainConfig

# conv4 keeps 12 units: the shipped recipe gives each of the 12 part types one of them.
TINY = TrainConfig(input_size=64, steps=6, batch_size=22, widths=(8, 8, 8, 12, 8), conv1_kernel=5,
                   conv1_stride=2, hidden=16, workers=0, threads=1, val_images=22, val_every=3)
