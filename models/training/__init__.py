"""Training the embedded tiny network on the parts world: its configuration, data, part readouts and loop."""

from models.training.train import main

__all__ = ["main"]
