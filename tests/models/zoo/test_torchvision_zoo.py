"""torchvision's classification models by name: built as torchvision builds them, loaded from files the test writes.

Every network here has random weights saved under torchvision's real file names in a
temporary TORCH_HOME, and goes through the real loading path (torchvision's builder, our
reader, a strict load); downloading is made to fail loudly for the whole module, so a test
that reached for the network could not pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision.models
from safetensors.torch import save_file
from torch import nn
from torchvision.models import get_model, get_model_weights

from models.capture import capture
from models.discovery import discover
from models.zoo import torchvision_zoo as zoo
from tests.conftest import scene

# name -> (torchvision's file name, the builder's own arguments when it is given weights, seed)
SAVED: dict[str, tuple[str, dict[str, Any], int]] = {
    "resnet18": ("resnet18-f37072fd.pth", {}, 1),
    "mobilenet_v3_small": ("mobilenet_v3_small-047dcff4.pth", {}, 2),
    "convnext_tiny": ("convnext_tiny-983f1562.pth", {}, 3),
    "densenet121": ("densenet121-a639ec97.pth", {}, 4),
    "efficientnet_b0": ("efficientnet_b0_rwightman-7f5810bc.pth", {}, 5),
    # GoogLeNet's builder, given weights: transform_input and the auxiliary heads on, no init.
    "googlenet": ("googlenet-1378be20.pth", {"transform_input": True, "aux_logits": True, "init_weights": False}, 6),
}
OLD_DENSE_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))([12])\.(.*)$")


def _no_download(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("a test tried to download weights")


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Small pictures run on one thread: a busy second core cannot then slow every op down."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh TORCH_HOME for the module; downloads fail."""
    home = tmp_path_factory.mktemp("torch-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(home))
        patch.setattr(torch.hub, "_hub_dir", None)  # a set_dir() elsewhere would win over TORCH_HOME
        patch.setattr(torch.hub, "load_state_dict_from_url", _no_download)
        patch.setattr(torchvision.models._api, "load_state_dict_from_url", _no_download)
        yield home


def _old_densenet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """DenseNet's state dict as its published file has it: 'norm.1' for 'norm1', no batch counters."""
    old = {}
    for key, value in state.items():
        match = OLD_DENSE_KEY.match(key)
        if match and key.endswith("num_batches_tracked"):
            continue  # the old files predate the counter
        old[f"{match[1]}.{match[2]}.{match[3]}" if match else key] = value
    return old


@pytest.fixture(scope="module")
def saved(torch_home: Path) -> dict[str, nn.Module]:
    """The reference networks, each saved to torchvision's cache under its real file name."""
    networks = {}
    for name, (filename, kwargs, seed) in SAVED.items():
        torch.manual_seed(seed)
        network = get_model(name, weights=None, **kwargs).eval()
        state = network.state_dict()
        if name == "densenet121":
            state = _old_densenet_keys(state)
            assert "features.denseblock1.denselayer1.norm.1.weight" in state
        path = torch_home / "hub" / "checkpoints" / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, path)
        networks[name] = network
    return networks


@pytest.fixture(scope="module")
def loaded(saved: dict[str, nn.Module]) -> dict[str, zoo.LoadedModel]:
    return {name: zoo.load(name) for name in saved}


def test_the_names_are_torchvisions_classification_models() -> None:
    names = zoo.classification_models()
    assert len(names) == 80 and len(set(names)) == 80
    for name in ("alexnet", "resnet18", "vgg16", "densenet121", "googlenet", "inception_v3", "convnext_tiny",
                 "efficientnet_b0", "mobilenet_v3_small", "regnet_y_400mf", "vit_b_16", "swin_t"):
        assert name in names
    for other in ("fasterrcnn_resnet50_fpn", "fcn_resnet50", "r3d_18", "raft_large", "quantized_resnet18"):
        assert other not in names
    with pytest.raises(zoo.UnknownModel, match="resnet9000"):
        zoo.spec("resnet9000")


def test_weights_live_in_torchvisions_cache_under_their_real_names(torch_home: Path) -> None:
    for name, (filename, _kwargs, _seed) in SAVED.items():
        assert zoo.weights_file(name) == torch_home / "hub" / "checkpoints" / filename
    assert zoo.weights_file("vgg16") == torch_home / "hub" / "checkpoints" / "vgg16-397923af.pth"


def test_hub_set_dir_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    torch.hub.set_dir(str(tmp_path / "elsewhere"))
    assert zoo.weights_file("resnet18") == tmp_path / "elsewhere" / "checkpoints" / "resnet18-f37072fd.pth"


@pytest.mark.parametrize("name", sorted(SAVED))
def test_the_loaded_network_computes_the_saved_networks_logits(
    name: str, saved: dict[str, nn.Module], loaded: dict[str, zoo.LoadedModel]
) -> None:
    model = loaded[name]
    assert model.weights_path == zoo.weights_file(name)
    assert not model.network.training
    picture = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected, got = saved[name](picture), model.network(picture)
    assert got.shape == (2, 1000)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert model.spec.classes[:3] == ("tench", "goldfish", "great white shark") and len(model.spec.classes) == 1000


def test_googlenet_is_built_as_for_its_weights_and_drops_the_untrained_heads(
    loaded: dict[str, zoo.LoadedModel],
) -> None:
    network: Any = loaded["googlenet"].network
    assert network.transform_input is True
    assert network.aux_logits is False and network.aux1 is None and network.aux2 is None


def test_densenets_old_keys_are_renamed_as_torchvision_does(torch_home: Path) -> None:
    state = torch.load(zoo.weights_file("densenet121"), weights_only=True)
    assert any(".norm.1." in key for key in state) and not any(".norm1." in key for key in state)


def test_the_preprocessing_is_the_weights_own(loaded: dict[str, zoo.LoadedModel]) -> None:
    picture = scene(300, 260, seed=3)
    for name, model in loaded.items():
        expected = get_model_weights(name).DEFAULT.transforms()(picture)
        assert torch.equal(model.spec.preprocess(picture), expected)
    resnet, efficientnet = loaded["resnet18"].spec, loaded["efficientnet_b0"].spec
    assert (resnet.input_size, resnet.resize_size) == (224, 256)
    assert resnet.mean == (0.485, 0.456, 0.406) and resnet.std == (0.229, 0.224, 0.225)
    assert (efficientnet.input_size, efficientnet.resize_size) == (224, 256)
    assert zoo.spec("inception_v3").input_size == 299 and zoo.spec("inception_v3").resize_size == 342


def test_a_safetensors_file_given_explicitly_loads(saved: dict[str, nn.Module], tmp_path: Path) -> None:
    path = tmp_path / "my-resnet.safetensors"
    save_file({k: v.contiguous() for k, v in saved["resnet18"].state_dict().items()}, str(path))
    model = zoo.load("resnet18", path)
    assert model.weights_path == path
    picture = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.network(picture), saved["resnet18"](picture), rtol=0, atol=1e-6)


def test_a_missing_file_names_the_file_and_the_fetch_command(torch_home: Path, tmp_path: Path) -> None:
    with pytest.raises(zoo.WeightsMissing) as missing:
        zoo.load("resnet50")
    message = str(missing.value)
    assert str(torch_home / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth") in message
    assert "layerscope fetch-weights resnet50" in message and "\n" not in message
    with pytest.raises(zoo.WeightsMissing, match=r"nowhere\.pth"):
        zoo.build_network("resnet18", tmp_path / "nowhere.pth")


def test_a_file_that_is_not_the_models_weights_is_refused_clearly(
    saved: dict[str, nn.Module], tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(zoo.WeightsUnusable, match="could not be read"):
        zoo.build_network("resnet18", garbage)
    other = tmp_path / "resnet18-as-resnet34.pth"
    torch.save(saved["resnet18"].state_dict(), other)
    with pytest.raises(zoo.WeightsUnusable, match=r"does not fit resnet34: .*Missing key") as unfit:
        zoo.build_network("resnet34", other)
    assert len(str(unfit.value)) < 500


def test_the_listing_says_which_weights_are_on_this_machine(saved: dict[str, nn.Module]) -> None:
    listing = {model.name: model for model in zoo.available_models()}
    assert sorted(listing) == sorted(zoo.classification_models())
    assert {name for name, model in listing.items() if model.present} == set(SAVED)
    assert listing["resnet18"].weights == "ResNet18_Weights.IMAGENET1K_V1"
    assert listing["resnet50"].weights == "ResNet50_Weights.IMAGENET1K_V2"  # DEFAULT, not V1
    assert not listing["resnet50"].weights_file.exists()


def _plain_outputs(network: nn.Module, names: tuple[str, ...], picture: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of the named modules, with hooks written here rather than models/capture.py's."""
    modules = dict(network.named_modules())
    outputs: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Callable[[nn.Module, object, torch.Tensor], None]:
        return lambda _m, _i, out: outputs.__setitem__(name, out.detach().clone())

    handles = [modules[name].register_forward_hook(keep(name)) for name in names]
    try:
        with torch.no_grad():
            network(picture)
    finally:
        for handle in handles:
            handle.remove()
    return outputs


@pytest.mark.parametrize("name", sorted(SAVED))
def test_the_discovered_default_layers_are_the_modules_of_those_names(
    name: str, loaded: dict[str, zoo.LoadedModel]
) -> None:
    model = loaded[name]
    size = model.spec.input_size
    found = discover(model.network, size)
    assert 5 <= len(found.default_layers) <= 8
    picture = model.spec.preprocess(scene(300, 260, seed=5))[None]
    expected = _plain_outputs(model.network, found.default_layers, picture)
    with torch.no_grad(), capture(model.network, found.default_layers) as maps:
        model.network(picture)
    for layer in found.default_layers:
        assert maps[layer].shape[1:] == found[layer].shape
        torch.testing.assert_close(maps[layer], expected[layer], rtol=0, atol=0)
