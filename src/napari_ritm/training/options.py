"""The options of a training run, and where its outputs go (:mod:`napari_ritm.training.trainer`
runs it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

#: The official schedule: MultiStepLR milestones at epochs 200 and 220 of 230, here as fractions
#: of the run so that they scale with its length.
OFFICIAL_MILESTONES = (200 / 230, 220 / 230)
METRIC_FIELDS = (
    "epoch",
    "step",
    "lr",
    "loss",
    "nfl",
    "bce",
    "iter_clicks",
    "samples_per_s",
    "elapsed_s",
    "val_loss",
    "val_noc85",
    "val_noc90",
    "val_iou1",
    "val_objects",
)


#: Checks of :func:`option` fields: the condition and how the error states it.
CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "share": (lambda v: 0 <= v <= 1, "must be between 0 and 1"),
    "count": (lambda v: v is None or v >= 1, "must be at least 1"),
    "non-negative": (lambda v: v >= 0, "must be at least 0"),
}


def option(default: Any, help: str, *, flag: str | None = None, check: str | None = None,
           metavar: str | tuple[str, ...] | None = None,
           choices: tuple[str, ...] | None = None) -> Any:
    """A :class:`TrainOptions` field with its ``napari-ritm train`` flag: ``help`` (the flag's
    help text, and the field's documentation), ``flag`` (default: ``--`` + the name with
    dashes; an empty string: no flag), ``check`` (a key of :data:`CHECKS`), ``metavar`` and
    ``choices`` as argparse takes them."""
    return field(default=default, metadata={"help": help, "flag": flag, "check": check,
                                            "metavar": metavar, "choices": choices})


@dataclass(frozen=True)
class TrainOptions:
    """Everything a training run needs besides the network and the images; each field's
    ``help`` (its metadata, also the ``napari-ritm train`` flag's help) says what it does.

    ``out``: the checkpoint written (.pth); ``steps``: optimizer steps in total. Built with bad
    values it raises ``ValueError`` naming the flag (:meth:`__post_init__`).
    """

    out: Path
    steps: int = option(None, "optimizer steps", check="count")
    batch_size: int = option(8, "global batch size (split over DDP processes)", check="count")
    crop_size: tuple[int, int] = option((320, 480), "training crop", flag="--crop",
                                        metavar=("H", "W"))
    scale_range: tuple[float, float] = option(
        (0.75, 1.40), "random resize factors of the images (the RITM recipe; zoom-in shows "
        "small objects up to 2x larger at prediction time)", metavar=("LOW", "HIGH"))
    lr: float = option(5e-4, "Adam learning rate of the head", check="non-negative")
    backbone_lr_mult: float = option(0.1, "backbone lr factor", check="non-negative")
    milestones: tuple[float, ...] = option(
        OFFICIAL_MILESTONES, "fractions of the run's steps where the lr is multiplied by 0.1 "
        "(default 200/230 and 220/230, the official schedule's epochs; given with no fraction: "
        "a constant lr, e.g. for a probe that a longer --resume continues)",
        flag="--lr-decay-at", metavar="FRACTION")
    lr_gamma: float = option(0.1, "", flag="")
    epoch_len: int | None = option(None, "samples per epoch (default: the number of training "
                                   "images, at least one batch)", check="count", metavar="N")
    max_num_points: int = option(24, "", flag="")
    max_num_next_clicks: int = option(3, "iterative clicks per batch, 0..N",
                                      flag="--max-next-clicks", check="non-negative")
    min_object_area: int = option(20, "ignore objects smaller in a crop", check="non-negative")
    balance_sets: bool = option(False, "draw each set equally often")
    set_weights: tuple[tuple[str, float], ...] = option(
        (), "with --balance-sets: draw set NAME W times as often as the others (repeat for "
        "more sets)", flag="--set-weight", metavar="NAME=W")
    object_crops: bool = option(False, "crop around one object at a scale the window predictor "
                                "would show it (replaces --scale-range)")
    object_scale_jitter: tuple[float, float] = option((0.75, 1.33), "", flag="")
    cut_prob: float = option(0.25, "with --object-crops: share of first-click views of objects "
                             "larger than the first window that show the object cut by a "
                             "smaller window, as before a growth step", check="share")
    cut_levels: int = option(1, "with --object-crops: how many window sizes below the one that "
                             "holds the object a cut first-click view may use; more teaches the "
                             "mask to fill a first window that lies inside a large object, so "
                             "the window grows (1: only the one before)", check="count")
    single_click_prob: float = option(0.0, "share of samples with exactly one positive click, "
                                      "as a first click", check="share")
    noise_prob: float = option(0.0, "share of samples given photon (Poisson) noise, as in "
                               "low-count fluorescence", check="share")
    invert_prob: float = option(0.0, "share of samples shown with inverted contrast (dark "
                                "objects on a bright field)", check="share")
    blur_prob: float = option(0.0, "share of samples blurred by a Gaussian of 0.5-1.5 px",
                              check="share")
    read_noise_prob: float = option(0.0, "share of samples given Gaussian camera noise "
                                    "(standard deviation 1-5 %%)", check="share")
    refine_prob: float = option(0.0, "share of samples whose previous mask is an automatic "
                                "tool's mask of the object with its errors, and one click to "
                                "correct it (needs --object-crops)", check="share")
    click_focus: float = option(0.0, "refine samples weigh the loss near their click up to "
                                "1 + this many times (a Gaussian over the object's radius; 0: "
                                "off)", check="non-negative")
    propagate_prob: float = option(0.0, "share of samples whose previous mask is the object on "
                                   "the neighbouring slice (of a 3D label stack, else made from "
                                   "this slice), with no click (needs --object-crops)",
                                   check="share")
    tighten_prob: float = option(0.0, "share of samples whose object outlines lose their "
                                 "outermost pixel, as if drawn a pixel tighter", check="share")
    tighten_sets: tuple[str, ...] | None = option(
        None, "only samples of this set (folder name) get --tighten-prob; repeat for more "
        "(default: every set)", flag="--tighten-set", metavar="NAME")
    seed: int = option(0, "random seed")
    save_every: int = option(500, "checkpoint interval in steps (0: only at the end)",
                             check="non-negative", metavar="STEPS")
    keep_every: int = option(0, "also keep a copy of the checkpoint every STEPS steps as "
                             "<out>.step<N>.pth, to average the last ones afterwards with "
                             "'napari-ritm average' (0: none)", check="non-negative",
                             metavar="STEPS")
    val_every: int = option(1, "validate every N epochs", check="count", metavar="EPOCHS")
    val_samples: int = option(32, "validation crops for the loss", check="non-negative")
    val_objects: int = option(8, "validation objects for NoC (0: off)", check="non-negative")
    val_max_clicks: int = option(20, "clicks per validation object", check="count")
    val_mode: str = option("window", "predictor mode of the validation NoC",
                           choices=("window", "exact", "fast"))
    workers: int = option(0, "data loader processes", check="non-negative")
    device: str = option("cpu", "", flag="")
    amp: bool = option(True, "train in float32 (default: bfloat16 autocast on GPUs and on CPUs "
                       "with native bfloat16)", flag="--no-amp")
    channels_last: bool = option(True, "", flag="")
    resume: bool = option(False, "continue from the trainer state next to --out")
    progress: bool = option(True, "no progress bar", flag="--no-progress")
    freeze_norm: bool = option(False, "", flag="")

    def __post_init__(self) -> None:
        for f in fields(self):
            check = f.metadata.get("check")
            if check:
                ok, says = CHECKS[check]
                value = getattr(self, f.name)
                if not ok(value):
                    raise ValueError(f"{flag_of(f)} {says}, got {value}")
        if self.steps is None:
            raise ValueError("--steps is required")
        if self.val_mode not in fields_by_name()["val_mode"].metadata["choices"]:
            raise ValueError(f"--val-mode must be window, exact or fast, got {self.val_mode!r}")
        if not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise ValueError(f"--scale-range needs 0 < LOW <= HIGH, got {self.scale_range}")
        if min(self.crop_size) < 32:
            raise ValueError(f"--crop must be at least 32 x 32, got {self.crop_size}")
        if not all(0 < f <= 1 for f in self.milestones):
            raise ValueError(f"--lr-decay-at: fractions of the run in (0, 1], got "
                             f"{list(self.milestones)}")
        if self.refine_prob + self.propagate_prob > 1:
            raise ValueError("--refine-prob and --propagate-prob add up to more than 1")
        if (self.refine_prob or self.propagate_prob) and not self.object_crops:
            raise ValueError("--refine-prob and --propagate-prob need --object-crops")
        for name, weight in self.set_weights:
            if weight < 0:
                raise ValueError(f"--set-weight {name}={weight}: the weight must be >= 0")


def fields_by_name() -> dict[str, Field]:
    """The fields of :class:`TrainOptions` by name."""
    return {f.name: f for f in fields(TrainOptions)}


def flag_of(f: Field) -> str:
    """The ``napari-ritm train`` flag of a :class:`TrainOptions` field ('' for none)."""
    flag = f.metadata.get("flag")
    return ("--" + f.name.replace("_", "-")) if flag is None else flag


def kept_path(out: Path, step: int) -> Path:
    """Where the copy of checkpoint ``out`` kept at ``step`` lives (``TrainOptions.keep_every``)."""
    return out.with_name(f"{out.stem}.step{step}{out.suffix}")


def state_path(out: Path) -> Path:
    """Where the resumable trainer state of checkpoint ``out`` lives."""
    return out.with_name(out.name + ".train-state")


def metrics_path(out: Path) -> Path:
    """The per-epoch metrics CSV next to checkpoint ``out``."""
    return out.with_name(out.stem + ".metrics.csv")


def resolve_epoch_len(epoch_len: int | None, num_images: int, batch_size: int) -> int:
    """Samples per epoch: ``epoch_len`` or the number of training images, at least one batch."""
    return max(epoch_len or num_images, batch_size)


def steps_per_epoch(epoch_len: int, batch_size: int, world_size: int = 1) -> int:
    """Optimizer steps per epoch: each process drops its incomplete last batch."""
    return (epoch_len // world_size) // (batch_size // world_size)
