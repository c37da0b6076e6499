"""The shipped model card is generated from the measured numbers and is up to date."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from models import world
from models.card import build, measures, recipe, runs
from models.card.text import CARD_TEMPLATE, SNIPPETS, TEMPLATES, and_list, pct, unwrap
from models.zoo.tinyweights import WEIGHTS_DIR, read_meta, taught_parts


def test_shipped_card_is_what_the_generator_writes_today(tmp_path: Path) -> None:
    # A retrain that forgets `python -m models.card` leaves stale numbers: this fails then.
    for name in ("tiny.json", build.REPRODUCTION_FILE):
        if (WEIGHTS_DIR / name).exists():
            (tmp_path / name).write_text((WEIGHTS_DIR / name).read_text())
    (tmp_path / "explain").mkdir()
    (tmp_path / "explain" / "metrics.json").write_text((WEIGHTS_DIR / "explain" / "metrics.json").read_text())
    assert build.main(["--weights-dir", str(tmp_path)]) == 0
    assert (tmp_path / build.CARD_FILE).read_text() == (WEIGHTS_DIR / build.CARD_FILE).read_text()


def test_card_quotes_the_metadata() -> None:
    meta = read_meta(WEIGHTS_DIR)
    text = (WEIGHTS_DIR / build.CARD_FILE).read_text()
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
    sizes = build.map_sizes(meta)
    assert list(sizes) == list(build.TITLES)
    assert sizes["conv1"] >= 31  # the issue's floor for conv1 maps
    assert sizes["conv3"] == sizes["conv4"] == sizes["conv5"]


def test_runs_tried_put_the_shipped_run_beside_the_earlier_ones() -> None:
    meta = read_meta(WEIGHTS_DIR)
    t = meta["metrics"]["dissection"]["targets"]
    text = (WEIGHTS_DIR / build.CARD_FILE).read_text()
    shipped = next(line for line in text.splitlines() if line.startswith("| **shipped** |"))
    cells = [c.strip() for c in shipped.strip("|").split("|")]
    units = sum(v >= 0.2 for v in t["part_best_iou_conv2_5"].values())
    objects = sum(v >= 0.2 for v in t["object_best_iou_conv5"].values())
    combos = sum(v >= 0.2 for v in t["part_best_probe_iou_conv2_5"].values())
    m = meta["metrics"]
    assert cells[2:] == [f"{100 * m['accuracy']:.2f} %", f"{m['training_seconds'] / 60:.1f}",
                         f"{units} of 12", f"{objects} of 10", f"{combos} of 12"]
    assert f"{meta['train_config']['steps']:,} steps" in cells[1]
    assert all(f"| {run[0]} |" in text for run in runs.RUNS_TRIED)


def test_the_training_recipe_says_whether_batchnorm_was_used() -> None:
    assert "folded into the convolution weights" in recipe.batchnorm_line({})  # older runs: always BatchNorm
    assert "folded" in recipe.batchnorm_line({"batchnorm": True})
    assert "No BatchNorm" in recipe.batchnorm_line({"batchnorm": False})


def test_the_training_recipe_says_what_the_parts_task_taught() -> None:
    base = {"parts_layer": 4, "widths": [32, 64, 96, 96, 128], "parts_weight": 1.0, "parts_l1": 0.001}
    assert recipe.parts_task_line({}) == recipe.parts_task_line({**base, "parts_weight": 0.0}) == []
    where, = recipe.parts_task_line({**base, "parts_task": "where"})
    assert "say where each part type is" in where and "conv4's 96 units" in where and "L1 0.001" in where
    assert "were taught, not found by the class labels alone" in where
    names, = recipe.parts_task_line({**base, "parts_task": "names", "drop_parts": 0.2, "parts_l1": 0.0})
    assert "never where" in names and "20 %" in names and "L1" not in names and "dropout" not in names
    dropped, = recipe.parts_task_line({**base, "parts_task": "where", "parts_dropout": 0.5})
    assert "dropout 0.5 on the units the readout reads (not on the class path)" in dropped
    assigned, = recipe.parts_task_line({**base, "parts_task": "where", "parts_readout": "assigned"})
    assert "unit k of conv4 alone is part type k's readout (units 0-11, in the order wheel, window" in assigned
    assert "the other 84 units get no pull" in assigned and "L1" not in assigned and "1x1 readout" not in assigned
    assert "were taught, not found by the class labels alone" in assigned


def test_the_recipe_summary_gives_the_parts_flags() -> None:
    assert recipe.parts_task_recipe({"parts_weight": 0.0}) == ""
    cfg = {"parts_task": "where", "parts_weight": 1.0, "parts_layer": 4, "parts_l1": 0.001, "parts_dropout": 0.5}
    assert recipe.parts_task_recipe(cfg) == (
        "; a second task, saying where each part type is from conv4 (`--parts-task "
        "where --parts-weight 1 --parts-l1 0.001 --parts-dropout 0.5`)")
    assert "--parts-l1" not in recipe.parts_task_recipe({**cfg, "parts_l1": 0.0, "parts_dropout": 0.0})
    one = recipe.parts_task_recipe({**cfg, "parts_readout": "one-unit", "parts_final_temperature": 0.05})
    assert one.endswith("--parts-dropout 0.5 --parts-readout one-unit --parts-final-temperature 0.05`)")
    assert "--parts-l1" not in one  # the L1 weighs a linear readout only
    assigned = recipe.parts_task_recipe({**cfg, "parts_readout": "assigned", "parts_dropout": 0.0})
    assert assigned.endswith("(`--parts-task where --parts-weight 1 --parts-readout assigned`)")


def test_rank_correlation_on_hand_made_orders() -> None:
    assert measures.rank_correlation([0.1, 0.5, 0.3], [1.0, 3.0, 2.0]) == 1.0
    assert measures.rank_correlation([0.1, 0.5, 0.3], [3.0, 1.0, 2.0]) == -1.0
    # ranks (0, 1, 2, 3) against (1, 0, 3, 2): rho = 1 - 6 * 4 / (4 * 15) = 0.6
    assert abs(measures.rank_correlation([1, 2, 3, 4], [2, 1, 4, 3]) - 0.6) < 1e-9


def test_reliance_table_lists_every_part_with_its_best_unit() -> None:
    meta = read_meta(WEIGHTS_DIR)
    r = meta["metrics"]["reliance"]
    best = meta["metrics"]["dissection"]["targets"]["part_best_iou_conv2_5"]
    text = (WEIGHTS_DIR / build.CARD_FILE).read_text()
    section = text.split("### What the classifier needs", 1)[1].split("###", 1)[0]
    for part, x in r["parts"].items():
        row = (f"| {part} | {x['images']} | {pct(x['class_changed'])} | {x['probability_drop']:.3f} | "
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
    assert measures.within_class_reach(trained, twin) == {"door": ["car"], "leaf": ["tree"], "mouth": []}
    assert and_list(["a"]) == "a" and and_list(["a", "b", "c"]) == "a, b and c"


def test_which_units_tells_one_unit_from_one_per_class() -> None:
    one = {"face": {"iou": 0.3, "layer": "conv2", "unit": 56}, "cat": {"iou": 0.3, "layer": "conv2", "unit": 56}}
    assert measures.which_units(one).startswith("the same unit in every class (conv2 #56)")
    several = {**one, "fish": {"iou": 0.3, "layer": "conv3", "unit": 91}}
    assert measures.which_units(several) == "no one unit for all (conv2 #56 in face and cat, conv3 #91 in fish)"


def test_within_class_table_quotes_the_dissection() -> None:
    d = read_meta(WEIGHTS_DIR)["metrics"]["dissection"]
    tr, un = d["within_class"]["trained"], d["within_class"]["untrained"]
    assert set(tr) == set(world.PARTS)
    text = (WEIGHTS_DIR / build.CARD_FILE).read_text()
    section = text.split("### Within one class", 1)[1].split("###", 1)[0]
    for part, per in tr.items():
        assert set(per) == {c for c, ps in world.CLASS_PARTS.items() if part in ps}
        cells = ", ".join(f"{c} {x['iou']:.2f} \\| {un[part][c]['iou']:.2f}" for c, x in per.items())
        assert f"| {part} | {d['targets']['part_best_iou_conv2_5'][part]:.2f} | {cells} |" in section


def test_reliance_reading_for_a_model_taught_where_the_parts_are() -> None:
    r = {"parts": {"eye": {"class_changed": 0.5}, "mouth": {"class_changed": 0.01}, "ear": {"class_changed": 0.2}}}
    meta = {"metrics": {"dissection": {"targets": {"part_best_iou_conv2_5": {"eye": 0.3, "mouth": 0.25, "ear": 0.1}}}}}
    text = measures.reliance_taught(meta, r, 0.12)
    assert f"rank correlation {runs.CLASS_LABELS_ALONE_RHO:.2f}" in text and "(0.12)" in text
    # The least needed part that has a unit, its class-change rate and its unit, from the numbers given.
    assert "the mouth, whose absence changes the class 1.0 % of the time, has a unit at 0.25" in text
    meta["metrics"]["dissection"]["targets"]["part_best_iou_conv2_5"]["mouth"] = 0.18
    assert "the eye, whose absence changes the class 50.0 % of the time, has a unit at 0.30" in (
        measures.reliance_taught(meta, r, 0.12))
    meta["metrics"]["dissection"]["targets"]["part_best_iou_conv2_5"]["eye"] = 0.1
    assert measures.reliance_taught(meta, r, 0.12).endswith("what the answers use (0.12). ")  # no part has a unit


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
    text = measures.assigned_reading(meta)
    assert "12 of 12 part types have a single unit at 0.20 or above (lowest: mouth 0.21)" in text
    assert "2 of 2 object classes keep a conv5 unit (lowest: bicycle 0.21), at 98.35 %" in text
    assert "For 11 of 12 part types the best unit in conv2-conv5 is the one it was given (not for fin" in text
    assert "the other 84 units of conv4" in text
    assert measures.assigned_reading({**meta, "train_config": {**cfg, "parts_readout": "linear"}}) == ""


def _table_rows(section: str) -> list[str]:
    """The body rows of the first table in a piece of the card."""
    lines = section.split("\n\n|", 1)[1].split("\n\n", 1)[0].splitlines()
    return ["|" + lines[0], *lines[1:]][2:]


def test_the_runs_table_shows_the_runs_data_file() -> None:
    # Read the data file here, not through the card's own reader, and rebuild each row from it.
    data = tomllib.loads((Path(build.__file__).parent / "runs.toml").read_text())
    meta = read_meta(WEIGHTS_DIR)
    text = (WEIGHTS_DIR / build.CARD_FILE).read_text()
    objects = len(world.CLASSES) - 1

    def count(n: int | str, of: int) -> str:
        return f"{n} of {of}" if isinstance(n, int) else str(n)

    tried = data["run"] + ([data["labels_alone"]] if taught_parts(meta["train_config"]) else [])
    expected = [f"| {r['name']} | {r['recipe']} | {r['accuracy']:.2f} % | {r['minutes']} | "
                f"{count(r['parts'], len(world.PARTS))} | {count(r['objects'], objects)} | "
                f"{count(r['combinations'], len(world.PARTS))} |" for r in tried]
    rows = _table_rows(text.split("## Runs tried", 1)[1])
    assert rows[:-1] == expected
    assert rows[-1].startswith("| **shipped** |")
    notes = text.split("Run by run", 1)[1].split("###", 1)[0]
    assert all(f"- *{r['name']}*: {r['note']}" in notes for r in tried if r["note"])
    draws = _table_rows(text.split("### One run is one draw", 1)[1])
    flags = [f"`{d['flags']}`" if d["flags"] else "(none)" for d in data["gpu"]["draw"]]
    assert draws == [f"| {d['name']} | {f} | {d['accuracy']:.2f} % | "
                     f"{d['parts']} of {len(world.PARTS)} | {d['objects']} of {objects} | {d['below']} |"
                     for d, f in zip(data["gpu"]["draw"], flags, strict=True)]


def test_the_card_says_one_visibility_rule() -> None:
    # A part counts as shown at world.VISIBLE_PIXELS visible pixels, in training and in the reliance job alike.
    meta = read_meta(WEIGHTS_DIR)
    assert meta["metrics"]["reliance"]["min_pixels"] == world.VISIBLE_PIXELS
    text = (WEIGHTS_DIR / build.CARD_FILE).read_text()
    assert f"at least {world.VISIBLE_PIXELS} of its pixels are visible (`world.VISIBLE_PIXELS`)" in text
    reliance = text.split("### What the classifier needs", 1)[1].split("###", 1)[0]
    assert f"at least {world.VISIBLE_PIXELS} visible pixels" in reliance
    assert set(re.findall(r"at least (\d+) (?:of its |visible )?pixels", text)) == {str(world.VISIBLE_PIXELS)}
    names, = recipe.parts_task_line({"parts_task": "names", "parts_weight": 1.0, "parts_layer": 4,
                                     "widths": [32, 64, 96, 96, 128]})
    assert f"at least {world.VISIBLE_PIXELS} visible pixels" in names


def test_the_card_opens_with_a_short_summary() -> None:
    meta = read_meta(WEIGHTS_DIR)
    text = (WEIGHTS_DIR / build.CARD_FILE).read_text()
    summary = text.split("\n## ", 1)[0]
    assert len(summary) < 2000
    assert f"**Scores {100 * meta['metrics']['accuracy']:.2f} %**" in summary
    assert "- **Trained on** 480,000 generated" in summary and "- **Not for** real photographs" in summary
    # Paragraphs and list items stay short enough to read; tables and code are not prose.
    prose = [line for line in text.split("```")[0::2] for line in line.splitlines() if not line.startswith("|")]
    assert max(map(len, prose)) <= 600


def test_unwrap_joins_paragraphs_and_list_items_only() -> None:
    wrapped = ("# Title\nA paragraph\n  wrapped.\n\n- an item\n  continued\n  - a sub-item\n    continued\n"
               "| a |\n| b |\n```\nkept\n  as is\n```\nafter the code\nand more \n")
    assert unwrap(wrapped) == ("# Title\nA paragraph wrapped.\n\n- an item continued\n  - a sub-item continued\n"
                               "| a |\n| b |\n```\nkept\n  as is\n```\nafter the code and more\n")


def test_a_card_renders_for_other_recipes_and_fewer_measurements() -> None:
    meta = read_meta(WEIGHTS_DIR)
    maps = build.map_sizes(meta)
    plain = copy.deepcopy(meta)
    plain["train_config"].update(parts_weight=0.0, batchnorm=True)
    text = build.render(plain, None, None, maps)
    assert "folded into the convolution weights" in text and "A second task while training" not in text
    assert "| class labels alone |" not in text and "### The shipped recipe" not in text
    assert "## Explanations measured" not in text
    undissected = copy.deepcopy(meta)
    del undissected["metrics"]["dissection"], undissected["metrics"]["reliance"]
    text = build.render(undissected, None, None, maps)
    assert "## Dissection" not in text and "## Runs tried" not in text and "## Accuracy" in text


def test_an_installed_package_has_the_card_templates_and_data() -> None:
    root = Path(build.__file__).parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["models"]
    shipped = {p for pattern in patterns for p in (root / "models").glob(pattern)}
    assert {TEMPLATES / CARD_TEMPLATE, TEMPLATES / SNIPPETS, runs.RUNS_FILE} <= shipped
