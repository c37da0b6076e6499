"""Is this picture unlike anything the tiny model was trained on? Unfamiliarity scores.

Four scores; ``OODStats.method`` says which one a statistics file holds
(models/weights/explain/README.md has the numbers and how the shipped one was chosen):

* ``exposure`` (models/ood/exposure.py): a small head trained on generated pictures against
  synthetic photo-like outliers (models/ood/outliers.py), reading the picture's own pixel
  statistics (models/ood/pixels.py) and the combined score, calibrated per predicted class;
* ``combined``, ``energy`` and ``mahalanobis`` (models/ood/scores.py): read from the forward
  pass alone, with one threshold for every class.

``models/ood/photos.py`` holds the real photos the scores are measured on (never fitted on).
"""

from models.ood.exposure import HEAD_INPUTS, committee, exposure_score, exposure_stats, head_inputs, train_head
from models.ood.judge import assess, score_batch, scores_and_logits, served_layers
from models.ood.scores import (
    COMBINED_LAYERS,
    FEATURE_LAYERS,
    GRAM_LAYERS,
    GRAM_POWERS,
    PARTS_LAYER,
    Evidence,
    auroc,
    calibrate,
    combined,
    combined_stats,
    energy,
    energy_of,
    energy_stats,
    evidence,
    features,
    fit,
    gram_deviation,
    gram_fit,
    gram_rows,
    scores,
    surprise,
)
from models.ood.stats import GramStats, HeadStats, OODStats

__all__ = [
    "COMBINED_LAYERS", "FEATURE_LAYERS", "GRAM_LAYERS", "GRAM_POWERS", "HEAD_INPUTS", "PARTS_LAYER", "Evidence",
    "GramStats", "HeadStats", "OODStats", "assess", "auroc", "calibrate", "combined", "combined_stats", "committee",
    "energy", "energy_of", "energy_stats", "evidence", "exposure_score", "exposure_stats", "features", "fit",
    "gram_deviation", "gram_fit", "gram_rows", "head_inputs", "score_batch", "scores", "scores_and_logits",
    "served_layers", "surprise", "train_head",
]
