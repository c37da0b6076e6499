"""Layers found for any network: names, geometry and stages against numbers worked out by hand.

The receptive fields pinned here follow from the published architectures (a 3x3 convolution
adds 2 x the current stride, a stride-2 layer doubles the stride, a residual branch adds its
widest path), not from the code under test; AlexNet's also match models/layers.py's table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import get_model

from models.discovery import Discovery, discover, probe
from models.discovery.every import every_layer
from models.discovery.probe import Target, measure
from models.layers import DEFAULT_LAYERS, STAGES, LayerInfo, describe_layers
from models.nets import MiniAlexNet

VGG16 = [  # (module, receptive field, stride, offset, stage): conv1_1 ... pool5
    ("features.1", 3, 1, 0.0, "edges"), ("features.3", 5, 1, 0.0, "edges"), ("features.4", 6, 2, 0.5, "edges"),
    ("features.6", 10, 2, 0.5, "edges"), ("features.8", 14, 2, 0.5, "textures"),
    ("features.9", 16, 4, 1.5, "textures"), ("features.11", 24, 4, 1.5, "textures"),
    ("features.13", 32, 4, 1.5, "textures"), ("features.15", 40, 4, 1.5, "parts"),
    ("features.16", 44, 8, 3.5, "parts"), ("features.18", 60, 8, 3.5, "parts"), ("features.20", 76, 8, 3.5, "parts"),
    ("features.22", 92, 8, 3.5, "parts"), ("features.23", 100, 16, 7.5, "parts"),
    ("features.25", 132, 16, 7.5, "objects"), ("features.27", 164, 16, 7.5, "objects"),
    ("features.29", 196, 16, 7.5, "objects"), ("features.30", 212, 32, 15.5, "objects"),
]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _found(name: str, **kwargs: Any) -> Discovery:
    torch.manual_seed(0)
    return discover(get_model(name, weights=None, **kwargs).eval(), 224)


def _geometry(found: Discovery, names: list[str]) -> list[tuple[int, int]]:
    return [(found[n].receptive_field, found[n].stride) for n in names]


def test_alexnet_is_found_as_models_layers_describes_it() -> None:
    network = get_model("alexnet", weights=None).eval()
    found = discover(network, 224)
    assert found.default_layers == DEFAULT_LAYERS
    assert _geometry(found, list(DEFAULT_LAYERS)) == [(11, 4), (51, 8), (99, 16), (131, 16), (163, 16)]
    assert [found[n].stage for n in DEFAULT_LAYERS] == ["edges", "textures", "parts", "parts", "objects"]
    assert [layer.name for layer in found.layers] == [
        "features.1", "features.2", "features.4", "features.5", "features.7", "features.9", "features.11",
        "features.12", "avgpool", "classifier.2", "classifier.5", "classifier.6",
    ]
    table = describe_layers(network, 224)
    for layer in found.layers:
        expected = table[layer.name]
        assert (layer.receptive_field, layer.stride, layer.offset, layer.stage) == (
            expected.receptive_field, expected.stride, expected.offset, expected.stage)
    assert found.infos()["features.1"] == LayerInfo("features.1", "features.1 (ReLU after features.0)", "edges",
                                                    11, 4, 3.0)


def test_tiny_gets_the_stages_models_layers_gives_it_at_its_own_input_size() -> None:
    network = MiniAlexNet().eval()
    found, table = discover(network, 128), describe_layers(network, 128)
    assert [(found[n].stage, found[n].receptive_field) for n in DEFAULT_LAYERS] == [
        (table[n].stage, table[n].receptive_field) for n in DEFAULT_LAYERS]


def test_vgg16_layers_stages_and_fields_are_pinned() -> None:
    found = _found("vgg16")
    maps = [layer for layer in found.layers if layer.spatial and layer.name != "avgpool"]
    assert [(m.name, m.receptive_field, m.stride, m.offset, m.stage) for m in maps] == VGG16
    assert [layer.name for layer in found.layers if not layer.spatial] == ["classifier.1", "classifier.4",
                                                                          "classifier.6"]
    assert all(layer.stage == "classes" for layer in found.layers if not layer.spatial)
    # conv1_1 (the first), conv2_1, conv3_2, conv4_3 and conv5_3 (the last of each stage), then the middle
    # of the widest gap: conv4_1, between conv3_2 and conv4_3 (four convolutions apart).
    assert found.default_layers == ("features.1", "features.6", "features.13", "features.18", "features.22",
                                    "features.29")


def test_resnet18_stem_and_residual_blocks() -> None:
    found = _found("resnet18")
    blocks = [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    assert [layer.name for layer in found.layers] == ["relu", "maxpool", *blocks, "avgpool", "fc"]
    assert _geometry(found, ["relu", "maxpool", *blocks]) == [
        (7, 2), (11, 4), (27, 4), (43, 4), (67, 8), (99, 8), (147, 16), (211, 16), (307, 32), (435, 32)]
    assert {found[n].offset for n in ["relu", "maxpool", *blocks]} == {0.0}
    assert found["fc"].stage == "classes" and found["fc"].shape == (1000,)


def test_a_served_network_is_found_the_same_under_inference_mode() -> None:
    torch.manual_seed(0)
    network = get_model("resnet18", weights=None).eval()
    plain = discover(network, 224)
    for param in network.parameters():
        param.requires_grad_(False)
    network = network.to(memory_format=torch.channels_last)  # as the registry serves networks
    torch.set_num_threads(2)
    try:
        with torch.inference_mode():
            served = discover(network, 224)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    assert served == plain


def test_densenet_dense_blocks_and_transitions() -> None:
    found = _found("densenet121")
    names = ["features.relu0", "features.pool0", "features.denseblock1", "features.transition1",
             "features.denseblock2", "features.transition2", "features.denseblock3", "features.transition3",
             "features.denseblock4", "features.norm5"]
    assert [layer.name for layer in found.layers] == [*names, "classifier"]
    # Each dense layer's 3x3 adds 2 x the stride: 6, 12, 24 and 16 layers at strides 4, 8, 16 and 32.
    assert _geometry(found, names) == [
        (7, 2), (11, 4), (59, 4), (63, 8), (255, 8), (263, 16), (1031, 16), (1047, 32), (2071, 32), (2071, 32)]


def test_every_module_inside_a_dense_layer_can_be_asked_for_and_is_placed() -> None:
    # A dense layer takes a list of maps (all its block made so far), so each module in it is
    # placed through that list: where its concatenation sits (the widest part's field).
    torch.manual_seed(0)
    network = get_model("densenet121", weights=None).eval()
    found = discover(network, 224)
    every = every_layer(network, found)
    assert set(every) == {name for name, _ in network.named_modules() if name}
    block1 = "features.denseblock1"
    # The block's input is pool0's output (11, stride 4); each 3x3 convolution adds 2 x 4.
    assert [(every[f"{block1}.denselayer1.{m}"].receptive_field, every[f"{block1}.denselayer1.{m}"].stride)
            for m in ("norm1", "conv1", "conv2")] == [(11, 4), (11, 4), (19, 4)]
    assert [every[f"{block1}.denselayer{i}"].receptive_field for i in range(1, 7)] == [19, 27, 35, 43, 51, 59]
    # Layer 1 of block 2 sees transition 1's maps, 63 pixels at stride 8 and offset 2.
    first = every["features.denseblock2.denselayer1.norm1"]
    assert (first.receptive_field, first.stride, first.offset) == (63, 8, 2.0)
    # The last dense layer, placed through its list, ends where the gradient probe puts its
    # whole block: two ways to the same 1031 pixels at stride 16.
    last = every["features.denseblock3.denselayer24"]
    assert (last.receptive_field, last.stride, last.offset) == (found["features.denseblock3"].receptive_field,
                                                                found["features.denseblock3"].stride,
                                                                found["features.denseblock3"].offset)
    assert every["features.denseblock1.denselayer3.conv2"].stage == "edges"


def test_googlenet_with_transform_input_and_inception_blocks() -> None:
    found = _found("googlenet", transform_input=True, aux_logits=False, init_weights=False)
    inceptions = ["inception3a", "inception3b", "inception4a", "inception4b", "inception4c", "inception4d",
                  "inception4e", "inception5a", "inception5b"]
    assert _geometry(found, ["conv1", "maxpool1", "conv3", "maxpool2", *inceptions]) == [
        (7, 2), (11, 4), (19, 4), (27, 8), (43, 8), (59, 8), (107, 16), (139, 16), (171, 16), (203, 16),
        (235, 16), (315, 32), (379, 32)]
    assert found["maxpool1"].offset == 2.0  # ceil-mode pooling without padding shifts the grid by one pixel


def test_squeeze_and_excitation_does_not_make_every_unit_see_everything() -> None:
    found = _found("mobilenet_v3_small")
    names = ["features.0", "features.1", "features.3", "features.4", "features.9", "features.11"]
    assert _geometry(found, names) == [(3, 2), (7, 4), (31, 8), (63, 16), (383, 32), (639, 32)]
    effnet = _found("efficientnet_b0")
    assert _geometry(effnet, ["features.1.0", "features.2.1", "features.3.0", "features.4.2"]) == [
        (7, 2), (19, 4), (35, 8), (147, 16)]


def test_convnext_stages() -> None:
    found = _found("convnext_tiny")
    assert _geometry(found, ["features.0", "features.1.0", "features.1.2", "features.2", "features.5.8",
                             "features.7.2"]) == [(4, 4), (28, 4), (76, 4), (80, 8), (1096, 16), (1688, 32)]
    assert found["features.0"].offset == 1.5 and found["features.2"].offset == 3.5


@pytest.mark.parametrize("found", ["resnet18", "mobilenet_v3_small", "convnext_tiny"], indirect=True)
def test_the_default_view_spreads_over_the_stages(found: Discovery) -> None:
    names = [layer.name for layer in found.layers]
    assert 5 <= len(found.default_layers) <= 8
    assert [names.index(n) for n in found.default_layers] == sorted(names.index(n) for n in found.default_layers)
    assert {found[n].stage for n in found.default_layers} == set(STAGES[:-1])
    stages = [STAGES.index(layer.stage) for layer in found.layers]
    assert stages == sorted(stages)


@pytest.fixture
def found(request: pytest.FixtureRequest) -> Discovery:
    return _found(request.param)


class Gathered(nn.Module):
    """A 1x1 convolution plus a functional 5x5 max pooling: the field is the pooling's 5."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x) + F.max_pool2d(x, 5, stride=1, padding=2))


class Gated(nn.Module):
    """A 3x3 convolution scaled by a gate made from the whole map (squeeze-and-excitation's shape)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * torch.sigmoid(x.mean((2, 3), keepdim=True))


class Mixing(nn.Module):
    """Every position attends to every other: no patch to speak of."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2)
        weights = torch.softmax(flat.transpose(1, 2) @ flat, dim=-1)
        return (flat @ weights.transpose(1, 2)).view_as(x) + x


class Custom(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 5, stride=2, padding=1)
        self.relu = nn.ReLU()  # shared by two places: never offered
        self.block1 = Gathered(8)
        self.blocks = nn.ModuleList([Gated(8), Gathered(8)])
        self.pool = nn.AvgPool2d(2)
        self.mixing = Mixing()
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block1(self.relu(self.stem(x)))
        x = F.avg_pool2d(x, 3, stride=1, padding=1)  # between two blocks, outside any module
        for block in self.blocks:
            x = block(x)
        x = self.mixing(self.relu(self.pool(x)))
        return self.fc(x.mean((2, 3)))


def test_a_custom_networks_containers_are_found_and_placed() -> None:
    torch.manual_seed(0)
    network = Custom().train()
    before = {k: v.clone() for k, v in network.state_dict().items()}
    found = discover(network, 48)
    # stem: 5x5 stride 2 padding 1 -> field 5, stride 2, offset 2 - 1 = 1; block1 adds (5 - 1) x 2;
    # the functional 3x3 pooling adds 2 x 2; blocks.0 (3x3) 2 x 2; blocks.1 (5x5 pooling) 4 x 2;
    # the 2x2 pooling 1 x 2 and offset 0.5 x 2. The mixing block sees everything: not offered.
    assert [(layer.name, layer.receptive_field, layer.stride, layer.offset) for layer in found.layers] == [
        ("stem", 5, 2, 1.0), ("block1", 13, 2, 1.0), ("blocks.0", 21, 2, 1.0), ("blocks.1", 29, 2, 1.0),
        ("pool", 31, 4, 2.0), ("fc", 48, 48, 23.5),
    ]
    assert found["block1"].title == "block1 (Gathered)" and found["fc"].stage == "classes"
    assert network.training and all(m.training for m in network.modules())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in network.modules())
    assert all(torch.equal(before[k], v) for k, v in network.state_dict().items())


def test_the_probe_measures_a_plain_chain_as_its_kernels_say() -> None:
    chain = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # field 4, stride 2, offset 0.5
        nn.Conv2d(4, 4, 3, dilation=2, padding="same"),  # + 4 x 2
        nn.Conv2d(4, 4, 4, stride=2),  # + 3 x 2, stride 4, offset 0.5 + 1.5 x 2
    )
    geometry = measure(chain, 3, (40, 40))
    assert geometry is not None
    assert (geometry.receptive_field, geometry.stride, geometry.offset) == (18, 4, 3.5)
    inner = measure(chain, 3, (40, 40), Target("3", where="input"))
    assert inner is not None and (inner.receptive_field, inner.stride, inner.offset) == (4, 2, 0.5)


class Deep(nn.Module):
    """Seventy 3x3 convolutions and a skip: a field of 141 whose rim gradient would be about 3**-70."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1) for _ in range(70)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x) + x


def test_a_deep_block_keeps_its_rim_in_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    dtypes: list[torch.dtype] = []

    def recording(module: nn.Module, dtype: torch.dtype = torch.float32, seed: int = 0) -> nn.Module:
        dtypes.append(dtype)
        return real_copy(module, dtype, seed)

    real_copy = probe.positive_copy
    monkeypatch.setattr(probe, "positive_copy", recording)
    geometry = measure(Deep(), 1, (80, 80))
    assert geometry is not None and (geometry.receptive_field, geometry.stride) == (141, 1)
    assert dtypes == [torch.float32]  # no float64 rerun: the rim never came near float32's floor
