"""Every world seed the project draws parts-world pictures from, each named by what its pictures are for.

Image ``i`` of world seed ``s`` is ``world.generate(s, i, size)``, so two jobs that share a
seed share pictures. Each purpose has a seed of its own, and a measurement is never made on
pictures the network learnt from or was tuned on; tests/models/world/test_seeds.py checks
that no two purposes share a seed except the deliberate sharing named in ``SHARED``, and that
every call of the generator in the code base takes its seed from here.
"""

from __future__ import annotations

# Learning: the training stream and the validation pictures a run reports as it goes.
TRAINING = 1
VALIDATION = 7
# The normalization's mean and std (models/preprocess.py) were measured once on 2,000
# pictures of this seed at 192 px; they are fixed numbers since, so nothing draws it again.
NORMALIZATION = 99

# Measuring the shipped network (``layerscope evaluate|dissect|reliance``).
EVALUATION = 2026
DISSECTION = 3031
# Reliance takes parts away from the dissection's own pictures, so "which parts have a unit"
# and "which parts the answer needs" are measured on the same pictures.
RELIANCE = DISSECTION
# The concept probes are fitted on these and scored on the dissection's pictures.
PROBES = 4049

# The shipped explanation assets (scripts/precompute_explain.py).
PATCHES = 23  # top patches of every unit; also the "best of 100 pictures" feature-vis baseline
OOD_FIT = 31  # the unfamiliar-input statistics are fitted on these
OOD_CALIBRATION = 37  # the expected deviations are measured on these
OOD_THRESHOLD = 39  # the threshold is set on pictures the fit never saw
OOD_TEST = 41  # the familiar side of the unfamiliar-input AUROC and flagged shares
# The exposure score's head (models/ood/exposure.py) learns generated pictures of OOD_HEAD
# against synthetic outliers of OOD_OUTLIERS (models/ood/outliers.py draws its photo-lit
# scenes from that world seed too); OOD_OUTLIERS_TEST's outliers are only ever measured.
OOD_HEAD = 47
OOD_OUTLIERS = 53
OOD_OUTLIERS_TEST = 59
GRADCAM = 43  # Grad-CAM's inside/outside ratio and timing
# Teaching a head (models/teach/): the examples a class shows it, and the fresh pictures its
# accuracy is measured on (the tests and bench/teach.py).
TEACH = 61
TEACH_TEST = 67
# A live run in front of a class (models/training/live.py): its training stream (the
# data-budget twin reuses the first pictures of it) and the held-out pictures both are scored on.
LIVE_TRAINING = 71
LIVE_VALIDATION = 73

# The page's gallery (scripts/make_samples.py) shows pictures of the evaluation's world: the
# model is seen at work on the kind of picture its accuracy is measured on.
GALLERY = EVALUATION
# How fast the generator draws (world.images_per_second); the pictures themselves are not kept.
TIMING = 0

# Purposes that share another purpose's seed on purpose: alias -> the purpose whose pictures it uses.
SHARED: dict[str, str] = {"RELIANCE": "DISSECTION", "GALLERY": "EVALUATION"}


def by_purpose() -> dict[str, int]:
    """Purpose -> world seed, for every purpose this module names."""
    return {name: value for name, value in globals().items()
            if name.isupper() and isinstance(value, int) and not isinstance(value, bool)}
