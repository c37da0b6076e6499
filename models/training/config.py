"""What a training run depends on: :class:`TrainConfig` (stored in tiny.json so a run can be
repeated) and the ``layerscope train`` flags that set it.

The defaults are the shipped recipe: the plain network, as AlexNet was (He init, dropout
0.5), with a second task that says where each part type is, read from conv4 by a readout
dropped before shipping. ``--batchnorm`` trains with BatchNorm after each convolution
(faster, but fewer single-concept units), folded into the weights at the end, and
``--parts-weight 0`` trains on the class labels alone. The runs of each recipe are in the
model card's *Runs tried*.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from typing import Any

from models import world
from models.commandline import Parser
from models.nets import NetConfig
from models.world import seeds
from models.zoo.tinyweights import WEIGHTS_DIR

DESCRIPTION = 'Train the embedded "tiny" MiniAlexNet on the parts world: ``layerscope train``.'
PARTS_TASKS = ("names", "where")
READOUTS = ("linear", "one-unit", "assigned")


@dataclass
class TrainConfig:
    """Everything a run depends on; stored in tiny.json so a run can be repeated."""

    seed: int = 0
    world_seed: int = seeds.TRAINING
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



def parse_args(argv: list[str] | None) -> TrainConfig:
    """The run ``layerscope train`` flags ask for; ``extra["progress"]`` says whether to show a progress bar."""
    cfg = TrainConfig()
    p = Parser(prog="layerscope train", description=DESCRIPTION)
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

