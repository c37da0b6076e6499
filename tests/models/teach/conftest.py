"""The served tiny entry, loaded once for the teaching tests."""

from __future__ import annotations

import pytest
import torch

from models.zoo.registry import ModelEntry, tiny_entry


@pytest.fixture(scope="session")
def tiny() -> ModelEntry:
    torch.set_num_threads(1)
    return tiny_entry()
