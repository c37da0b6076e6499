"""Teaching sessions, in memory only: who taught what, as features, never as pictures.

A session holds its base model's id, its class names, each example's pooled features (a
few hundred floats; models/teach/features.py) and, once trained, its head. Ids are
``secrets.token_urlsafe`` (192 random bits): a session is reached only by whoever created
it, so sessions are isolated from one another without accounts. A session nobody touched
for ``idle_s`` is forgotten; there are at most ``max_sessions`` of them and
``max_examples`` examples in each, so memory stays bounded (64 x 300 x 256 float32 features
of AlexNet: 20 MiB), and each limit is refused with a clear 4xx problem.

Every change to a session happens on the event loop between two awaits, so examples need no
lock; the session's ``lock`` serializes what spans awaits: one training at a time.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.errors import ProblemError
from app.settings import Settings
from models.teach.head import Head
from models.teach.names import BadNames, check_names
from models.teach.units import Leaning

ID_BYTES = 24
Clock = Callable[[], float]


@dataclass
class Session:
    id: str
    model: str
    layer: str  # the base layer whose pooled units are the features
    classes: tuple[str, ...]
    used: float  # the clock's reading when it was last touched
    features: list[np.ndarray] = field(default_factory=list)  # one float32 [units] per example
    labels: list[int] = field(default_factory=list)
    head: Head | None = None
    trained: dict[str, Any] | None = None  # the last training's result, as answered
    leaning: dict[str, list[Leaning]] = field(default_factory=dict)  # class -> units, after training
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def counts(self) -> dict[str, int]:
        tally = np.bincount(np.array(self.labels, dtype=np.int64), minlength=len(self.classes))
        return {name: int(n) for name, n in zip(self.classes, tally, strict=True)}

    def label_index(self, label: str) -> int:
        """The class ``label`` names (trimmed, ignoring case), or 422."""
        wanted = label.strip().casefold()
        for index, name in enumerate(self.classes):
            if name.casefold() == wanted:
                return index
        raise ProblemError(422, "unknown-label", "This session has no class by that name; see its classes.")


class TeachStore:
    """Every live session, by id."""

    def __init__(self, max_sessions: int, max_examples: int, idle_s: float, clock: Clock = time.monotonic) -> None:
        self.max_sessions, self.max_examples, self.idle_s, self.clock = max_sessions, max_examples, idle_s, clock
        self.sessions: dict[str, Session] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> TeachStore:
        return cls(settings.teach_sessions, settings.teach_examples, settings.teach_idle_s)

    def sweep(self) -> None:
        """Forget every session idle for ``idle_s`` (one training still holds its own)."""
        now = self.clock()
        for key in [k for k, s in self.sessions.items() if now - s.used >= self.idle_s and not s.lock.locked()]:
            del self.sessions[key]

    def create(self, model: str, layer: str, classes: list[object], head: Head | None = None) -> Session:
        """A new session (422 for bad names, 429 when every place is taken)."""
        try:
            names = tuple(check_names(classes))
        except BadNames as exc:
            raise ProblemError(422, "bad-classes", str(exc)) from None
        self.sweep()
        if len(self.sessions) >= self.max_sessions:
            detail = f"All {self.max_sessions} teaching sessions are in use; try again when one has expired."
            raise ProblemError(429, "too-many-sessions", detail, {"Retry-After": "60"})
        session = Session(secrets.token_urlsafe(ID_BYTES), model, layer, names, self.clock(), head=head)
        self.sessions[session.id] = session
        return session

    def get(self, session_id: str) -> Session:
        """The live session ``session_id``, touched (404 when unknown or expired)."""
        self.sweep()
        session = self.sessions.get(session_id)
        if session is None:
            raise ProblemError(404, "unknown-session", "There is no such teaching session (or it has expired).")
        session.used = self.clock()
        return session

    def delete(self, session_id: str) -> None:
        self.get(session_id)
        del self.sessions[session_id]

    def room_for_example(self, session: Session) -> None:
        if len(session.labels) >= self.max_examples:
            raise ProblemError(
                409, "too-many-examples", f"A session holds at most {self.max_examples} examples; it is full."
            )

    def add_example(self, session: Session, label: int, pooled: np.ndarray) -> dict[str, int]:
        """Keep one example's features under class ``label``; the new counts (409 when full)."""
        self.room_for_example(session)
        session.features.append(np.ascontiguousarray(pooled, dtype=np.float32))
        session.labels.append(label)
        return session.counts()
