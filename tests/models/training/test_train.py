"""Training: a few steps lower the loss, BatchNorm folds exactly, a tiny run writes everything."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from models import world
from models.nets import MiniAlexNet, NetConfig
from models.training import train
from models.zoo.tinyweights import META_KEYS, WEIGHTS_DIR, load_checkpoint, load_tiny, read_meta

# conv4 keeps 12 units: the shipped recipe gives each of the 12 part types one of them.
TINY = train.TrainConfig(input_size=64, steps=6, batch_size=22, widths=(8, 8, 8, 12, 8), conv1_kernel=5,
                         conv1_stride=2, hidden=16, workers=0, threads=1, val_images=22, val_every=3)


def test_a_few_steps_lower_the_loss() -> None:
    torch.manual_seed(0)
    model = train.BNTrainNet(MiniAlexNet(replace(TINY, dropout=0.0).net_config()))
    images, labels, _ = world.generate_batch(1, 0, 22, 64)
    x = train.normalize(torch.from_numpy(images).permute(0, 3, 1, 2))
    y = torch.from_numpy(labels)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    losses = []
    for _ in range(15):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_folded_batchnorm_computes_the_same_function() -> None:
    torch.manual_seed(1)
    model = train.BNTrainNet(MiniAlexNet(NetConfig(widths=(4, 6, 6, 6, 5), conv1_kernel=5, conv1_stride=2, hidden=8)))
    with torch.no_grad():  # BN statistics far from the identity, so folding matters
        for bn in model.bns:
            assert isinstance(bn, nn.BatchNorm2d)
            assert bn.running_mean is not None and bn.running_var is not None
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    model.eval()
    folded = train.fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), folded(x), atol=1e-4)


def test_schedule_warms_up_then_decays() -> None:
    cfg = replace(TINY, steps=100, lr=0.1, warmup_fraction=0.1)
    assert train.lr_at(0, cfg) < train.lr_at(9, cfg) == 0.1
    assert train.lr_at(99, cfg) < 0.01
    assert train.checkpoint_steps(1000) == {"init": 0, "1pct": 10, "10pct": 100, "final": 1000}


def test_tiny_run_writes_weights_metadata_and_snapshots(tmp_path) -> None:
    cfg = replace(TINY, out_dir=str(tmp_path))
    meta = train.train(cfg, progress=False)
    assert tuple(json.loads((tmp_path / "tiny.json").read_text())) == META_KEYS
    model, loaded = load_tiny(tmp_path)
    assert loaded["sha256"] == meta["sha256"] and loaded["input_size"] == 64
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert [c["name"] for c in meta["checkpoints"]] == ["init", "1pct", "10pct", "final"]
    for c in meta["checkpoints"]:
        snap = load_checkpoint(tmp_path / c["file"])
        assert isinstance(snap, MiniAlexNet)
    # The final snapshot is the shipped network (up to fp16 rounding of the snapshot).
    final = load_file(str(tmp_path / meta["checkpoints"][-1]["file"]))
    weights = model.state_dict()
    assert all(torch.allclose(final[k].float(), weights[k], atol=1e-2, rtol=1e-2) for k in weights)
    assert (tmp_path / "tiny-training.png").stat().st_size > 1000


def test_main_parses_arguments(tmp_path) -> None:
    cfg = train.parse_args(["--steps", "7", "--input-size", "160", "--out-dir", str(tmp_path), "--no-progress"])
    assert (cfg.steps, cfg.input_size, cfg.out_dir, cfg.extra["progress"]) == (7, 160, str(tmp_path), False)
    assert cfg.widths == train.TrainConfig().widths  # the shipped shape by default


def test_network_shape_flags(tmp_path) -> None:
    cfg = train.parse_args(["--widths", "32,64,96,96,128", "--conv1", "7,2,3", "--input-size", "128"])
    net = cfg.net_config()
    assert net.widths == (32, 64, 96, 96, 128)
    assert (net.conv1_kernel, net.conv1_stride, net.conv1_padding) == (7, 2, 3)
    with pytest.raises(SystemExit):
        train.parse_args(["--conv1", "7,2"])


def test_recipe_flags_reach_the_network() -> None:
    cfg = train.parse_args(["--dropout", "0.3", "--pool-output", "1", "--batchnorm"])
    net = MiniAlexNet(cfg.net_config())
    assert cfg.batchnorm and net.config.dropout == 0.3
    assert isinstance(net.avgpool, nn.AdaptiveAvgPool2d) and net.avgpool.output_size == (1, 1)
    first = net.classifier[1]
    assert isinstance(first, nn.Linear) and first.in_features == cfg.widths[-1]  # one value per conv5 unit
    assert not train.parse_args([]).batchnorm  # the shipped recipe trains without BatchNorm
    assert not train.parse_args(["--no-batchnorm"]).batchnorm
    assert train.parse_args([]).drop_parts == 0.0  # the shipped recipe draws every part
    shipped = train.parse_args([])  # and also says where the parts are, each part type in a unit given to it
    assert (shipped.parts_task, shipped.parts_weight, shipped.parts_readout, shipped.parts_dropout) == (
        "where", 1.0, "assigned", 0.0)
    assert train.parse_args(["--drop-parts", "0.5"]).drop_parts == 0.5


def test_without_batchnorm_the_trained_net_is_the_shipped_net() -> None:
    torch.manual_seed(2)
    net = MiniAlexNet(NetConfig(widths=(4, 6, 6, 6, 5), conv1_kernel=5, conv1_stride=2, hidden=8))
    train.he_init(net)
    model = train.BNTrainNet(net, batchnorm=False)
    assert len(model.bns) == 0 and not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    # He initialization: weight variance 2 / fan-in, so ReLU activations keep their scale.
    fan_in = convs[2].weight[0].numel()
    assert abs(convs[2].weight.var().item() * fan_in / 2 - 1) < 0.25
    last = net.classifier[-1]
    assert isinstance(last, nn.Linear) and last.weight.std().item() < 0.02 and not last.bias.any()
    model.eval()
    folded = train.fold_batchnorm(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), folded(x)) and torch.equal(net(x), folded(x))


def test_parts_present_counts_visible_pixels_of_each_part_type() -> None:
    whole = world.generate(21, 6, 128, post=False)  # a face
    dropped = world.generate(21, 6, 128, post=False, drop_parts=1.0)
    for s in (whole, dropped):
        present = train.parts_present(s)
        assert present.shape == (len(world.PARTS),)
        for k, p in enumerate(world.PARTS):
            assert present[k].item() == float(int(s.part_masks[p].sum()) >= train.PRESENT_PIXELS)
    names = {p for k, p in enumerate(world.PARTS) if train.parts_present(whole)[k]}
    assert names == {"eye", "mouth", "ear", "nose"}  # what a face is drawn with
    assert train.parts_present(dropped).sum() < train.parts_present(whole).sum()


def test_tapped_forward_gives_the_logits_and_the_layers_maps() -> None:
    torch.manual_seed(3)
    net = MiniAlexNet(NetConfig(widths=(4, 6, 6, 7, 5), conv1_kernel=5, conv1_stride=2, hidden=8))
    train.he_init(net)
    model = train.BNTrainNet(net, batchnorm=False).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits, maps = model.forward_tapped(x, 4)
        assert torch.equal(logits, net(x))
        # conv4's ReLU is features.9 in torchvision AlexNet's layout.
        assert torch.equal(maps, net.features[:10](x))
        _, maps2 = model.forward_tapped(x, 2)
        assert torch.equal(maps2, net.features[:5](x))
    with pytest.raises(AssertionError):
        model.forward_tapped(x, 6)


def test_parts_readout_reads_each_units_largest_value() -> None:
    readout = train.PartsReadout(units=3, parts=2)
    with torch.no_grad():
        readout.linear.weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [0.0, -1.0, 0.0]]))
        readout.linear.bias.copy_(torch.tensor([0.5, 0.0]))
    maps = torch.zeros(1, 3, 5, 5)
    maps[0, 0, 4, 1] = 3.0  # where a value is does not matter, only how large
    maps[0, 1, 0, 0] = 1.0
    maps[0, 2, 2, 2] = 0.25
    assert torch.equal(readout(maps), torch.tensor([[3.0 + 0.5 + 0.5, -1.0]]))


def test_naming_parts_trains_the_readout_and_ships_the_plain_network(tmp_path) -> None:
    cfg = replace(TINY, out_dir=str(tmp_path), parts_task="names", parts_weight=1.0, parts_layer=3, parts_l1=1e-3,
                  drop_parts=0.3)
    meta = train.train(cfg, progress=False)
    history = json.loads((tmp_path / "tiny-history.json").read_text())
    assert len(history["parts_loss"]) == len(history["loss"]) > 0
    assert meta["train_config"]["parts_weight"] == 1.0 and meta["train_config"]["parts_layer"] == 3
    model, _ = load_tiny(tmp_path)
    # The readout is a training aid: the shipped weights are exactly a MiniAlexNet's.
    assert set(load_file(str(tmp_path / "tiny.safetensors"))) == set(MiniAlexNet(cfg.net_config()).state_dict())
    assert isinstance(model, MiniAlexNet)


def test_naming_parts_lowers_the_parts_loss() -> None:
    torch.manual_seed(4)
    net = MiniAlexNet(replace(TINY, dropout=0.0).net_config())
    train.he_init(net)
    model = train.BNTrainNet(net, batchnorm=False)
    readout = train.PartsReadout(TINY.widths[3])
    samples = [world.generate(1, i, 64, drop_parts=0.5) for i in range(22)]
    x = train.normalize(torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2))
    present = torch.stack([train.parts_present(s) for s in samples])
    opt = torch.optim.SGD([*model.parameters(), *readout.parameters()], lr=0.05, momentum=0.9)
    losses = []
    for _ in range(40):
        _, maps = model.forward_tapped(x, 4)
        loss = nn.functional.binary_cross_entropy_with_logits(readout(maps), present)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # Below the best the readout could do without looking (each part type's base rate), so
    # the units' maps, not the readout's biases alone, carry which parts are in the picture.
    rate = present.mean(0).clamp(1e-6, 1 - 1e-6)
    blind = nn.functional.binary_cross_entropy(rate.expand_as(present), present).item()
    assert losses[-1] < 0.8 * blind, (losses, blind)


def test_parts_flags(tmp_path) -> None:
    cfg = train.parse_args(["--parts-task", "where", "--parts-weight", "0.5", "--parts-layer", "3",
                            "--parts-l1", "0.002", "--parts-dropout", "0.3"])
    assert (cfg.parts_task, cfg.parts_weight, cfg.parts_layer, cfg.parts_l1, cfg.parts_dropout) == (
        "where", 0.5, 3, 0.002, 0.3)
    assert train.parse_args(["--parts-task", "names", "--parts-weight", "1"]).parts_task == "names"
    off = train.parse_args(["--parts-weight", "0"])
    assert (off.parts_task, off.parts_weight) == ("", 0.0)  # class labels alone, whatever the shipped recipe
    shipped = train.parse_args([])
    default = train.TrainConfig()
    assert (shipped.parts_task, shipped.parts_weight) == (default.parts_task, default.parts_weight)
    for bad in (["--parts-layer", "6"], ["--parts-task", "what"], ["--parts-task", "where", "--parts-weight", "0"]):
        with pytest.raises(SystemExit):
            train.parse_args(bad)
    with pytest.raises(ValueError, match="parts_task"):
        train.train(replace(TINY, parts_task="what", parts_weight=1.0, out_dir=str(tmp_path)), progress=False)


def test_layer_alignment_is_where_the_layers_pixels_sit() -> None:
    net = MiniAlexNet(train.TrainConfig().net_config())
    align, side = train.layer_alignment(net, 4, 128)
    # conv1 7x7 stride 2 pad 3, pool 3/2, conv2 5x5 pad 2, pool 3/2, conv3 and conv4 3x3 pad 1:
    # jumps before each layer 1, 2, 4, 4, 8, 8; the first centre moves (k - 1) / 2 - padding of them.
    assert (align.stride, align.input_size, side) == (8, 128, 15)
    assert align.offset == 1 * 0 + 2 * 1 + 4 * 0 + 4 * 1 + 8 * 0 + 8 * 0
    assert net.features[:10](torch.zeros(1, 3, 128, 128)).shape[-1] == side


def test_where_targets_are_each_parts_share_of_a_pixels_window() -> None:
    net = MiniAlexNet(train.TrainConfig().net_config())
    align, side = train.layer_alignment(net, 4, 128)
    sample = world.generate(21, 6, 128, post=False)  # a face: eyes, mouth, ears, nose
    target = train.parts_where(sample, align, side)
    assert target.shape == (len(world.PARTS), side, side)
    # An inner pixel's window is [c - 4, c + 4] around its centre c; input pixel j spans
    # [j - 0.5, j + 0.5], so the two end pixels count half.
    weights = np.array([0.5] + [1.0] * 7 + [0.5]) / 8
    checked = 0
    for k, part in enumerate(world.PARTS):
        mask = sample.part_masks[part].astype(np.float64)
        for i in range(1, side - 1):
            for j in range(1, side - 1):
                ci, cj = int(align.offset + i * align.stride), int(align.offset + j * align.stride)
                window = mask[ci - 4:ci + 5, cj - 4:cj + 5]
                expected = weights @ window @ weights
                assert abs(target[k, i, j].item() - expected) < 1e-5
                checked += int(expected > 0)
    assert checked > 10


def test_balanced_cross_entropy_weighs_a_parts_pixels_as_much_as_the_rest() -> None:
    target = torch.zeros(1, 2, 2, 2)
    target[0, 0, 0, 0] = 1.0  # part 0 in one pixel of four; part 1 absent from the batch
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 0, 0, 0], logits[0, 0, 1, 1] = 2.0, -1.0

    def bce(z: float, t: float) -> float:  # cross-entropy of sigmoid(z) against t, by hand
        p = 1 / (1 + math.exp(-z))
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    # Half the weight on the one part pixel, half on the mean of the three others.
    expected = (bce(2.0, 1) + (bce(0.0, 0) * 2 + bce(-1.0, 0)) / 3) / 2
    assert train.balanced_bce_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)
    # Soft targets (a part covering half a pixel's window) count by their share.
    half = target * 0.5
    expected = (0.5 * bce(2.0, 1) / 0.5 + (0.5 * bce(2.0, 0) + bce(0.0, 0) * 2 + bce(-1.0, 0)) / 3.5) / 2
    assert train.balanced_bce_loss(logits, half).item() == pytest.approx(expected, rel=1e-6)
    assert train.balanced_bce_loss(logits, torch.zeros_like(target)).item() == 0.0


def test_part_weights_make_a_weighted_mean_over_the_part_types_in_the_batch() -> None:
    target = torch.zeros(1, 3, 2, 2)
    target[0, 0, 0, 0] = 1.0
    target[0, 1, 1, 1] = 1.0  # part 2 absent: its weight must not count
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 1, 1, 1] = 3.0

    def bce(z: float, t: float) -> float:
        p = 1 / (1 + math.exp(-z))
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    part0 = (bce(0.0, 1) + bce(0.0, 0)) / 2
    part1 = (bce(3.0, 1) + bce(0.0, 0)) / 2
    weights = torch.tensor([1.0, 3.0, 100.0])
    assert train.balanced_bce_loss(logits, target, weights).item() == pytest.approx((part0 + 3 * part1) / 4, rel=1e-6)
    assert train.balanced_bce_loss(logits, target).item() == pytest.approx((part0 + part1) / 2, rel=1e-6)


def test_part_weights_follow_the_parts_areas_in_the_training_pictures() -> None:
    assert train.part_weights(1, 0.0, 128).tolist() == [1.0] * len(world.PARTS)
    images = 40
    samples = [world.generate(1, i, 128) for i in range(images)]
    mean_area = []
    for p in world.PARTS:  # mean over the pictures that show the part type
        shown = [float(s.part_masks[p].sum()) for s in samples if s.part_masks[p].any()]
        mean_area.append(sum(shown) / len(shown))
    raw = [a ** -0.5 for a in mean_area]
    expected = [round(r / (sum(raw) / len(raw)), 2) for r in raw]
    got = train.part_weights(1, 0.5, 128, images=images)
    assert got.tolist() == pytest.approx(expected, abs=0.006)
    # Smaller parts weigh more: the mouth (a few pixels) above the leaf (a large blob).
    assert got[world.PARTS.index("mouth")] > 1 > got[world.PARTS.index("leaf")]


def test_saying_where_parts_are_lowers_that_loss_from_the_start() -> None:
    """From a fresh He-initialized network, as a run starts (a soft-IoU loss stalled there)."""
    torch.manual_seed(5)
    cfg = train.TrainConfig()
    net = MiniAlexNet(cfg.net_config())
    train.he_init(net)
    model = train.BNTrainNet(net, batchnorm=False)
    align, side = train.layer_alignment(net, 4, 128)
    samples = [world.generate(1, i, 128) for i in range(22)]
    x = train.normalize(torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2))
    targets = torch.stack([train.parts_where(s, align, side) for s in samples])
    readout = train.PartsMapReadout(cfg.widths[3])
    opt = torch.optim.SGD([*model.parameters(), *readout.parameters()], lr=0.01, momentum=0.9)
    losses = []
    for _ in range(15):
        _, maps = model.forward_tapped(x, 4)
        loss = train.balanced_bce_loss(readout(maps), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # ln 2 is the least any constant answer can score (p = 1/2 everywhere): below it the
    # readout's maps follow the parts in the pictures.
    assert losses[-1] < 0.95 * math.log(2) < losses[0], losses


def test_saying_where_parts_are_trains_and_ships_the_plain_network(tmp_path) -> None:
    cfg = replace(TINY, out_dir=str(tmp_path), parts_task="where", parts_weight=1.0, parts_layer=4, parts_l1=1e-3)
    meta = train.train(cfg, progress=False)
    history = json.loads((tmp_path / "tiny-history.json").read_text())
    assert len(history["parts_loss"]) == len(history["loss"]) and history["parts_loss"][0] > 0
    assert meta["train_config"]["parts_task"] == "where"
    assert set(load_file(str(tmp_path / "tiny.safetensors"))) == set(MiniAlexNet(cfg.net_config()).state_dict())


def test_the_default_config_is_the_shipped_recipe() -> None:
    """`layerscope train` with no flags trains what ships (the card says so)."""
    shipped = read_meta(WEIGHTS_DIR)["train_config"]
    default = asdict(train.TrainConfig())
    for key in ("out_dir", "extra"):  # where a run writes, and per-run extras, are not the recipe
        shipped.pop(key, None)
        default.pop(key)
    assert shipped == json.loads(json.dumps(default))


def test_trained_on_says_what_the_network_was_taught() -> None:
    plain = train.trained_on(replace(train.TrainConfig(), parts_task="", parts_weight=0.0))
    assert "480,000" in plain and "world seed 1" in plain and "conv" not in plain
    where = train.trained_on(replace(train.TrainConfig(), parts_task="where", parts_weight=1.0, parts_readout="linear"))
    assert where.startswith(plain) and "conv4 was trained to say where each part type is" in where
    names = train.trained_on(replace(train.TrainConfig(), parts_task="names", parts_weight=1.0, parts_layer=5))
    assert "conv5" in names and "never where" in names
    one = train.trained_on(replace(train.TrainConfig(), parts_readout="one-unit"))
    assert "one unit the training chose" in one and "one unit" not in where


def test_the_one_unit_readout_learns_to_read_the_unit_that_finds_the_part() -> None:
    torch.manual_seed(0)
    target = (torch.rand(32, 1, 6, 6) > 0.7).float()
    maps = torch.rand(32, 5, 6, 6)  # four units of noise
    maps[:, 3] = target[:, 0] * 2.0  # unit 3 is where the part is
    readout = train.PartsUnitReadout(5, parts=1)
    cfg = replace(train.TrainConfig(), steps=300, parts_final_temperature=0.05)
    opt = torch.optim.SGD(readout.parameters(), lr=0.5)
    for step in range(cfg.steps):
        readout.temperature = train.select_temperature(step, cfg)
        loss = train.balanced_bce_loss(readout(maps), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert train.select_temperature(0, cfg) == 1.0
    assert train.select_temperature(cfg.steps, cfg) == pytest.approx(0.05)
    w = readout.weights()[0].detach()
    assert int(w.argmax()) == 3 and float(w[3]) > 0.99


def test_the_assigned_readout_reads_unit_k_for_part_k_alone() -> None:
    readout = train.PartsAssignedReadout(5, parts=3)
    with torch.no_grad():
        readout.log_gain.copy_(torch.log(torch.tensor([2.0, 3.0, 0.5])))
        readout.bias.copy_(torch.tensor([-1.0, 0.0, 4.0]))
    maps = torch.arange(2 * 5 * 2 * 2, dtype=torch.float32).view(2, 5, 2, 2)
    out = readout(maps)
    assert out.shape == (2, 3, 2, 2)
    for k, (gain, bias) in enumerate([(2.0, -1.0), (3.0, 0.0), (0.5, 4.0)]):
        assert torch.allclose(out[:, k], maps[:, k] * gain + bias)
    maps[:, 3:] = 1e6  # the units given no part type do not reach the readout
    assert torch.allclose(readout(maps), out)
    with pytest.raises(ValueError, match="at least 12 units"):
        train.PartsAssignedReadout(8)


def test_the_assigned_readout_trains_only_its_units() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 16, 3, padding=1)
    readout = train.PartsAssignedReadout(16)
    x = torch.randn(4, 3, 6, 6)
    target = (torch.rand(4, len(world.PARTS), 6, 6) > 0.8).float()
    train.balanced_bce_loss(readout(torch.relu(conv(x))), target).backward()
    assert conv.weight.grad is not None
    grad = conv.weight.grad.abs().sum(dim=(1, 2, 3))
    assert bool((grad[:12] > 0).all()) and bool((grad[12:] == 0).all())


def test_trained_on_names_the_assigned_units() -> None:
    text = train.trained_on(replace(train.TrainConfig(), parts_readout="assigned", parts_layer=4))
    assert "conv4 units 0-11" in text and "wheel, window, door" in text and "given to it before training" in text
