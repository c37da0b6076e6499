"""``layerscope models --all``: every model this machine knows of, and whether its weights are here.

Nothing is built or loaded: the embedded model ships with the code, a torchvision model's
weights are its file in torchvision's cache (AlexNet's may be named by
``--alexnet-weights``), and a configured model's are the files its table names. So the
listing is instant however many models there are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app.settings import Settings
from models.zoo import registry
from models.zoo import torchvision_zoo as zoo
from models.zoo.custom import read_config


@dataclass(frozen=True)
class Known:
    """One known model: its id, where it comes from, its weights file, whether that is here, how to get it."""

    id: str
    group: str  # "embedded", "imagenet" or "custom"
    weights_file: str | None
    present: bool
    how_to_get: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def known_models(settings: Settings) -> list[Known]:
    """tiny, every torchvision classifier, then the configuration file's models."""
    tiny = registry.WEIGHTS_DIR / registry.tinyweights.WEIGHTS_FILE
    known = [Known("tiny", "embedded", str(tiny), tiny.is_file(), None if tiny.is_file() else "layerscope train")]
    for model in zoo.available_models():
        path = model.weights_file
        if model.name == "alexnet":
            path = registry.resolve_alexnet_weights(settings.alexnet_weights) or path
        present = path.is_file()
        fetch = None if present else zoo.fetch_command(model.name)
        known.append(Known(model.name, "imagenet", str(path), present, fetch))
    if settings.config is not None:
        for table in read_config(settings.config):
            raw = table.values.get("weights", table.values.get("program"))
            found = table.folder / raw if isinstance(raw, str) else None
            present = found is not None and found.is_file()
            fix = None if present else f"fix [models.{table.id}] in {Path(table.source)}"
            known.append(Known(table.id, "custom", None if found is None else str(found), present, fix))
    return known


def known_table(known: list[Known], width: int) -> list[str]:
    """One line per model (id, group, weights here?, then the file or the command that gets it)."""
    id_width = max(len(k.id) for k in known)
    lines = [f"{'id'.ljust(id_width)}  {'group':<8}  weights  file, or how to get it"]
    for k in known:
        where = k.weights_file if k.present else k.how_to_get if k.group == "custom" else f"run `{k.how_to_get}`"
        line = f"{k.id.ljust(id_width)}  {k.group:<8}  {'yes' if k.present else 'no':<7}  {where}"
        # A command stays whole (a clipped command cannot be pasted); a long path is clipped.
        lines.append(line if not k.present or len(line) <= width else line[: max(width - 3, 0)] + "...")
    return lines
