"""The shipped model card is generated from the measured numbers and is up to date."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models import world
from models.card import build as card
from models.zoo.tinyweights import WEIGHTS_DIR, read_meta


def test_shipped_card_is_what_the_generator_writes_today(tmp_path: Path) -> None:
    # A retrain that forgets `python -m models.card` leaves stale numbers: this fails then.
    for name in ("tiny.json", card.REPRODUCTION_FILE):
        if (WEIGHTS_DIR / name).exists():
            (tmp_path / name).write_text((WEIGHTS_DIR / name).read_text())
    (tmp_path / "explain").mkdir()
    (tmp_path / "explain" / "metrics.json").write_text((WEIGHTS_DIR / "explain" / "metrics.json").read_text())
    assert card.main(["--weights-dir", str(tmp_path)]) == 0
    assert (tmp_path / card.CARD_FILE).read_text() == (WEIGHTS_DIR / card.CARD_FILE).read_text()


def test_card_quotes_the_metadata() -> None:
    meta = read_meta(WEIGHTS_DIR)
    text = (WEIGHTS_DIR / card.CARD_FILE).read_text()
    assert f"**{100 * meta['metrics']['accuracy']:.2f} %**" in text
    assert meta["sha256"][:16] in text
    for c, row in zip(meta["classes"], meta["metrics"]["evaluation"]["confusion"], strict=True):
        assert "| " + " | ".join([c] + [str(v) for v in row]) + " |" in text
    explain = json.loads((WEIGHTS_DIR / "explain" / "metrics.json").read_text())
    shipped = explain["ood"]["method"]
    auroc = explain["ood_measurement"][shipped]["auroc_photo_crops"]
    assert f"{shipped} (shipped) | {auroc:.3f}" in text


def test_map_sizes_follow_the_architecture() -> None:
    meta = read_meta(WEIGHTS_DIR)
    sizes = card.map_sizes(meta)
    assert list(sizes) == list(card.TITLES)
    assert sizes["conv1"] >= 31  # the issue's floor for conv1 maps
    assert sizes["conv3"] == sizes["conv4"] == sizes["conv5"]


def test_runs_tried_put_the_shipped_run_beside_the_earlier_ones() -> None:
    meta = read_meta(WEIGHTS_DIR)
    t = meta["metrics"]["dissection"]["targets"]
    text = (WEIGHTS_DIR / card.CARD_FILE).read_text()
    shipped = next(line for line in text.splitlines() if line.startswith("| **shipped** |"))
    cells = [c.strip() for c in shipped.strip("|").split("|")]
    units = sum(v >= 0.2 for v in t["part_best_iou_conv2_5"].values())
    objects = sum(v >= 0.2 for v in t["object_best_iou_conv5"].values())
    combos = sum(v >= 0.2 for v in t["part_best_probe_iou_conv2_5"].values())
    m = meta["metrics"]
    assert cells[2:] == [f"{100 * m['accuracy']:.2f} %", f"{m['training_seconds'] / 60:.1f}",
                         f"{units} of 12", f"{objects} of 10", f"{combos} of 12"]
    assert f"{meta['train_config']['steps']:,} steps" in cells[1]
    assert all(f"| {run[0]} |" in text for run in card.RUNS_TRIED)


def test_the_training_recipe_says_whether_batchnorm_was_used() -> None:
    assert "folded into the convolution weights" in card.batchnorm_line({})  # older runs: always BatchNorm
    assert "folded" in card.batchnorm_line({"batchnorm": True})
    assert "No BatchNorm" in card.batchnorm_line({"batchnorm": False})


def test_the_training_recipe_says_what_the_parts_task_taught() -> None:
    base = {"parts_layer": 4, "widths": [32, 64, 96, 96, 128], "parts_weight": 1.0, "parts_l1": 0.001}
    assert card.parts_task_line({}) == card.parts_task_line({**base, "parts_weight": 0.0}) == []
    where, = card.parts_task_line({**base, "parts_task": "where"})
    assert "say where each part type is" in where and "conv4's 96 units" in where and "L1 0.001" in where
    assert "were taught, not found by the class labels alone" in where
    names, = card.parts_task_line({**base, "parts_task": "names", "drop_parts": 0.2, "parts_l1": 0.0})
    assert "never where" in names and "20 %" in names and "L1" not in names and "dropout" not in names
    dropped, = card.parts_task_line({**base, "parts_task": "where", "parts_dropout": 0.5})
    assert "dropout 0.5 on the units the readout reads (not on the class path)" in dropped
    assigned, = card.parts_task_line({**base, "parts_task": "where", "parts_readout": "assigned"})
    assert "unit k of conv4 alone is part type k's readout (units 0-11, in the order wheel, window" in assigned
    assert "the other 84 units get no pull" in assigned and "L1" not in assigned and "1x1 readout" not in assigned
    assert "were taught, not found by the class labels alone" in assigned


def test_the_recipe_summary_gives_the_parts_flags() -> None:
    assert card.parts_task_recipe({"parts_weight": 0.0}) == ""
    cfg = {"parts_task": "where", "parts_weight": 1.0, "parts_layer": 4, "parts_l1": 0.001, "parts_dropout": 0.5}
    assert card.parts_task_recipe(cfg) == ("; a second task, saying where each part type is from conv4 (`--parts-task "
                                           "where --parts-weight 1 --parts-l1 0.001 --parts-dropout 0.5`)")
    assert "--parts-l1" not in card.parts_task_recipe({**cfg, "parts_l1": 0.0, "parts_dropout": 0.0})
    one = card.parts_task_recipe({**cfg, "parts_readout": "one-unit", "parts_final_temperature": 0.05})
    assert one.endswith("--parts-dropout 0.5 --parts-readout one-unit --parts-final-temperature 0.05`)")
    assert "--parts-l1" not in one  # the L1 weighs a linear readout only
    assigned = card.parts_task_recipe({**cfg, "parts_readout": "assigned", "parts_dropout": 0.0})
    assert assigned.endswith("(`--parts-task where --parts-weight 1 --parts-readout assigned`)")


def test_rank_correlation_on_hand_made_orders() -> None:
    assert card.rank_correlation([0.1, 0.5, 0.3], [1.0, 3.0, 2.0]) == 1.0
    assert card.rank_correlation([0.1, 0.5, 0.3], [3.0, 1.0, 2.0]) == -1.0
    # ranks (0, 1, 2, 3) against (1, 0, 3, 2): rho = 1 - 6 * 4 / (4 * 15) = 0.6
    assert abs(card.rank_correlation([1, 2, 3, 4], [2, 1, 4, 3]) - 0.6) < 1e-9


def test_reliance_table_lists_every_part_with_its_best_unit() -> None:
    meta = read_meta(WEIGHTS_DIR)
    r = meta["metrics"]["reliance"]
    best = meta["metrics"]["dissection"]["targets"]["part_best_iou_conv2_5"]
    text = (WEIGHTS_DIR / card.CARD_FILE).read_text()
    section = text.split("### What the classifier needs", 1)[1].split("###", 1)[0]
    for part, x in r["parts"].items():
        row = (f"| {part} | {x['images']} | {card.pct(x['class_changed'])} | {x['probability_drop']:.3f} | "
               f"{best[part]:.2f} | {'yes' if best[part] >= 0.2 else 'no'} |")
        assert row in section, row


def _cells(ious: dict[str, dict[str, float]]) -> dict[str, dict[str, dict[str, object]]]:
    return {p: {c: {"iou": v, "layer": "conv5", "unit": k} for k, (c, v) in enumerate(per.items())}
            for p, per in ious.items()}


def test_within_class_counts_only_cells_above_the_untrained_twin() -> None:
    trained = _cells({"door": {"car": 0.32, "house": 0.21}, "leaf": {"tree": 0.41, "flower": 0.15},
                      "mouth": {"face": 0.08, "cat": 0.05}})
    twin = _cells({"door": {"car": 0.08, "house": 0.22}, "leaf": {"tree": 0.24, "flower": 0.05},
                   "mouth": {"face": 0.03, "cat": 0.04}})
    # house's door reaches 0.20 but so does the twin's: chance, not training.
    assert card.within_class_reach(trained, twin) == {"door": ["car"], "leaf": ["tree"], "mouth": []}
    assert card.and_list(["a"]) == "a" and card.and_list(["a", "b", "c"]) == "a, b and c"


def test_which_units_tells_one_unit_from_one_per_class() -> None:
    one = {"face": {"iou": 0.3, "layer": "conv2", "unit": 56}, "cat": {"iou": 0.3, "layer": "conv2", "unit": 56}}
    assert card.which_units(one).startswith("the same unit in every class (conv2 #56)")
    several = {**one, "fish": {"iou": 0.3, "layer": "conv3", "unit": 91}}
    assert card.which_units(several) == "no one unit for all (conv2 #56 in face and cat, conv3 #91 in fish)"


def test_within_class_table_quotes_the_dissection() -> None:
    d = read_meta(WEIGHTS_DIR)["metrics"]["dissection"]
    tr, un = d["within_class"]["trained"], d["within_class"]["untrained"]
    assert set(tr) == set(world.PARTS)
    text = (WEIGHTS_DIR / card.CARD_FILE).read_text()
    section = text.split("### Within one class", 1)[1].split("###", 1)[0]
    for part, per in tr.items():
        assert set(per) == {c for c, ps in world.CLASS_PARTS.items() if part in ps}
        cells = ", ".join(f"{c} {x['iou']:.2f} \\| {un[part][c]['iou']:.2f}" for c, x in per.items())
        assert f"| {part} | {d['targets']['part_best_iou_conv2_5'][part]:.2f} | {cells} |" in section


def test_reliance_reading_for_a_model_taught_where_the_parts_are() -> None:
    r = {"parts": {"eye": {"class_changed": 0.5}, "mouth": {"class_changed": 0.01}, "ear": {"class_changed": 0.2}}}
    meta = {"metrics": {"dissection": {"targets": {"part_best_iou_conv2_5": {"eye": 0.3, "mouth": 0.25, "ear": 0.1}}}}}
    text = card.reliance_taught(meta, r, 0.12)
    assert f"rank correlation {card.CLASS_LABELS_ALONE_RHO:.2f}" in text and "(0.12)" in text
    # The least needed part that has a unit, its class-change rate and its unit, from the numbers given.
    assert "the mouth, whose absence changes the class 1.0 % of the time, has a unit at 0.25" in text
    meta["metrics"]["dissection"]["targets"]["part_best_iou_conv2_5"]["mouth"] = 0.18
    assert "the eye, whose absence changes the class 50.0 % of the time, has a unit at 0.30" in card.reliance_taught(
        meta, r, 0.12)
    meta["metrics"]["dissection"]["targets"]["part_best_iou_conv2_5"]["eye"] = 0.1
    assert card.reliance_taught(meta, r, 0.12).endswith("what the answers use (0.12). ")  # no part has a unit


def test_the_assigned_reading_says_which_best_units_are_the_taught_ones() -> None:
    parts = {p: 0.3 for p in world.PARTS} | {"mouth": 0.21}
    units = {p: f"conv4 #{k}" for k, p in enumerate(world.PARTS)} | {"fin": "conv5 #40"}
    cfg: dict[str, Any] = {"parts_task": "where", "parts_weight": 1.0, "parts_layer": 4, "parts_readout": "assigned"}
    meta: dict[str, Any] = {
        "train_config": cfg,
        "net": {"widths": [32, 64, 96, 96, 128]},
        "metrics": {"accuracy": 0.9835, "dissection": {"targets": {
            "part_best_iou_conv2_5": parts, "part_best_unit_conv2_5": units,
            "object_best_iou_conv5": {"car": 0.37, "bicycle": 0.209}}}},
    }
    text = card.assigned_reading(meta)
    assert "12 of 12 part types have a single unit at 0.20 or above (lowest: mouth 0.21)" in text
    assert "2 of 2 object classes keep a conv5 unit (lowest: bicycle 0.21), at 98.35 %" in text
    assert "For 11 of 12 part types the best unit in conv2-conv5 is the one it was given (not for fin" in text
    assert "the other 84 units of conv4" in text
    assert card.assigned_reading({**meta, "train_config": {**cfg, "parts_readout": "linear"}}) == ""
