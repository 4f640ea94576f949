"""The options of a training run, and where its outputs go (:mod:`napari_ritm.training.trainer`
runs it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class TrainOptions:
    """Everything a training run needs besides the network and the images.

    ``steps``: optimizer steps in total; ``batch_size``: global batch (split over DDP processes);
    ``scale_range``: random resize factors of the training images (the recipe's 0.75-1.40);
    ``set_weights``: (set name, weight) pairs for ``balance_sets`` (1 for the others);
    ``epoch_len``: samples per epoch (None: the number of training images, at least one batch);
    ``milestones``: fractions of ``steps`` where the lr is multiplied by ``lr_gamma``;
    ``save_every``: steps between checkpoints (0: only at the end); ``keep_every``: steps between
    copies kept as ``<out stem>.step<N>.pth`` (0: none), to average them afterwards
    (:func:`~napari_ritm.training.averaging.average_checkpoints`); ``val_every``: epochs between
    validations; ``val_samples``: crops for the validation loss; ``val_objects``: objects of the
    validation images for NoC (0: none), clicked at most ``val_max_clicks`` times; ``amp``: mixed
    precision where the hardware has it (bfloat16 on CPUs with native support, see
    :mod:`~napari_ritm.training.precision`); ``channels_last``: NHWC memory layout (faster on
    CPUs, with or without ``amp``); ``object_crops``: crop around one object at a scale the
    window predictor would show it (:class:`~napari_ritm.training.object_crops.ObjectCropper`)
    instead of the recipe's random resize and crop, at the predictor's scale times a log-uniform
    factor from ``object_scale_jitter``; ``cut_prob``: share of first-click views of objects
    larger than the first window that cut the object; ``cut_levels``: how many window sizes
    below the one that holds the object a cut view may use (1: only the one before a growth
    step); ``single_click_prob``: share of samples with exactly one positive click (see
    :class:`~napari_ritm.training.sampler.MultiPointSampler`);
    ``noise_prob``, ``invert_prob``, ``blur_prob``, ``read_noise_prob``: shares of samples given
    photon noise, inverted contrast, blur, read noise
    (:class:`~napari_ritm.training.augment.Augmenter`); ``refine_prob``, ``propagate_prob``:
    shares of object-centred samples whose previous-mask input is an external mask to correct,
    or the neighbouring slice's mask without a click
    (:class:`~napari_ritm.training.guidance.GuidanceMix`; need ``object_crops``); ``tighten_prob``, ``tighten_sets``:
    share of samples (of those sets; None: all) whose outlines are drawn a pixel tighter
    (:class:`~napari_ritm.training.data.ClickDataset`); ``val_mode``:
    the predictor mode of the validation NoC; ``freeze_norm``: BatchNorms stay in eval mode
    (their running statistics are not updated), as when fine-tuning on a few images.
    """

    out: Path
    steps: int
    batch_size: int = 8
    crop_size: tuple[int, int] = (320, 480)
    scale_range: tuple[float, float] = (0.75, 1.40)
    lr: float = 5e-4
    backbone_lr_mult: float = 0.1
    milestones: tuple[float, ...] = OFFICIAL_MILESTONES
    lr_gamma: float = 0.1
    epoch_len: int | None = None
    max_num_points: int = 24
    max_num_next_clicks: int = 3
    min_object_area: int = 20
    balance_sets: bool = False
    set_weights: tuple[tuple[str, float], ...] = ()
    object_crops: bool = False
    object_scale_jitter: tuple[float, float] = (0.75, 1.33)
    cut_prob: float = 0.25
    cut_levels: int = 1
    single_click_prob: float = 0.0
    noise_prob: float = 0.0
    invert_prob: float = 0.0
    blur_prob: float = 0.0
    read_noise_prob: float = 0.0
    refine_prob: float = 0.0
    propagate_prob: float = 0.0
    tighten_prob: float = 0.0
    tighten_sets: tuple[str, ...] | None = None
    seed: int = 0
    save_every: int = 500
    keep_every: int = 0
    val_every: int = 1
    val_samples: int = 32
    val_objects: int = 8
    val_max_clicks: int = 20
    val_mode: str = "window"
    workers: int = 0
    device: str = "cpu"
    amp: bool = True
    channels_last: bool = True
    resume: bool = False
    progress: bool = True
    freeze_norm: bool = False


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
