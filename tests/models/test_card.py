"""The shipped model card is generated from the measured numbers and is up to date."""

from __future__ import annotations

import json
from pathlib import Path

from models import card
from models.tinyweights import WEIGHTS_DIR, read_meta


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
    assert sizes["conv1"] >= 31  # the floor for conv1 maps
    assert sizes["conv3"] == sizes["conv4"] == sizes["conv5"]
