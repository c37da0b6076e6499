"""The live run: it learns, on the time it is given, and the data-budget twin differs only in its pictures."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models import world
from models.nets import MiniAlexNet
from models.training.live import LiveConfig, LiveRun, fresh_pictures, reused_pictures
from models.world import seeds

MEAN = torch.tensor([0.42, 0.418, 0.415])[:, None, None]  # the training normalization, written out
STD = torch.tensor([0.234, 0.231, 0.232])[:, None, None]


class StepClock:
    """Virtual time: ``per_step`` seconds for every step the run has taken (machine load cannot change it)."""

    def __init__(self, per_step: float) -> None:
        self.per_step = per_step
        self.run: LiveRun | None = None

    def __call__(self) -> float:
        return 0.0 if self.run is None else self.run.step * self.per_step


def timed_run(config: LiveConfig, per_step: float) -> LiveRun:
    clock = StepClock(per_step)
    run = LiveRun(config, clock=clock)
    clock.run = run
    return run


def first_filters(network: MiniAlexNet) -> torch.Tensor:
    conv = network.features[0]
    assert isinstance(conv, torch.nn.Conv2d)
    return conv.weight


def held_out_loss(network: torch.nn.Module) -> float:
    """Cross-entropy on pictures no run trains on, computed here from the raw pixels."""
    images, labels, _ = world.generate_batch(seeds.LIVE_VALIDATION, 500, 128, 128)
    x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - MEAN) / STD
    was = network.training
    network.eval()
    with torch.no_grad():
        loss = F.cross_entropy(network(x), torch.from_numpy(labels)).item()
    network.train(was)
    return loss


def test_a_ten_second_run_changes_the_first_filters_and_lowers_the_loss() -> None:
    run = timed_run(LiveConfig(seconds=10, val_images=64), per_step=0.25)
    filters = first_filters(run.learners[0].network).detach().clone()
    before = held_out_loss(run.learners[0].trainee.model)
    while not run.advance(0.0):
        pass
    assert run.step == 40  # 10 s of 0.25 s steps
    change = (first_filters(run.learners[0].network) - filters).abs().mean() / filters.abs().mean()
    assert change > 0.01
    assert held_out_loss(run.learners[0].trainee.model) < before - 0.02
    # What is shown computes what the network in training computes in evaluation mode.
    assert held_out_loss(run.learners[0].network) == pytest.approx(held_out_loss(run.learners[0].trainee.model),
                                                                    abs=1e-4)
    snapshot = run.snapshot()
    assert snapshot.done and snapshot.step == 40
    fresh = snapshot.learners["fresh"]
    assert fresh["pictures_seen"] == 40 * 32 and fresh["pool"] is None
    assert fresh["val_step"][-1] == 40 and len(fresh["val_accuracy"]) == len(fresh["val_step"])


def test_learning_rate_warms_up_then_cools_to_zero_over_the_time_given() -> None:
    run = timed_run(LiveConfig(seconds=30, warmup_steps=4, lr=0.04), per_step=1.0)
    rates = []
    while not run.done:
        rates.append(run.lr())
        run.step += 1  # the schedule only, without training
    assert rates[:4] == pytest.approx([0.01, 0.02, 0.03, 0.04])
    assert rates[15] == pytest.approx(0.04 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert rates[-1] == pytest.approx(0.04 * 0.5 * (1 + math.cos(math.pi * 29 / 30)))


def test_fresh_pictures_never_repeat_and_the_budget_reuses_its_first_pictures() -> None:
    fresh = fresh_pictures(64, 4)
    first, _ = fresh(1)
    second, _ = fresh(2)
    expected, _labels, _ = world.generate_batch(seeds.LIVE_TRAINING, 4, 4, 64)
    assert torch.equal(second, torch.from_numpy(expected).permute(0, 3, 1, 2))
    assert not torch.equal(first, second)
    pool, pool_labels, _ = world.generate_batch(seeds.LIVE_TRAINING, 0, 6, 64)
    reused = reused_pictures(64, 16, budget=6, seed=0)
    images, drawn_labels = reused(1)
    flat_pool = [p.tobytes() for p in pool.transpose(0, 3, 1, 2)]
    for image, label in zip(images.numpy(), drawn_labels.numpy(), strict=True):
        index = flat_pool.index(image.tobytes())  # every picture is one of the six
        assert pool_labels[index] == label


def test_the_budget_twin_starts_from_the_same_weights_and_reports_its_pool() -> None:
    run = timed_run(LiveConfig(seconds=5, budget=64, val_images=32), per_step=1.0)
    fresh, budget = (learner.network for learner in run.learners)
    for a, b in zip(fresh.state_dict().values(), budget.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    while not run.advance(0.0):
        pass
    snapshot = run.snapshot()
    assert set(snapshot.learners) == {"fresh", "budget"}
    assert snapshot.learners["budget"]["pool"] == 64
    assert snapshot.learners["budget"]["pictures_seen"] == snapshot.learners["fresh"]["pictures_seen"] == 5 * 32
    fresh, budget = (learner.network for learner in run.learners)
    assert not torch.equal(first_filters(fresh), first_filters(budget))  # their pictures differ


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"seconds": 2}, "5 to 180 seconds"),
    ({"seconds": 600}, "5 to 180 seconds"),
    ({"budget": 10}, "64 to 2000 pictures"),
])
def test_config_refuses_runs_outside_the_bounds(kwargs: dict[str, float], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        LiveConfig(**kwargs)  # type: ignore[arg-type]
