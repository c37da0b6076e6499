"""Your own networks from a TOML file: the three ways to name a network, and every mistake's one line.

The test writes everything the configuration names: a builder module on a temporary
``sys.path``, state dicts as .safetensors and .pth, a ``torch.export`` archive, class files.
Each served network is compared with the network the test built itself.
"""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from torchvision.models import get_model
from torchvision.transforms._presets import ImageClassification

from models.zoo import custom
from models.zoo.registry import MODEL_IDS, load_registry

BUILDER = '''
import torch
from torch import nn


class Block(nn.Module):
    """A residual block with a forward of its own."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.conv(x))


def build() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 5, stride=2, padding=2), nn.ReLU(), Block(8), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), Block(16), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(16, 3),
    )


def normed() -> nn.Module:
    """A first layer that is no convolution: no filters to draw."""
    return nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 3))


def flat() -> nn.Module:
    """No map at all: nothing for Grad-CAM, an empty default view."""
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 3))


def broken() -> nn.Module:
    raise RuntimeError("the builder needs a GPU")


def not_a_network() -> str:
    return "a string"
'''


@pytest.fixture
def builder_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh module (its own name per test) on sys.path that builds a small network."""
    name = f"mynets_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(BUILDER)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def built(builder: str) -> nn.Module:
    module = __import__(builder)
    torch.manual_seed(3)
    network: nn.Module = module.build().eval()
    return network


def write(folder: Path, text: str) -> Path:
    path = folder / "models.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_builder_with_safetensors_weights_is_served(tmp_path: Path, builder_module: str) -> None:
    network = built(builder_module)
    save_file(network.state_dict(), str(tmp_path / "mine.safetensors"))
    config = write(tmp_path, f'''
        [models.mine]
        builder = "{builder_module}:build"
        weights = "mine.safetensors"
        classes = ["teapot", "kite", "comet"]
        input_size = 64
        mean = [0.48, 0.46, 0.41]
        std = [0.27, 0.26, 0.28]
    ''')
    entry = custom.load_config(config)["mine"]
    assert entry.available and entry.group == "custom" and entry.classes == ["teapot", "kite", "comet"]
    assert entry.title == "mine (your own network)" and entry.weights_source == str(tmp_path / "mine.safetensors")
    assert entry.filters_layer == "0" and entry.cam_layer == entry.default_layers[-1]
    assert entry.default_layers == ("1", "2", "5", "6")  # each convolution after its ReLU, each block; no pools
    # By hand: 5x5 at stride 2; a 3x3 adds 2 x 2; the 2x2 pool adds 1 x 2, stride 4; two 3x3 add 2 x 4 each.
    geometry = [(entry.layers[n].receptive_field, entry.layers[n].stride) for n in entry.default_layers]
    assert geometry == [(5, 2), (9, 2), (19, 4), (27, 4)]
    assert entry.layers["9"].stage == "classes" and entry.layers["2.conv"].receptive_field == 9
    picture = torch.rand(2, 3, 64, 64)
    assert entry.network is not None
    with torch.no_grad():
        torch.testing.assert_close(entry.network(picture), network(picture), rtol=0, atol=1e-6)
    preprocess = entry.preprocess
    assert isinstance(preprocess, ImageClassification)
    assert list(preprocess.crop_size) == [64] and list(preprocess.resize_size) == [64]


def test_an_architecture_with_pth_weights_takes_its_class_count_from_them(tmp_path: Path) -> None:
    torch.manual_seed(4)
    network = get_model("resnet18", weights=None, num_classes=2).eval()
    torch.save(network.state_dict(), tmp_path / "birch.pth")
    (tmp_path / "birch-classes.txt").write_text("silver birch\ndowny birch\n\n")
    config = write(tmp_path, '''
        [models.birch]
        title = "Trees (fine-tuned ResNet-18)"
        architecture = "resnet18"
        weights = "birch.pth"
        classes = "birch-classes.txt"
    ''')
    entry = load_registry(["tiny"], config=config)["birch"]
    assert entry.available and entry.title == "Trees (fine-tuned ResNet-18)"
    assert entry.classes == ["silver birch", "downy birch"]
    # torchvision's preprocessing for resnet18: resize 256, crop 224, ImageNet's mean and std.
    assert (entry.input_size, entry.mean) == (224, (0.485, 0.456, 0.406))
    assert isinstance(entry.preprocess, ImageClassification) and list(entry.preprocess.resize_size) == [256]
    assert entry.cam_layer == "layer4.1" and entry.filters_layer == "conv1"
    picture = torch.rand(1, 3, 96, 96)
    assert entry.network is not None
    with torch.no_grad():
        torch.testing.assert_close(entry.network(picture), network(picture), rtol=0, atol=1e-6)


def test_a_torch_export_archive_needs_no_code(tmp_path: Path, builder_module: str) -> None:
    network = built(builder_module)
    example = (torch.rand(2, 3, 64, 64),)
    dims = ({0: torch.export.Dim("batch", min=1, max=64), 2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO},)
    torch.export.save(torch.export.export(network, example, dynamic_shapes=dims), tmp_path / "net.pt2")
    config = write(tmp_path, '''
        [models.exported]
        program = "net.pt2"
        classes = ["a", "b", "c"]
        input_size = 64
        resize_size = 72
        mean = [0.5, 0.5, 0.5]
        std = [0.25, 0.25, 0.25]
    ''')
    entry = custom.load_config(config)["exported"]
    assert entry.available and entry.max_batch is None
    assert isinstance(entry.preprocess, ImageClassification) and list(entry.preprocess.resize_size) == [72]
    assert entry.network is not None and len(entry.default_layers) >= 3
    picture = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(entry.network(picture), network(picture), rtol=0, atol=1e-6)


def test_a_program_traced_for_one_picture_takes_one_at_a_time(tmp_path: Path, builder_module: str) -> None:
    network = built(builder_module)
    torch.export.save(torch.export.export(network, (torch.rand(1, 3, 32, 32),)), tmp_path / "one.pt2")
    config = write(tmp_path, '''
        [models.one]
        program = "one.pt2"
        classes = ["a", "b", "c"]
        input_size = 32
        mean = [0.5, 0.5, 0.5]
        std = [0.25, 0.25, 0.25]
    ''')
    entry = custom.load_config(config)["one"]
    assert entry.available and entry.max_batch == 1


GOOD = {"input_size": 64, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}


@pytest.fixture(scope="module")
def resnet18_with_5_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("other") / "other.pth"
    torch.save(get_model("resnet18", weights=None, num_classes=5).state_dict(), path)
    return path


def _toml(values: dict[str, object]) -> str:
    def literal(value: object) -> str:
        return f'"{value}"' if isinstance(value, str) else str(value).replace("'", '"')
    return "\n".join(f"{key} = {literal(value)}" for key, value in values.items())


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"builder": "{mod}:build", "classes": ["a", "b", "c"]}, "missing key 'weights'"),
        ({"builder": "{mod}:build", "weights": "nope.safetensors", "classes": ["a", "b", "c"]},
         "weights file {dir}/nope.safetensors does not exist"),
        ({"builder": "{mod}:build", "weights": "w.safetensors"}, "missing key 'classes'"),
        ({"builder": "{mod}:build", "weights": "w.safetensors", "classes": "nope.txt"},
         "classes file {dir}/nope.txt does not exist"),
        ({"builder": "{mod}:broken", "weights": "w.safetensors", "classes": ["a", "b", "c"]},
         "builder {mod}:broken raised RuntimeError: the builder needs a GPU"),
        ({"builder": "{mod}:missing", "weights": "w.safetensors", "classes": ["a", "b", "c"]},
         "has no callable missing"),
        ({"builder": "no_such_module_here:build", "weights": "w.safetensors", "classes": ["a", "b", "c"]},
         "builder module no_such_module_here could not be imported (ModuleNotFoundError"),
        ({"builder": "{mod}:not_a_network", "weights": "w.safetensors", "classes": ["a", "b", "c"]},
         "returned a str, not an nn.Module"),
        ({"builder": "{mod}:build", "weights": "other.pth", "classes": ["a", "b", "c"]},
         "the weights do not fit {mod}:build"),
        ({"builder": "{mod}:build", "weights": "w.safetensors", "classes": ["a", "b"]},
         "the network gives 3 outputs but classes names 2"),
        ({"architecture": "resnet18", "weights": "other.pth", "classes": ["a", "b"]},
         "the network gives 5 outputs but classes names 2"),
        ({"architecture": "resnet9000", "weights": "w.safetensors", "classes": ["a"]},
         "architecture 'resnet9000' is not a torchvision classification model"),
        ({"architecture": "vgg11", "weights": "w.safetensors", "classes": ["a"]},
         "the weights have no 'classifier.6.bias': they are not a state dict of vgg11"),
        ({"weights": "w.safetensors", "classes": ["a", "b", "c"]}, "exactly one of architecture, builder or program"),
        ({"builder": "{mod}:build", "architecture": "resnet18", "weights": "w.safetensors", "classes": ["a"]},
         "this table gives architecture and builder"),
        ({"builder": "{mod}:build", "weights": "w.safetensors", "classes": ["a", "b", "c"], "colour": "red"},
         "unknown key 'colour'"),
        ({"program": "w.safetensors", "classes": ["a", "b", "c"]}, "is not a torch.export archive"),
        ({"builder": "{mod}:build", "weights": "notes.txt", "classes": ["a", "b", "c"]},
         "{dir}/notes.txt could not be read as weights"),
        ({"builder": "{mod}:build", "weights": "w.safetensors", "classes": ["a", "b", "c"], "title": 7},
         "title must be a string"),
    ],
)
def test_every_mistake_is_one_line_naming_the_model_and_the_others_load(
    table: dict[str, object], words: str, tmp_path: Path, builder_module: str, caplog: pytest.LogCaptureFixture,
    resnet18_with_5_classes: Path,
) -> None:
    network = built(builder_module)
    save_file(network.state_dict(), str(tmp_path / "w.safetensors"))
    (tmp_path / "other.pth").symlink_to(resnet18_with_5_classes)
    (tmp_path / "notes.txt").write_text("not weights")
    values = {k: v.format(mod=builder_module) if isinstance(v, str) else v for k, v in table.items()}
    needs_size = "architecture" not in values
    good = {"builder": f"{builder_module}:build", "weights": "w.safetensors", "classes": ["a", "b", "c"], **GOOD}
    config = write(tmp_path, f"[models.bad]\n{_toml({**values, **(GOOD if needs_size else {})})}\n\n"
                             f"[models.good]\n{_toml(good)}\n")
    with caplog.at_level(logging.WARNING, logger="layerscope"):
        entries = custom.load_config(config)
    expected = words.format(mod=builder_module, dir=tmp_path)
    lines = [r.getMessage() for r in caplog.records if r.name == "layerscope"]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert lines[0].startswith(f"layerscope: model bad ({config}): ") and expected in lines[0], lines[0]
    bad, good_entry = entries["bad"], entries["good"]
    assert not bad.available and bad.network is None and expected in (bad.unavailable_reason or "")
    assert bad.how_to_get == f"fix [models.bad] in {config}" and bad.group == "custom"
    assert good_entry.available


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("input_size", None, "missing key 'input_size'"),
        ("input_size", 4, "input_size must be a whole number of pixels from 8 to 1024"),
        ("mean", [0.5, 0.5], "mean must be three numbers"),
        ("std", [0.2, 0.0, 0.2], "every std must be above 0"),
        ("std", None, "missing key 'std'"),
    ],
)
def test_preprocessing_mistakes_are_one_line_too(
    key: str, value: object, words: str, tmp_path: Path, builder_module: str, caplog: pytest.LogCaptureFixture
) -> None:
    save_file(built(builder_module).state_dict(), str(tmp_path / "w.safetensors"))
    values: dict[str, object] = {"builder": f"{builder_module}:build", "weights": "w.safetensors",
                                 "classes": ["a", "b", "c"], **GOOD}
    values = {k: v for k, v in {**values, key: value}.items() if v is not None}
    config = write(tmp_path, f"[models.prep]\n{_toml(values)}\n")
    with caplog.at_level(logging.WARNING, logger="layerscope"):
        entry = custom.load_config(config)["prep"]
    assert not entry.available and words in (entry.unavailable_reason or "")
    assert [r.getMessage() for r in caplog.records if words in r.getMessage()]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (None, "does not exist"),
        ("[models.x\n", "is not valid TOML"),
        ("[other]\nkey = 1\n", "has no [models.ID] tables"),
        ('[models."Bad Id"]\nbuilder = "m:f"\n', "a model id is lower-case letters"),
        ('[models.resnet18]\narchitecture = "resnet18"\n', "reuses a built-in model id"),
    ],
)
def test_a_file_that_cannot_be_used_is_one_error(text: str | None, words: str, tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(custom.ConfigError, match=r"models\.toml") as raised:
        custom.load_config(path, MODEL_IDS)
    assert words in str(raised.value) and "\n" not in str(raised.value)
