"""World seeds: one per purpose, shared only where the seeds module says so, and the only seeds the code draws from."""

from __future__ import annotations

import ast
import json
from collections import defaultdict
from pathlib import Path

from models.world import seeds
from models.zoo.assets import EXPLAIN_DIR_NAME
from models.zoo.tinyweights import WEIGHTS_DIR, read_meta

ROOT = Path(__file__).resolve().parents[3]
SOURCES = ("app", "bench", "models", "scripts")
GENERATORS = {"generate", "generate_batch"}

# The numbers themselves: shipped weights, metrics and assets were made with them.
EXPECTED = {
    "TRAINING": 1, "VALIDATION": 7, "NORMALIZATION": 99, "EVALUATION": 2026, "DISSECTION": 3031,
    "RELIANCE": 3031, "PROBES": 4049, "PATCHES": 23, "OOD_FIT": 31, "OOD_CALIBRATION": 37,
    "OOD_THRESHOLD": 39, "OOD_TEST": 41, "OOD_HEAD": 47, "OOD_OUTLIERS": 53,
    "OOD_OUTLIERS_TEST": 59, "GRADCAM": 43, "TEACH": 61, "TEACH_TEST": 67, "LIVE_TRAINING": 71, "LIVE_VALIDATION": 73,
    "GALLERY": 2026, "TIMING": 0,
}


def _modules() -> list[tuple[Path, ast.Module]]:
    files = sorted(p for top in SOURCES for p in (ROOT / top).rglob("*.py") if ".venv" not in p.parts)
    return [(p, ast.parse(p.read_text(), str(p))) for p in files]


def _seed_argument(call: ast.Call) -> ast.expr | None:
    keyword = next((k.value for k in call.keywords if k.arg == "seed"), None)
    return keyword if keyword is not None else (call.args[0] if call.args else None)


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    return call.func.attr if isinstance(call.func, ast.Attribute) else None


def test_every_purpose_keeps_its_seed() -> None:
    assert seeds.by_purpose() == EXPECTED


def test_no_two_purposes_share_a_seed_unless_the_module_says_so() -> None:
    by_value: dict[int, set[str]] = defaultdict(set)
    for name, value in seeds.by_purpose().items():
        by_value[value].add(name)
    shared = {frozenset(names) for names in by_value.values() if len(names) > 1}
    assert shared == {frozenset({alias, owner}) for alias, owner in seeds.SHARED.items()}
    for alias, owner in seeds.SHARED.items():
        assert getattr(seeds, alias) == getattr(seeds, owner) and owner not in seeds.SHARED


def test_every_call_of_the_generator_takes_its_seed_from_the_seeds_module() -> None:
    purposes = seeds.by_purpose()
    calls = 0
    for path, tree in _modules():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _called_name(node) in GENERATORS):
                continue
            seed = _seed_argument(node)
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            assert not isinstance(seed, ast.Constant), f"{where}: a literal world seed"
            if isinstance(seed, ast.Attribute) and isinstance(seed.value, ast.Name) and seed.value.id == "seeds":
                assert seed.attr in purposes, f"{where}: seeds.{seed.attr} is no purpose"
                calls += 1
    assert calls >= 10  # the jobs' and scripts' own pictures, each named by purpose


def _literal_ints(value: ast.expr | None) -> bool:
    items = value.elts if isinstance(value, ast.Tuple) else [value]
    return any(isinstance(v, ast.Constant) and type(v.value) is int for v in items)


def test_no_module_keeps_a_world_seed_of_its_own() -> None:
    """A seed constant or a ``world_seed`` default outside models/world/seeds.py would be a second home."""
    for path, tree in _modules():
        if path == ROOT / "models" / "world" / "seeds.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AnnAssign) and _literal_ints(node.value):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
                bad = [n for n in names if (n.isupper() and n.endswith("SEED")) or n == "world_seed"]
                assert not bad, f"{path.relative_to(ROOT)}:{node.lineno}: {bad} is a literal world seed"


def test_the_shipped_numbers_were_measured_on_these_seeds() -> None:
    meta = read_meta(WEIGHTS_DIR)
    m = meta["metrics"]
    assert meta["train_config"]["world_seed"] == seeds.TRAINING
    assert m["evaluation"]["seed"] == seeds.EVALUATION
    assert (m["dissection"]["seed"], m["dissection"]["probe_seed"]) == (seeds.DISSECTION, seeds.PROBES)
    assert m["reliance"]["seed"] == seeds.RELIANCE
    explain = json.loads((WEIGHTS_DIR / EXPLAIN_DIR_NAME / "metrics.json").read_text())
    assert (explain["ood"]["fit_seed"], explain["ood"]["calibration_seed"], explain["ood"]["threshold_seed"]) == (
        seeds.OOD_FIT, seeds.OOD_CALIBRATION, seeds.OOD_THRESHOLD)
    assert explain["ood_measurement"]["generated_seed"] == seeds.OOD_TEST
    assert explain["gradcam"]["seed"] == seeds.GRADCAM
    assert explain["patches"]["world_seed"] == explain["featvis_shipped"]["world_seed"] == seeds.PATCHES
