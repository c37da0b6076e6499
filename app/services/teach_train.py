"""Training a session's head in the heavy lane, answered as JSON or as server-sent events.

Training is a heavy job (app/heavy.py): it waits for a place in the heavy lane, never for
one of the pictures', and runs on the inference thread in slices of about ``SLICE_S``, so
pictures sent meanwhile (a class's live predictions) are served between them. A session
trains once at a time (409 while it does). The examples are copied when training starts,
so examples added meanwhile wait for the next training.

As events: a place in the lane is taken before the answer starts, so a full lane is still
a plain 503 or 429; then ``progress`` events (step, loss, train and held-out accuracy)
every ``report_every`` steps, and a ``result`` event with what the JSON answer holds (or an
``error`` event with a problem document, when the job stops on the way).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

import numpy as np

from app.errors import ProblemError
from app.heavy import Disconnected, HeavyJob
from app.inference import Engine
from app.services.teach import unit_json
from app.sse import admitted, event
from app.teach import Session
from models.teach.head import Head
from models.teach.train import Progress, TrainConfig, Training
from models.teach.units import class_units
from models.zoo.registry import ModelEntry

MIN_EXAMPLES = 2  # per class: the standardization needs a spread
SLICE_S = 0.02  # as the feature visualizations' slices (app/services/featvis.py)
CONFIG = TrainConfig()


@asynccontextmanager
async def one_at_a_time(session: Session) -> AsyncIterator[None]:
    if session.lock.locked():
        raise ProblemError(409, "training-in-progress", "This session is training already; wait for the result.")
    async with session.lock:
        yield


def prepared(
    session: Session, entry: ModelEntry, on_progress: Callable[[Progress], None] | None
) -> Callable[[], Training]:
    """The training to start on the inference thread, from a copy of the examples (409: too few)."""
    counts = session.counts()
    short = [name for name, n in counts.items() if n < MIN_EXAMPLES]
    if short:
        raise ProblemError(
            409, "not-enough-examples", f"Every class needs at least {MIN_EXAMPLES} examples; {len(short)} lack them."
        )
    pooled, labels = np.stack(session.features), np.array(session.labels, dtype=np.int64)
    units = pooled.shape[1]
    zeros = np.zeros(units, np.float32)
    template = Head(
        session.classes, entry.id, session.layer, zeros, zeros + 1,
        np.zeros((len(session.classes), units), np.float32), np.zeros(len(session.classes), np.float32),
    )
    return lambda: Training(pooled, labels, template, CONFIG, on_progress)


def finished(session: Session, entry: ModelEntry, training: Training) -> dict[str, Any]:
    """Give the session its new head and the units each class leans on; the result as answered."""
    outcome = training.outcome()
    head = outcome.head
    pooled, labels = training_examples(training)
    session.head = head
    session.leaning = {name: class_units(head, pooled[labels == c], c) for c, name in enumerate(head.classes)}
    counts = np.bincount(labels, minlength=len(head.classes))
    body = {
        "session": session.id,
        "model": entry.id,
        "layer": head.layer,
        "steps": outcome.steps,
        "loss": outcome.loss,
        "train_accuracy": outcome.train_accuracy,
        "heldout_accuracy": outcome.heldout_accuracy,
        "train_examples": outcome.train_examples,
        "heldout_examples": outcome.heldout_examples,
        "seconds": round(outcome.seconds, 4),
        "classes": [
            {"label": name, "examples": int(counts[c]), "units": [unit_json(entry, head.layer, u) for u in units]}
            for c, (name, units) in enumerate(session.leaning.items())
        ],
    }
    session.trained = body
    return body


def training_examples(training: Training) -> tuple[np.ndarray, np.ndarray]:
    """Every example the training saw (both parts), in raw pooled units, with its labels."""
    x = np.concatenate([training.x.numpy(), training.hx.numpy()]) * training.std + training.mean
    return x.astype(np.float32), np.concatenate([training.y.numpy(), training.hy.numpy()])


async def _run(job: HeavyJob, start: Callable[[], Training]) -> Training:
    training = await job.run(start)
    while not await job.run(lambda: training.advance(SLICE_S)):
        pass
    return training


async def train_json(
    engine: Engine, session: Session, entry: ModelEntry, client: str | None, disconnected: Disconnected
) -> dict[str, Any]:
    """Train and answer the result once done."""
    start = prepared(session, entry, None)
    async with one_at_a_time(session), engine.heavy_job(client, disconnected) as job:
        training = await _run(job, start)
        return await job.run(lambda: finished(session, entry, training))


async def train_events(
    engine: Engine, session: Session, entry: ModelEntry, client: str | None, disconnected: Disconnected
) -> AsyncIterator[str]:
    """Admit the training now (its refusals are plain problems); the events as it runs."""
    pending: list[Progress] = []
    start = prepared(session, entry, pending.append)
    places = [one_at_a_time(session), engine.heavy_job(client, disconnected)]
    return await admitted(places, lambda held: _events(held[1], start, pending,
                                                      lambda training: finished(session, entry, training)))


async def _events(
    job: HeavyJob,
    start: Callable[[], Training],
    pending: list[Progress],
    finish: Callable[[Training], dict[str, Any]],
) -> AsyncIterator[str]:
    training = await job.run(start)
    done = False
    while not done:
        done = await job.run(lambda: training.advance(SLICE_S))
        reports, pending[:] = list(pending), []
        for report in reports:
            yield event("progress", asdict(report))
    yield event("result", await job.run(lambda: finish(training)))
