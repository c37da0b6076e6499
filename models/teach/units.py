"""Which units a taught class leans on: each unit's exact share of the class's logit.

For the linear head on standardized pooled features (models/teach/head.py) the logit of
class ``c`` is ``sum_k w[c, k] * (a_k - mean_k) / std_k + b[c]``: one term per unit ``k`` of
the base layer, ``a_k`` that unit's map averaged over its positions. That term is what this
module reports as the unit's ``weight`` in the class: weight times (standardized)
activation, positive where the unit pushes the picture towards the class. For one picture
the units are ranked by their terms for the winning class; for a class as a whole, by the
mean of their terms over that class's own examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.teach.head import Head

TOP = 5


@dataclass(frozen=True)
class Leaning:
    unit: int  # channel of the head's base layer
    weight: float  # its term in the class's logit
    activation: float  # its pooled activation (the mean over examples, for a class)


def contributions(head: Head, pooled: np.ndarray, class_index: int) -> np.ndarray:
    """Every unit's term in class ``class_index``'s logit, for pooled features [units]."""
    return (head.weight[class_index] * head.standardized(pooled)).astype(np.float32)


def ranked(terms: np.ndarray, activations: np.ndarray, top: int) -> list[Leaning]:
    """The ``top`` largest positive terms, largest first (ties: the lower unit first)."""
    order = np.argsort(-terms, kind="stable")[:top]
    return [Leaning(int(k), float(terms[k]), float(activations[k])) for k in order if terms[k] > 0]


def leaning_units(head: Head, pooled: np.ndarray, class_index: int, top: int = TOP) -> list[Leaning]:
    """The units that weigh most in class ``class_index`` for one picture's features [units]."""
    return ranked(contributions(head, pooled, class_index), pooled, top)


def class_units(head: Head, examples: np.ndarray, class_index: int, top: int = TOP) -> list[Leaning]:
    """The units class ``class_index`` leans on over its own examples' features [N, units]."""
    if len(examples) == 0:
        return []
    terms = (head.weight[class_index] * head.standardized(examples)).mean(axis=0)
    return ranked(terms, examples.mean(axis=0), top)
