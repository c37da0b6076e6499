"""Train the embedded "tiny" MiniAlexNet on the parts world: ``layerscope train``.

Data is generated on the fly (one DataLoader worker) from a fixed world seed, so every
step sees fresh images and nothing is stored. The shipped recipe trains the plain
network, as AlexNet was (He init, dropout 0.5). With ``--batchnorm`` it trains with
BatchNorm after each convolution (faster, but fewer single-concept units), folded into the
convolution weights at the end, so the shipped network is exactly a :class:`MiniAlexNet`.

Snapshots of the whole (folded) network are kept before training and after 1 %, 10 %
and 100 % of the steps, so the page can show the first layer being learned.

``--parts-task names|where`` adds a second task about the parts (which are in the picture,
or where each one is), read from one conv layer through a readout that is dropped before
shipping. The shipped recipe says where each part is, from conv4, with dropout on the units the
readout reads (``--parts-dropout``); ``--parts-weight 0`` trains on the class labels alone. The
runs of each recipe are in the model card's *Runs tried*.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from models import world
from models.analysis import dissect
from models.analysis.dissect import CONV_LAYERS, Alignment
from models.analysis.probe import ideal_maps
from models.nets import MiniAlexNet, NetConfig
from models.zoo.tinyweights import META_KEYS, WEIGHTS_DIR, save_model, write_meta

# Seeds: the world seed for training; validation, evaluation and dissection use others.
TRAIN_WORLD_SEED = 1
VAL_WORLD_SEED = 7
PARTS_TASKS = ("names", "where")
CHECKPOINT_FRACTIONS = {"init": 0.0, "1pct": 0.01, "10pct": 0.10, "final": 1.0}


@dataclass
class TrainConfig:
    """Everything a run depends on; stored in tiny.json so a run can be repeated."""

    seed: int = 0
    world_seed: int = TRAIN_WORLD_SEED
    input_size: int = 128
    steps: int = 7500
    batch_size: int = 64
    lr: float = 0.03
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.05
    warmup_fraction: float = 0.1
    workers: int = 1
    threads: int = 2
    val_images: int = 330
    val_every: int = 400
    # 128 px with a 7x7 stride-2 conv1 gives 15x15 deep maps (the first shipped model,
    # 160 px with AlexNet's 11x11 stride-4 conv1, had 9x9) at about the same compute.
    widths: tuple[int, int, int, int, int] = (32, 64, 96, 96, 128)
    conv1_kernel: int = 7
    conv1_stride: int = 2
    conv1_padding: int = 3
    hidden: int = 256
    # AlexNet's own dropout: with it every object class gets a conv5 unit of its own; without
    # BatchNorm as well, some part types do too (measured: MODEL_CARD.md, "Runs tried").
    dropout: float = 0.5
    pool_output: int = 3
    # BatchNorm after each conv while training (folded away before shipping). Without it
    # the convolutions start from He initialization, which keeps ReLU activations in scale.
    batchnorm: bool = False
    # Training pictures that leave out a random subset of their object's part types
    # (world.generate's drop_parts), so that no single part can carry a class alone.
    drop_parts: float = 0.0
    # A second training task about the parts, read from one conv layer's units by a linear
    # readout that is dropped before shipping. "names": which part types are in the picture
    # (image-level labels, never where: each unit max-pooled over its map). "where": where
    # each part type is (its mask at the layer's resolution, one 1x1 readout, balanced
    # cross-entropy).
    parts_task: str = "where"
    parts_weight: float = 1.0  # 0 = no second task (class labels alone)
    parts_layer: int = 4  # which conv layer the readout reads (1-5)
    # L1 on the readout's weights, so each part type is read from few units.
    parts_l1: float = 0.001
    # Dropout on the units the readout reads (the readout's input only; the class path is
    # untouched). AlexNet's dropout before its classifier is what made single conv5 units
    # detect whole objects (the card's *Runs tried*); this is the same pressure on the parts
    # readout: no part type may be read from a code spread over units that only work together.
    parts_dropout: float = 0.0
    # Each part type's weight in the parts loss: its mean area (in pixels, where it shows)
    # to the power -parts_area_power, scaled to a mean of 1; 0 weighs every part type alike.
    # Balanced cross-entropy already stops a small part drowning in background, but a part
    # a few pixels wide still gives a unit little to be right about (see part_weights).
    parts_area_power: float = 0.0
    # "linear": each part type read from any mix of the layer's units (a 1x1 convolution).
    # "one-unit": each part type read from one unit, which training chooses (PartsUnitReadout:
    # a softmax over the units sharpened from temperature 1 to parts_final_temperature).
    # "assigned": part type k read from unit k of the layer alone (PartsAssignedReadout).
    parts_readout: str = "assigned"
    parts_final_temperature: float = 0.05
    out_dir: str = str(WEIGHTS_DIR)
    name: str = "tiny"
    extra: dict[str, Any] = field(default_factory=dict)

    def net_config(self) -> NetConfig:
        return NetConfig(num_classes=len(world.CLASSES), widths=self.widths,
                         conv1_kernel=self.conv1_kernel, conv1_stride=self.conv1_stride,
                         conv1_padding=self.conv1_padding, hidden=self.hidden, dropout=self.dropout,
                         pool_output=self.pool_output)


# The normalization the server applies too (torchvision ImageClassification); measured
# once on 2,000 parts-world images (seed 99, 192 px) and fixed here so it never drifts.
MEAN = [0.42, 0.418, 0.415]
STD = [0.234, 0.231, 0.232]


# A part type counts as in the picture when at least this many of its pixels show
# (at 128 px a smallest eye covers about 10); a part occluded down to a few pixels does not.
PRESENT_PIXELS = 8


def parts_present(sample: world.Sample) -> torch.Tensor:
    """1.0 for each part type (world.PARTS order) visible in the picture, else 0.0."""
    return torch.tensor([float(sample.part_masks[p].sum() >= PRESENT_PIXELS) for p in world.PARTS])


def parts_where(sample: world.Sample, align: Alignment, map_size: int) -> torch.Tensor:
    """K x h x h: each part type's share of every map pixel's stride-wide window (the
    layer's *ideal unit*, models/probe.py), the target of the "where" task."""
    masks = torch.from_numpy(np.stack([sample.part_masks[p] for p in world.PARTS]))[None]
    return ideal_maps(masks, align, map_size)[0]


class WorldDataset(Dataset[tuple[torch.Tensor, int, torch.Tensor]]):
    """Image ``i`` of world ``seed`` as uint8 CHW (normalized on the training side), its
    class and its part targets: ``part_targets(sample)`` (:func:`parts_present` or a
    :func:`parts_where`), or an empty tensor without a parts task (no work per image)."""

    def __init__(self, seed: int, length: int, size: int, offset: int = 0, drop_parts: float = 0.0,
                 part_targets: Callable[[world.Sample], torch.Tensor] | None = None) -> None:
        self.seed, self.length, self.size, self.offset = seed, length, size, offset
        self.drop_parts, self.part_targets = drop_parts, part_targets

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        s = world.generate(self.seed, self.offset + i, self.size, drop_parts=self.drop_parts)
        parts = self.part_targets(s) if self.part_targets is not None else torch.empty(0)
        return torch.from_numpy(s.image).permute(2, 0, 1).contiguous(), s.label, parts


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW -> normalized float, exactly as the server's preprocessing ends."""
    x = images.float().div_(255.0)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def he_init(net: MiniAlexNet) -> None:
    """Initialization for training without BatchNorm: He for every layer followed by a ReLU,
    so activations keep their scale through the depth, and zero biases."""
    weighted = [m for m in [*net.features, *net.classifier] if isinstance(m, nn.Conv2d | nn.Linear)]
    with torch.no_grad():
        for layer in weighted[:-1]:
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        # Small logits at the start: a first step cannot then push every ReLU dead.
        nn.init.normal_(weighted[-1].weight, std=0.01)
        for layer in weighted:
            assert layer.bias is not None
            layer.bias.zero_()


class BNTrainNet(nn.Module):
    """MiniAlexNet with BatchNorm after each conv, sharing the MiniAlexNet's modules.

    With ``batchnorm=False`` it is the MiniAlexNet itself (initialize it with :func:`he_init`).
    """

    def __init__(self, net: MiniAlexNet, batchnorm: bool = True) -> None:
        super().__init__()
        self.net = net
        layers: list[nn.Module] = []
        self.bns = nn.ModuleList()
        for mod in net.features:
            layers.append(mod)
            if batchnorm and isinstance(mod, nn.Conv2d):
                bn = nn.BatchNorm2d(mod.out_channels)
                self.bns.append(bn)
                layers.append(bn)
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.net.avgpool(x)
        return self.net.classifier(torch.flatten(x, 1))

    def forward_tapped(self, x: torch.Tensor, conv: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The logits and the maps of conv layer ``conv`` (1-5) after its ReLU."""
        tapped: torch.Tensor | None = None
        seen = 0
        for mod in self.features:
            x = mod(x)
            if isinstance(mod, nn.Conv2d):
                seen += 1
            elif isinstance(mod, nn.ReLU) and seen == conv and tapped is None:
                tapped = x  # later layers make new tensors, so this one stays as it is
        assert tapped is not None, f"no conv layer {conv}"
        x = self.net.avgpool(x)
        return self.net.classifier(torch.flatten(x, 1)), tapped


class PartsReadout(nn.Module):
    """Which part types a picture shows, read from one layer's units: each unit's largest
    value anywhere in the picture (so a unit says *whether*, and is never told *where*),
    then one linear layer. Used only while training."""

    def __init__(self, units: int, parts: int = len(world.PARTS)) -> None:
        super().__init__()
        self.linear = nn.Linear(units, parts)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.linear(maps.amax(dim=(2, 3)))


class PartsMapReadout(nn.Module):
    """Where each part type is, read from one layer's units at every map pixel: a 1x1
    convolution (one linear map of the units, the same everywhere). Used only while training."""

    def __init__(self, units: int, parts: int = len(world.PARTS)) -> None:
        super().__init__()
        self.linear = nn.Conv2d(units, parts, kernel_size=1)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.linear(maps)


# How many training pictures part_weights measures the parts' areas on (a few seconds).
AREA_IMAGES = 2000


def part_weights(world_seed: int, power: float, size: int, images: int = AREA_IMAGES) -> torch.Tensor:
    """Per part type (world.PARTS order): mean area where it shows ** -power, mean 1.

    Measured on the first ``images`` training pictures, so the weights are a function of
    the config alone, and rounded to two decimals so the metadata can say them plainly."""
    if power == 0:
        return torch.ones(len(world.PARTS))
    area = np.zeros(len(world.PARTS))
    seen = np.zeros(len(world.PARTS))
    for i in range(images):
        s = world.generate(world_seed, i, size)
        px = np.array([s.part_masks[p].sum() for p in world.PARTS], dtype=np.float64)
        area += px
        seen += px > 0
    w = (area / np.maximum(seen, 1)) ** -power
    return torch.tensor(np.round(w / w.mean(), 2), dtype=torch.float32)


class PartsUnitReadout(nn.Module):
    """Where each part type is, read from a single unit of the layer per part type: a
    softmax over the units (no unit chosen in advance: the training picks it), times a
    positive gain, plus a bias. ``temperature`` falls over training, so the mix becomes
    one unit and that unit alone must say where its part is. Used only while training."""

    def __init__(self, units: int, parts: int = len(world.PARTS)) -> None:
        super().__init__()
        self.select = nn.Parameter(torch.randn(parts, units) * 0.01)  # near-uniform, ties broken
        self.log_gain = nn.Parameter(torch.zeros(parts))
        self.bias = nn.Parameter(torch.zeros(parts))
        self.temperature = 1.0

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.select / self.temperature, dim=1)  # parts x units

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        mixed = torch.einsum("ku,buhw->bkhw", self.weights(), maps)
        return mixed * self.log_gain.exp().view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class PartsAssignedReadout(nn.Module):
    """Where each part type is, read from one unit given to it before training: part type
    k (world.PARTS order) is unit k of the layer, times a positive gain, plus a bias.

    Unlike :class:`PartsUnitReadout` no unit is shared or chosen: a softmax that starts as
    an even mix sends every unit the same pull towards all parts at once in the first
    steps, and two part types can settle on one unit (the *one unit per part* run's petal
    and leaf did). The other units get no pull from the parts task at all. Used only while
    training; what the taught units became is measured, like every unit, by dissection."""

    def __init__(self, units: int, parts: int = len(world.PARTS)) -> None:
        super().__init__()
        if units < parts:
            raise ValueError(f"{parts} part types need at least {parts} units, not {units}")
        self.parts = parts
        self.log_gain = nn.Parameter(torch.zeros(parts))
        self.bias = nn.Parameter(torch.zeros(parts))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        taught = maps[:, :self.parts]
        return taught * self.log_gain.exp().view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


READOUTS = ("linear", "one-unit", "assigned")


def select_temperature(step: int, cfg: TrainConfig) -> float:
    """Geometric from 1 at the start to cfg.parts_final_temperature at the last step."""
    return float(cfg.parts_final_temperature ** (step / max(1, cfg.steps)))


def balanced_bce_loss(logits: torch.Tensor, target: torch.Tensor,
                      weights: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pixel cross-entropy against each part type's share of the pixel, with the part's
    pixels and the rest weighted half and half over the batch, so a small part counts as
    much as a large one (plain cross-entropy would be nearly all background). Unlike a soft
    IoU it cannot stall: its gradient is p - t however sure the readout is. ``weights``:
    one per part type, for a weighted mean over the part types the batch shows."""
    pos = target.sum(dim=(0, 2, 3))
    neg = (1 - target).sum(dim=(0, 2, 3))
    on = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    off = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    present = pos > 0  # a part type absent from the whole batch says nothing
    per_part = ((target * on).sum(dim=(0, 2, 3)) / pos.clamp(min=1e-6)
                + ((1 - target) * off).sum(dim=(0, 2, 3)) / neg.clamp(min=1e-6)) / 2
    if not bool(present.any()):
        return logits.sum() * 0.0
    if weights is None:
        return per_part[present].mean()
    return (per_part * weights)[present].sum() / weights[present].sum()


def layer_alignment(net: MiniAlexNet, conv: int, input_size: int) -> tuple[Alignment, int]:
    """Where conv layer ``conv``'s map pixels sit on the input (the dissection's own
    alignment, so the "where" targets are its ideal units), and the map's side."""
    title = f"conv{conv}"
    relu = int(CONV_LAYERS[title].split(".")[1])  # "features.9" -> 9
    with torch.no_grad():
        side = net.features[:relu + 1](torch.zeros(1, 3, input_size, input_size)).shape[-1]
    return dissect.layer_alignment(net, input_size)[title], int(side)


def fold_batchnorm(model: BNTrainNet) -> MiniAlexNet:
    """A MiniAlexNet computing the same function in eval mode: BN folded into conv.

    conv(x)*g/sqrt(v+eps) + (b - m)*g/sqrt(v+eps) + beta, so w' = w*k, b' = (b-m)*k + beta.
    """
    src = model.net
    folded = MiniAlexNet(src.config)
    folded.load_state_dict(src.state_dict())
    convs = [m for m in folded.features if isinstance(m, nn.Conv2d)]
    if not model.bns:  # trained without BatchNorm: nothing to fold
        return folded.eval()
    with torch.no_grad():
        for conv, bn in zip(convs, model.bns, strict=True):
            assert isinstance(bn, nn.BatchNorm2d) and bn.running_var is not None and bn.running_mean is not None
            k = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.mul_(k.view(-1, 1, 1, 1))
            assert conv.bias is not None
            conv.bias.copy_((conv.bias - bn.running_mean) * k + bn.bias)
    return folded.eval()


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, batch: int = 128) -> np.ndarray:
    """Class indices for uint8 NHWC images."""
    model.eval()
    out = []
    for i in range(0, len(images), batch):
        x = normalize(torch.from_numpy(images[i:i + batch]).permute(0, 3, 1, 2))
        out.append(model(x).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up then cosine decay to zero."""
    warm = max(1, int(cfg.warmup_fraction * cfg.steps))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = (step - warm) / max(1, cfg.steps - warm)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))


def checkpoint_steps(steps: int) -> dict[str, int]:
    # Non-initial snapshots come after at least one step, even in a very short run.
    return {name: max(1, round(f * steps)) if f > 0 else 0 for name, f in CHECKPOINT_FRACTIONS.items()}


Readout = PartsReadout | PartsMapReadout | PartsUnitReadout | PartsAssignedReadout
PartTargets = Callable[[world.Sample], torch.Tensor]


def parts_task(cfg: TrainConfig, net: MiniAlexNet) -> tuple[Readout | None, PartTargets | None]:
    """The recipe's parts readout and each picture's part targets (None, None: class labels alone)."""
    if cfg.parts_weight > 0 and cfg.parts_task not in PARTS_TASKS:
        raise ValueError(f"parts_task must be one of {PARTS_TASKS}, not {cfg.parts_task!r}")
    if cfg.parts_readout not in READOUTS:
        raise ValueError(f"parts_readout must be one of {READOUTS}, not {cfg.parts_readout!r}")
    units = cfg.widths[cfg.parts_layer - 1]
    if cfg.parts_task == "names" and cfg.parts_weight > 0:
        return PartsReadout(units), parts_present
    if cfg.parts_task == "where" and cfg.parts_weight > 0:
        align, side = layer_alignment(net, cfg.parts_layer, cfg.input_size)
        readouts: dict[str, type[Readout]] = {"linear": PartsMapReadout, "one-unit": PartsUnitReadout,
                                              "assigned": PartsAssignedReadout}
        return readouts[cfg.parts_readout](units), partial(parts_where, align=align, map_size=side)
    return None, None


def optimizer(cfg: TrainConfig, model: nn.Module, readout: nn.Module | None) -> torch.optim.SGD:
    """SGD with Nesterov momentum; weight decay on weight matrices and kernels only."""
    params = [*model.named_parameters(), *(readout.named_parameters() if readout is not None else [])]
    # The unit selection's logits are not weights to shrink: decay would pull them back to a mix.
    decay = [p for n, p in params if p.ndim > 1 and n != "select"]
    no_decay = [p for n, p in params if p.ndim <= 1 or n == "select"]
    return torch.optim.SGD([{"params": decay, "weight_decay": cfg.weight_decay},
                            {"params": no_decay, "weight_decay": 0.0}],
                           lr=cfg.lr, momentum=cfg.momentum, nesterov=True)


def parts_loss_function(cfg: TrainConfig, device: str = "cpu") -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The parts task's loss: binary cross-entropy for names, balanced (and weighted) for where."""
    if cfg.parts_task == "names":
        return nn.BCEWithLogitsLoss()
    # No weights at all for power 0, so the loss is the plain mean over part types.
    weights = part_weights(cfg.world_seed, cfg.parts_area_power, cfg.input_size).to(device)
    return partial(balanced_bce_loss, weights=weights if cfg.parts_area_power else None)


class StepLosses(NamedTuple):
    logits: torch.Tensor
    class_loss: torch.Tensor
    parts_loss: torch.Tensor | None
    loss: torch.Tensor  # what is minimized: the class loss plus the weighted parts terms


def step_losses(cfg: TrainConfig, model: BNTrainNet, readout: Readout | None, x: torch.Tensor,
                labels: torch.Tensor, targets: torch.Tensor, step: int,
                class_loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                parts_loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> StepLosses:
    """One training step's forward pass and losses on normalized pictures ``x`` (``step``
    counts from 1). The one definition of a step: models.training.train and scripts.cuda_sweep call it."""
    if readout is None:
        logits = model(x)
        class_loss = class_loss_fn(logits, labels)
        return StepLosses(logits, class_loss, None, class_loss)
    logits, tapped = model.forward_tapped(x, cfg.parts_layer)
    if cfg.parts_dropout > 0:
        tapped = F.dropout(tapped, cfg.parts_dropout, training=True)
    if isinstance(readout, PartsUnitReadout):
        readout.temperature = select_temperature(step - 1, cfg)
    parts_loss = parts_loss_fn(readout(tapped), targets)
    class_loss = class_loss_fn(logits, labels)
    loss = class_loss + cfg.parts_weight * parts_loss
    if cfg.parts_l1 > 0 and isinstance(readout, PartsReadout | PartsMapReadout):
        loss = loss + cfg.parts_l1 * readout.linear.weight.abs().sum()
    return StepLosses(logits, class_loss, parts_loss, loss)


def train(cfg: TrainConfig, progress: bool = True) -> dict[str, Any]:
    """Run one training; writes weights, snapshots, metadata and the curve into out_dir."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    net = MiniAlexNet(cfg.net_config())
    if not cfg.batchnorm:
        he_init(net)
    model = BNTrainNet(net, cfg.batchnorm)
    readout, part_targets = parts_task(cfg, net)
    opt = optimizer(cfg, model, readout)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    parts_loss_fn = parts_loss_function(cfg)

    data = WorldDataset(cfg.world_seed, cfg.steps * cfg.batch_size, cfg.input_size, drop_parts=cfg.drop_parts,
                        part_targets=part_targets)
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(data, batch_size=cfg.batch_size, shuffle=True, generator=gen,
                        num_workers=cfg.workers, persistent_workers=cfg.workers > 0,
                        prefetch_factor=4 if cfg.workers > 0 else None,
                        worker_init_fn=_worker_init if cfg.workers > 0 else None)
    val_x, val_y, _ = world.generate_batch(VAL_WORLD_SEED, 0, cfg.val_images, cfg.input_size)

    ckpt_at = checkpoint_steps(cfg.steps)
    checkpoints: list[dict[str, Any]] = []

    def snapshot(name: str, step: int) -> None:
        file = f"{cfg.name}-ckpt-{name}.safetensors"
        folded = fold_batchnorm(model)
        save_model(folded, out / file, torch.float16,
                   metadata={"net": json.dumps(folded.config.to_dict()), "step": str(step)})
        checkpoints.append({"name": name, "step": step, "fraction": round(step / cfg.steps, 4), "file": file})
        model.train()

    model.eval()
    snapshot("init", 0)
    history: dict[str, list[float]] = {"step": [], "loss": [], "acc": [], "val_step": [], "val_acc": []}
    if readout is not None:
        history["parts_loss"] = []
    t0 = time.perf_counter()
    step = 0  # stays 0 if the loader is empty
    run_loss, run_acc, run_parts, run_n = 0.0, 0.0, 0.0, 0
    bar = tqdm(total=cfg.steps, disable=not progress, dynamic_ncols=True, mininterval=2.0)
    model.train()
    for step, (images, labels, targets) in enumerate(loader, start=1):
        for g in opt.param_groups:
            g["lr"] = lr_at(step - 1, cfg)
        logits, class_loss, parts_loss, loss = step_losses(cfg, model, readout, normalize(images), labels, targets,
                                                           step, loss_fn, parts_loss_fn)
        if parts_loss is not None:
            run_parts += parts_loss.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run_loss += class_loss.item()  # the class task's loss, comparable across recipes
        run_acc += (logits.argmax(1) == labels).float().mean().item()
        run_n += 1
        if step % 25 == 0 or step == cfg.steps:
            history["step"].append(step)
            history["loss"].append(run_loss / run_n)
            history["acc"].append(run_acc / run_n)
            shown = {"loss": f"{run_loss / run_n:.3f}", "acc": f"{run_acc / run_n:.3f}"}
            if readout is not None:
                history["parts_loss"].append(run_parts / run_n)
                shown["parts"] = f"{run_parts / run_n:.3f}"
            bar.set_postfix(shown)
            run_loss, run_acc, run_parts, run_n = 0.0, 0.0, 0.0, 0
        bar.update(1)
        for name, at in ckpt_at.items():
            if at == step and name != "init":
                snapshot(name, step)
        if step % cfg.val_every == 0 or step == cfg.steps:
            acc = float((predict(fold_batchnorm(model), val_x) == val_y).mean())
            history["val_step"].append(step)
            history["val_acc"].append(acc)
            bar.write(f"step {step}: val acc {acc:.4f} ({time.perf_counter() - t0:.0f} s)")
            model.train()
        if step >= cfg.steps:
            break
    bar.close()
    seconds = time.perf_counter() - t0

    final = fold_batchnorm(model)
    val_fp32 = predict(final, val_x)
    half = MiniAlexNet(final.config)
    half.load_state_dict({k: v.half().float() for k, v in final.state_dict().items()})
    val_fp16 = predict(half.eval(), val_x)
    # fp16 ships only if it loses nothing measurable on the validation images.
    use_fp16 = bool((val_fp16 == val_fp32).all())
    dtype = torch.float16 if use_fp16 else torch.float32
    digest = save_model(final, out / f"{cfg.name}.safetensors", dtype)

    gen_rate = world.images_per_second(cfg.input_size, 200)
    meta = {
        "classes": list(world.CLASSES),
        "input_size": cfg.input_size,
        "mean": MEAN,
        "std": STD,
        "net": final.config.to_dict(),
        "dtype": "float16" if use_fp16 else "float32",
        "train_config": _jsonable(asdict(cfg)),
        "seed": cfg.seed,
        "metrics": {
            "accuracy": None,  # filled by `layerscope evaluate --write-metadata`
            "per_class_accuracy": None,
            "dissection": None,  # filled by `layerscope dissect --write-metadata`
            "validation_accuracy": float((val_fp32 == val_y).mean()),
            "fp16_agreement": float((val_fp16 == val_fp32).mean()),
            "training_seconds": round(seconds, 1),
            "training_images_per_second": round(cfg.steps * cfg.batch_size / seconds, 1),
            "generator_images_per_second": round(gen_rate, 1),
        },
        "checkpoints": checkpoints,
        "sha256": digest,
        "trained_on": trained_on(cfg),
    }
    assert tuple(meta) == META_KEYS
    write_meta(meta, out)
    (out / f"{cfg.name}-history.json").write_text(json.dumps(history) + "\n")
    if has_matplotlib():  # a test extra, not a runtime dependency: no plot without it
        _plot_history(history, out / f"{cfg.name}-training.png")
    return meta


def trained_on(cfg: TrainConfig) -> str:
    """What the network learnt from, in words (the page and the API show it)."""
    text = (f"{cfg.steps * cfg.batch_size:,} procedurally generated {cfg.input_size}px parts-world images "
            f"({len(world.CLASSES)} classes: objects built from shared parts, plus scrambled arrangements), "
            f"generated on the fly from world seed {cfg.world_seed}.")
    if cfg.parts_weight > 0:
        # The page must not let a teacher think the part detectors came from class labels alone.
        text += (f" Besides each picture's class, conv{cfg.parts_layer} was trained to say "
                 + ("where each part type is (its mask)" if cfg.parts_task == "where"
                    else "which part types are in the picture (never where)")
                 + {"linear": ", through a readout that was then removed.",
                    "one-unit": ", each part type by one unit the training chose (its readout was then removed).",
                    "assigned": f", each part type by one unit given to it before training (conv{cfg.parts_layer} "
                                f"units 0-{len(world.PARTS) - 1}, in the order {', '.join(world.PARTS)}; "
                                "the readout was then removed)."}[cfg.parts_readout])
    return text


def _worker_init(_: int) -> None:
    # One thread per worker: the trainer's own two threads already fill the cores.
    torch.set_num_threads(1)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    # out_dir is where this machine wrote the files, not part of the recipe.
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items() if k != "out_dir"}


def has_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def _plot_history(history: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].plot(history["step"], history["loss"], label="class")
    if history.get("parts_loss"):  # the second task's loss, when the recipe has one
        ax[0].plot(history["step"], history["parts_loss"], label="parts task")
        ax[0].legend(loc="upper right")
    ax[0].set(xlabel="step", ylabel="training loss (mean of 25 steps)", yscale="log")
    ax[1].plot(history["step"], history["acc"], label="training batches")
    ax[1].plot(history["val_step"], history["val_acc"], "o-", label="validation (fresh seed)")
    ax[1].set(xlabel="step", ylabel="accuracy", ylim=(0, 1))
    ax[1].legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> TrainConfig:
    cfg = TrainConfig()
    p = argparse.ArgumentParser(prog="layerscope train", description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=cfg.steps)
    p.add_argument("--batch-size", type=int, default=cfg.batch_size)
    p.add_argument("--input-size", type=int, default=cfg.input_size)
    p.add_argument("--lr", type=float, default=cfg.lr)
    p.add_argument("--seed", type=int, default=cfg.seed)
    p.add_argument("--workers", type=int, default=cfg.workers)
    p.add_argument("--threads", type=int, default=cfg.threads)
    p.add_argument("--out-dir", default=cfg.out_dir)
    # The network's shape, so a run with larger deep maps (e.g. --conv1 7,2,3) is one command.
    p.add_argument("--widths", default=",".join(map(str, cfg.widths)), help="five conv widths, e.g. 48,96,128,128,128")
    p.add_argument("--conv1", default=f"{cfg.conv1_kernel},{cfg.conv1_stride},{cfg.conv1_padding}",
                   help="conv1 kernel,stride,padding, e.g. 11,4,2")
    p.add_argument("--dropout", type=float, default=cfg.dropout)
    p.add_argument("--pool-output", type=int, default=cfg.pool_output, help="avgpool output side (1 = global)")
    p.add_argument("--batchnorm", action=argparse.BooleanOptionalAction, default=cfg.batchnorm,
                   help="BatchNorm after each conv while training, folded away afterwards")
    p.add_argument("--drop-parts", type=float, default=cfg.drop_parts,
                   help="share of training pictures that leave out a random subset of their part types")
    p.add_argument("--parts-task", choices=PARTS_TASKS, default=None,
                   help="a second task: name the part types in the picture, or say where each one is "
                        f"(shipped: {cfg.parts_task or 'none'})")
    p.add_argument("--parts-weight", type=float, default=None,
                   help=f"weight of the second task (0 = class labels alone; shipped: {cfg.parts_weight:g})")
    p.add_argument("--parts-layer", type=int, choices=range(1, 6), default=cfg.parts_layer,
                   help="the conv layer (1-5) whose units the parts readout reads")
    p.add_argument("--parts-l1", type=float, default=cfg.parts_l1, help="L1 on the parts readout's weights")
    p.add_argument("--parts-dropout", type=float, default=cfg.parts_dropout,
                   help="dropout on the units the parts readout reads (not on the class path)")
    p.add_argument("--parts-readout", choices=READOUTS, default=cfg.parts_readout,
                   help="read each part type from any mix of units, from one unit that training chooses, "
                        "or from the unit given to it (part type k: unit k)")
    p.add_argument("--parts-final-temperature", type=float, default=cfg.parts_final_temperature,
                   help="the one-unit readout's softmax temperature at the last step (from 1)")
    p.add_argument("--parts-area-power", type=float, default=cfg.parts_area_power,
                   help="weigh each part type by its mean area to this power, negated (0 = all alike)")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    # Without either flag the shipped recipe's task; --parts-weight 0 alone turns it off.
    parts_weight = cfg.parts_weight if a.parts_weight is None else a.parts_weight
    parts_task = a.parts_task if a.parts_task is not None else (cfg.parts_task if parts_weight > 0 else "")
    if (parts_weight > 0) != bool(parts_task):
        p.error("--parts-task needs a --parts-weight above 0, and a --parts-weight above 0 a --parts-task")
    widths = tuple(int(w) for w in a.widths.split(","))
    conv1 = tuple(int(v) for v in a.conv1.split(","))
    if len(widths) != 5 or len(conv1) != 3:
        p.error("--widths takes five numbers and --conv1 three (kernel,stride,padding)")
    cfg = replace(cfg, steps=a.steps, batch_size=a.batch_size, input_size=a.input_size, lr=a.lr,
                  seed=a.seed, workers=a.workers, threads=a.threads, out_dir=a.out_dir,
                  widths=widths, conv1_kernel=conv1[0], conv1_stride=conv1[1], conv1_padding=conv1[2],
                  dropout=a.dropout, pool_output=a.pool_output, batchnorm=a.batchnorm,
                  drop_parts=a.drop_parts, parts_task=parts_task, parts_weight=parts_weight,
                  parts_layer=a.parts_layer, parts_l1=a.parts_l1, parts_dropout=a.parts_dropout,
                  parts_area_power=a.parts_area_power, parts_readout=a.parts_readout,
                  parts_final_temperature=a.parts_final_temperature)
    cfg.extra["progress"] = not a.no_progress
    return cfg


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    progress = bool(cfg.extra.pop("progress", True))
    meta = train(cfg, progress=progress)
    m = meta["metrics"]
    print(f"done in {m['training_seconds']} s; validation accuracy {m['validation_accuracy']:.4f}; "
          f"weights {cfg.out_dir}/{cfg.name}.safetensors ({meta['dtype']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
