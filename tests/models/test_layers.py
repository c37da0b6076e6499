"""Layer names, stages and geometry are pinned for both networks."""

from __future__ import annotations

from torch import nn
from torchvision.models import alexnet

from models.geometry import sequential_geometry
from models.layers import DEFAULT_LAYERS, describe_layers
from models.nets import MiniAlexNet

ALEXNET_NAMES = [
    "features", *[f"features.{i}" for i in range(13)], "avgpool",
    "classifier", *[f"classifier.{i}" for i in range(7)],
]


def test_both_networks_have_torchvisions_exact_module_names() -> None:
    torchvision_names = [n for n, _ in alexnet().named_modules() if n]
    assert torchvision_names == ALEXNET_NAMES
    assert [n for n, _ in MiniAlexNet().named_modules() if n] == ALEXNET_NAMES


def test_default_layers_titles_and_stages_are_pinned() -> None:
    for net, size in ((alexnet(), 224), (MiniAlexNet(), 128)):
        infos = describe_layers(net, size)
        assert [(infos[n].name, infos[n].title, infos[n].stage) for n in DEFAULT_LAYERS] == [
            ("features.1", "conv1", "edges"),
            ("features.4", "conv2", "textures"),
            ("features.7", "conv3", "parts"),
            ("features.9", "conv4", "parts"),
            ("features.11", "conv5", "objects"),
        ]
        assert infos["classifier.6"].stage == "classes"


def test_alexnet_receptive_fields_match_the_published_values() -> None:
    infos = describe_layers(alexnet(), 224)
    # The well-known AlexNet receptive fields and strides (conv1..conv5).
    assert [(infos[n].receptive_field, infos[n].stride) for n in DEFAULT_LAYERS] == [
        (11, 4), (51, 8), (99, 16), (131, 16), (163, 16),
    ]


def test_geometry_on_a_hand_made_chain() -> None:
    chain = nn.Sequential(
        nn.Conv2d(1, 1, 3, stride=1, padding=1),  # rf 3, jump 1, offset 0
        nn.MaxPool2d(2, 2),  # rf 4, jump 2, offset 0.5
        nn.Conv2d(1, 1, 3, stride=2, padding=0),  # rf 8, jump 4, offset 2.5
    )
    geo = sequential_geometry(chain, "f")
    assert [(g.receptive_field, g.stride, g.offset) for g in geo.values()] == [
        (3, 1, 0.0), (4, 2, 0.5), (8, 4, 2.5),
    ]
