"""Your own networks, from a TOML file: every ``[models.ID]`` table is one model entry.

A table names the network one of three ways: ``architecture`` (a torchvision name, built with
as many classes as the weights' last layer has), ``builder`` (``"module:callable"``, an
importable callable that returns the ``nn.Module``) or ``program`` (a ``torch.export``
archive, no Python code needed). ``weights`` is a state dict (``.safetensors``, or
``.pth``/``.pt`` read with ``weights_only=True``); ``classes`` a file with one name a line or
an inline list; ``input_size``, ``resize_size``, ``mean`` and ``std`` the preprocessing
(torchvision's ImageClassification preset: the shorter side resized to ``resize_size``,
bilinear and antialiased, then the centre ``input_size`` square). Paths are relative to the
TOML file.

A file that cannot be read at all is a :class:`ConfigError`. A mistake in one table (a
missing file or key, a builder that raises, weights that do not fit, classes that do not
match the output) is one logged line naming the model and the problem, and that model is
listed as unavailable with the reason while the others load.
"""

from __future__ import annotations

import importlib
import logging
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models import get_model
from torchvision.transforms._presets import ImageClassification

from models.zoo import torchvision_zoo as zoo
from models.zoo.entry import ModelEntry, found_entry_fields, prepare_for_serving

log = logging.getLogger("layerscope")
KEYS = ("title", "description", "trained_on", "architecture", "builder", "program", "weights", "classes",
        "input_size", "resize_size", "mean", "std")
SOURCES = ("architecture", "builder", "program")
WORDS = ("title", "description", "trained_on")  # optional, shown on the model's card
MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
# torchvision builds these two, for their published weights, with their input transform on
# and the auxiliary heads in the state dict; a fine-tuned copy keeps both.
TRANSFORM_INPUT = ("googlenet", "inception_v3")
MAX_INPUT = 1024


class ConfigError(ValueError):
    """The configuration file as a whole cannot be used (missing, not TOML, no models table)."""


class ModelProblem(ValueError):
    """One model's table cannot be served; the message says why, in one sentence."""


@dataclass(frozen=True)
class Table:
    """One ``[models.ID]`` table and the folder its paths are relative to."""

    id: str
    values: dict[str, Any]
    folder: Path
    source: Path  # the TOML file


def read_config(path: str | Path) -> list[Table]:
    """The model tables of the TOML file at ``path``, checked only as far as their ids go."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"the configuration file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"the configuration file {path} cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the configuration file {path} is not valid TOML ({exc})") from None
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        raise ConfigError(f"the configuration file {path} has no [models.ID] tables")
    tables = []
    for model_id, values in models.items():
        if not MODEL_ID.match(model_id):
            raise ConfigError(f"{path}: [models.{model_id}]: a model id is lower-case letters, digits, '_', '-' "
                              "or '.' (at most 64)")
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: models.{model_id} is not a table")
        tables.append(Table(model_id, values, path.resolve().parent, path))
    return tables


def load_config(path: str | Path, taken: tuple[str, ...] = ()) -> dict[str, ModelEntry]:
    """An entry for every table of the file, unavailable with the reason where the table is wrong.

    ``taken`` are the ids known already (tiny, torchvision's names): a table may not reuse one.
    """
    tables = read_config(path)
    clash = next((t.id for t in tables if t.id in taken), None)
    if clash is not None:
        raise ConfigError(f"{path}: [models.{clash}] reuses a built-in model id; give your model another id")
    entries = {}
    for table in tables:
        try:
            entries[table.id] = custom_entry(table)
        except ModelProblem as exc:
            log.warning("layerscope: model %s (%s): %s", table.id, table.source, exc)
            entries[table.id] = _unavailable(table, str(exc))
    return entries


def custom_entry(table: Table) -> ModelEntry:
    """The served entry of one table; raises :class:`ModelProblem` with the first mistake."""
    values = table.values
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise ModelProblem(f"unknown key {unknown[0]!r}; the keys are {', '.join(KEYS)}")
    wordy = next((key for key in WORDS if not isinstance(values.get(key, ""), str)), None)
    if wordy is not None:
        raise ModelProblem(f"{wordy} must be a string")
    sources = [key for key in SOURCES if key in values]
    if len(sources) != 1:
        what = "none" if not sources else " and ".join(sources)
        raise ModelProblem(f"give exactly one of architecture, builder or program (this table gives {what})")
    classes = _classes(table)
    source = sources[0]
    network, defaults = _NETWORKS[source](table)
    size = _integer(values, "input_size", defaults.get("input_size"))
    resize = _integer(values, "resize_size", defaults.get("resize_size") if "input_size" not in values else size)
    mean, std = _triple(values, "mean", defaults.get("mean")), _triple(values, "std", defaults.get("std"))
    if any(s <= 0 for s in std):
        raise ModelProblem("every std must be above 0")
    network.eval()
    outputs = _output_width(network, size)
    if outputs != len(classes):
        raise ModelProblem(f"the network gives {outputs} outputs but classes names {len(classes)}")
    try:
        found = found_entry_fields(network, size)
    except Exception as exc:  # a network discovery cannot read is this model's problem only
        raise ModelProblem(f"its layers could not be found ({type(exc).__name__}: {_short(exc)})") from exc
    weights = values.get("weights")
    return ModelEntry(
        id=table.id,
        title=str(values.get("title", f"{table.id} (your own network)")),
        description=str(values.get("description", f"A network from the configuration file {table.source.name}.")),
        trained_on=str(values.get("trained_on", "not stated in the configuration")),
        input_size=size, mean=mean, std=std, classes=classes, available=True, trained=True,
        network=prepare_for_serving(network),
        preprocess=ImageClassification(crop_size=size, resize_size=resize, mean=mean, std=std),
        layers=found.layers, default_layers=found.default_layers, view_maps=found.view_maps, cam_layer=found.cam_layer,
        filters_layer=found.filters_layer, group="custom", layout="discovered",
        weights_source=str(table.folder / (weights or values["program"])),
        max_batch=None if source != "program" or _batches(network, size) else 1,
    )


def _unavailable(table: Table, reason: str) -> ModelEntry:
    values = table.values
    title = values.get("title")
    return ModelEntry(
        id=table.id, title=str(title) if isinstance(title, str) else f"{table.id} (your own network)",
        description="", trained_on=str(values.get("trained_on", "not stated in the configuration")),
        input_size=0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), classes=[], available=False, trained=True,
        unavailable_reason=f"[models.{table.id}] in {table.source}: {reason}.",
        how_to_get=f"fix [models.{table.id}] in {table.source}", group="custom", layout="discovered",
        cam_layer=None, filters_layer=None,
    )


# ---------------------------------------------------------------- the three sources

Defaults = dict[str, Any]


def _architecture(table: Table) -> tuple[nn.Module, Defaults]:
    """A torchvision network with as many classes as the weights' last layer, its preprocessing torchvision's."""
    name = table.values["architecture"]
    if not isinstance(name, str) or name not in zoo.classification_models():
        raise ModelProblem(f"architecture {name!r} is not a torchvision classification model "
                           "(see `layerscope models --all`)")
    state = _state_dict(table)
    extra: dict[str, Any] = {}
    if name in TRANSFORM_INPUT:
        extra = {"transform_input": True, "aux_logits": any(k.startswith("aux") for k in state), "init_weights": False}
    head = _classifier_key(name)
    if head not in state:
        raise ModelProblem(f"the weights have no {head!r}: they are not a state dict of {name}")
    network = get_model(name, weights=None, num_classes=int(state[head].shape[0]), **extra)
    _load_into(network, state, name)
    spec = zoo.spec(name)
    return network, {"input_size": spec.input_size, "resize_size": spec.resize_size, "mean": spec.mean,
                     "std": spec.std}


def _builder(table: Table) -> tuple[nn.Module, Defaults]:
    """What ``module:callable`` returns, with the weights loaded into it strictly."""
    target = table.values["builder"]
    if not isinstance(target, str) or target.count(":") != 1 or not all(target.split(":")):
        raise ModelProblem(f"builder {target!r} is not \"module:callable\"")
    module_name, attribute = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - whatever the module raises on import, it is this model's problem
        raise ModelProblem(f"builder module {module_name} could not be imported ({type(exc).__name__}: "
                           f"{_short(exc)})") from None
    build = getattr(module, attribute, None)
    if not callable(build):
        raise ModelProblem(f"builder module {module_name} has no callable {attribute}")
    try:
        network = build()
    except Exception as exc:  # noqa: BLE001 - the operator's code: any failure is reported, not raised
        raise ModelProblem(f"builder {target} raised {type(exc).__name__}: {_short(exc)}") from None
    if not isinstance(network, nn.Module):
        raise ModelProblem(f"builder {target} returned a {type(network).__name__}, not an nn.Module")
    _load_into(network, _state_dict(table), target)
    return network, {}


def _program(table: Table) -> tuple[nn.Module, Defaults]:
    """A ``torch.export`` archive, unflattened so its submodules keep their names (and hooks)."""
    if "weights" in table.values:
        raise ModelProblem("a program carries its own weights; remove the weights key")
    path = _file(table, "program")
    try:
        program = torch.export.load(path)
        network = torch.export.unflatten(program)
    except Exception as exc:  # noqa: BLE001 - a file that is no archive is this model's problem
        raise ModelProblem(f"program {path} is not a torch.export archive ({type(exc).__name__}: "
                           f"{_short(exc)})") from None
    return network, {}


_NETWORKS: dict[str, Callable[[Table], tuple[nn.Module, Defaults]]] = {
    "architecture": _architecture, "builder": _builder, "program": _program,
}


# ---------------------------------------------------------------- keys and files


def _file(table: Table, key: str) -> Path:
    raw = table.values[key]
    if not isinstance(raw, str) or not raw:
        raise ModelProblem(f"{key} must be a file name")
    path = table.folder / raw
    if not path.is_file():
        raise ModelProblem(f"{key} file {path} does not exist")
    return path


def _state_dict(table: Table) -> dict[str, torch.Tensor]:
    if "weights" not in table.values:
        raise ModelProblem("missing key 'weights' (a .safetensors, .pth or .pt state dict)")
    path = _file(table, "weights")
    try:
        return zoo.read_state_dict(path)
    except zoo.WeightsUnusable as exc:
        raise ModelProblem(str(exc)) from None


def _load_into(network: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    try:
        network.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ModelProblem(f"the weights do not fit {what}: {_short(exc)}") from None


def _classifier_key(name: str) -> str:
    """The state-dict key of the last parameter whose first axis is the class count (the head's bias)."""
    with torch.device("meta"):
        shapes = {key: tuple(value.shape) for key, value in get_model(name, weights=None).state_dict().items()}
    classes = len(zoo.spec(name).classes)
    return [key for key, shape in shapes.items() if shape and shape[0] == classes][-1]


def _classes(table: Table) -> list[str]:
    raw = table.values.get("classes")
    if raw is None:
        raise ModelProblem("missing key 'classes' (a file with one name a line, or a list)")
    if isinstance(raw, list):
        if not raw or not all(isinstance(c, str) for c in raw):
            raise ModelProblem("classes must be a list of names")
        return list(raw)
    path = _file(table, "classes")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise ModelProblem(f"classes file {path} names no class")
    return names


def _integer(values: dict[str, Any], key: str, default: Any) -> int:
    value = values.get(key, default)
    if value is None:
        raise ModelProblem(f"missing key {key!r} (the side of the square the network sees, in pixels)")
    if not isinstance(value, int) or isinstance(value, bool) or not 8 <= value <= MAX_INPUT:
        raise ModelProblem(f"{key} must be a whole number of pixels from 8 to {MAX_INPUT}")
    return value


def _triple(values: dict[str, Any], key: str, default: Any) -> tuple[float, float, float]:
    value = values.get(key, default)
    if value is None:
        raise ModelProblem(f"missing key {key!r} (three numbers, one per RGB channel)")
    if not isinstance(value, list | tuple) or len(value) != 3 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise ModelProblem(f"{key} must be three numbers, one per RGB channel")
    return float(value[0]), float(value[1]), float(value[2])


def _output_width(network: nn.Module, size: int) -> int:
    """How many outputs the network gives for one picture; a forward pass that fails is the model's problem."""
    try:
        with torch.inference_mode():
            output = network(torch.zeros(1, 3, size, size))
    except Exception as exc:  # noqa: BLE001 - the operator's network: any failure is reported
        raise ModelProblem(f"the network fails on a {size}x{size} picture ({type(exc).__name__}: "
                           f"{_short(exc)})") from None
    if not isinstance(output, torch.Tensor) or output.dim() != 2 or output.shape[0] != 1:
        raise ModelProblem("the network must return one row of class scores per picture")
    return int(output.shape[1])


def _batches(network: nn.Module, size: int) -> bool:
    """The network takes two pictures in one pass (a program exported for one does not)."""
    try:
        with torch.inference_mode():
            network(torch.zeros(2, 3, size, size))
    except Exception:  # noqa: BLE001 - any refusal means one picture at a time
        return False
    return True


def _short(exc: Exception, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
