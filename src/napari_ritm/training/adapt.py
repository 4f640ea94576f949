"""Adapting a model to the user's own labels: a short fine-tuning, judged on objects held back.

The objects of the user's labelled images are split in two: most train, a share (``held_out``)
is held back. Held-back objects are hidden from training (their pixels are ignored by the loss
and are never a target), then both the model before and the model after are scored on them with
the NoC protocol in the window mode, the one the widget uses. The adapted model is worth
offering only when it needs fewer clicks there (:attr:`AdaptResult.improved`).

Training is the v2 recipe (crops around objects at the window predictor's scales, single first
clicks, iterative clicks, bfloat16 where the CPU has it) at a low learning rate, on one thread
by default so that clicking in the widget stays fast. Half of each batch comes from a few
nuclei images shipped in the package (:func:`rehearsal_images`) so that the model keeps what
it knew of other images while it learns the user's. :func:`adapt` serves the widget's "Adapt
model to my labels" and ``napari-ritm finetune``.
"""
from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from napari_ritm.training.data import LabeledImage, read_folder

__all__ = ["AdaptOptions", "AdaptResult", "adapt", "rehearsal_images",
           "split_objects", "time_left"]

#: the rehearsal images shipped in the package (built by scripts/make_rehearsal_pack.py)
REHEARSAL_FOLDER = Path(__file__).resolve().parents[1] / "data" / "rehearsal"


@dataclass(frozen=True)
class AdaptOptions:
    """``steps`` of ``batch_size`` crops of ``crop_size`` at Adam ``lr`` (all layers);
    ``held_out``: share of the objects held back for the comparison (at least ``min_held``,
    and at least ``min_train`` left to train on); objects of at least ``min_area`` pixels;
    comparison with at most ``max_clicks`` clicks per object; ``max_seconds``: stop training
    early (keeping what was learnt) after that long; ``freeze_norm``: keep the BatchNorm
    statistics of the model (a few images of one kind would replace them and the model would
    forget the rest); ``backbone_lr_mult``: the backbone's share of ``lr`` (0: train the head
    only); ``blend``: the share of the fine-tuning's weight change that is kept (the adapted
    weights are ``before + blend * (after - before)``: a few objects of one image pull the
    model too far, and a partial step keeps most of the gain on the user's other images while
    losing less on everything else); ``scale_jitter``: the range of the log-uniform factor on
    the scale at which each object is shown (the user's objects come in one size, the rest of
    their images may not); ``layers``: ``"all"`` trains every weight, ``"norms"`` only the
    scale and shift of the BatchNorms (0.4 % of the weights: the model can follow a new stain
    or modality with little room to forget); ``rehearsal``: draw half of each batch from the
    shipped rehearsal images (:func:`rehearsal_images`), which keeps the model from forgetting
    other kinds of images (benchmarks/adapt.py)."""

    steps: int = 300
    lr: float = 1e-4
    batch_size: int = 4
    crop_size: tuple[int, int] = (192, 192)
    held_out: float = 0.25
    min_held: int = 3
    min_train: int = 5
    min_area: int = 30
    max_clicks: int = 10
    max_seconds: float | None = None
    freeze_norm: bool = True
    backbone_lr_mult: float = 1.0
    blend: float = 0.3
    scale_jitter: tuple[float, float] = (0.75, 1.33)
    layers: str = "all"
    rehearsal: bool = True
    seed: int = 0


@dataclass
class AdaptResult:
    """``net``: the adapted network (a copy; the input is untouched); ``before`` / ``after``:
    NoC@85, NoC@90 and mean IoU after one click on the held-back objects; counts, time and the
    share of the weight change kept (``blend``)."""

    net: object
    before: dict
    after: dict
    train_objects: int
    held_objects: int
    steps: int
    seconds: float
    history: list = field(default_factory=list)
    blend: float = AdaptOptions.blend
    rehearsal_images: int = 0

    @property
    def improved(self) -> bool:
        """Fewer clicks to 85 % IoU on the held-back objects (NoC@90, then IoU@1 break ties)."""
        key = ("val_noc85", "val_noc90")
        before, after = tuple(self.before[k] for k in key), tuple(self.after[k] for k in key)
        if after != before:
            return after < before
        return self.after["val_iou1"] > self.before["val_iou1"]

    def card(self, source: str) -> dict:
        """The model card saved next to an adapted model."""
        return {"source_model": source, "train_objects": self.train_objects,
                "held_out_objects": self.held_objects, "steps": self.steps,
                "blend": self.blend, "rehearsal_images": self.rehearsal_images,
                "seconds": round(self.seconds, 1), "before": self.before,
                "after": self.after, "date": time.strftime("%Y-%m-%d %H:%M")}


def split_objects(
    samples: list[LabeledImage], held_out: float, *, min_held: int, min_train: int,
    min_area: int, seed: int = 0,
) -> tuple[list[LabeledImage], list[tuple[int, int]]]:
    """(training images with the held-back objects ignored (-1), held-back (image, id) pairs).

    With objects in several images, whole images are held back (in random order, until the
    share is reached) so that the comparison asks whether the model carries over to an image
    it did not train on: objects of the training image itself may improve while other images
    get worse. With one image, or when whole images would leave fewer than ``min_train``
    objects, random objects are held back. Raises ValueError when there are fewer than
    ``min_train + min_held`` objects."""
    found = []
    for i, sample in enumerate(samples):
        ids, areas = np.unique(sample.labels[sample.labels > 0], return_counts=True)
        found += [(i, int(k)) for k in ids[areas >= min_area]]
    if len(found) < min_train + min_held:
        raise ValueError(f"{len(found)} object(s) of at least {min_area} pixels; adapting needs "
                         f"{min_train + min_held} (segment or correct a few more)")
    n_held = min(max(min_held, round(held_out * len(found))), len(found) - min_train)
    rng = np.random.default_rng(seed)
    held = _whole_images(found, n_held, len(found) - min_train, rng)
    if held is None:
        held = sorted(found[j] for j in rng.permutation(len(found))[:n_held])
    train = []
    for i, sample in enumerate(samples):
        hidden = [k for j, k in held if j == i]
        labels = sample.labels.copy()
        labels[np.isin(labels, hidden)] = -1
        train.append(replace(sample, labels=labels))
    return train, held


def _whole_images(found: list[tuple[int, int]], n_held: int, most: int,
                  rng: np.random.Generator) -> list[tuple[int, int]] | None:
    """Objects of whole images, in random image order, until at least ``n_held`` (at most
    ``most``); None with objects in one image only or when no such choice exists."""
    images = sorted({i for i, _ in found})
    if len(images) < 2:
        return None
    held: list[tuple[int, int]] = []
    for image in rng.permutation(images):
        objects = [obj for obj in found if obj[0] == image]
        if len(held) + len(objects) <= most:
            held += objects
        if len(held) >= n_held:
            return sorted(held)
    return None


def rehearsal_images() -> list[LabeledImage]:
    """The rehearsal images shipped in the package: eight 256-pixel crops of dsb2018 train
    images (fluorescence, brightfield and H&E nuclei; CC0), all objects labelled."""
    return read_folder(REHEARSAL_FOLDER)


def _blend(work, original, share: float) -> None:
    """``work`` (in place) := ``original + share * (work - original)``, floating tensors only."""
    import torch

    if share == 1.0:
        return
    start = original.state_dict()
    with torch.no_grad():
        for name, tensor in work.state_dict().items():
            if tensor.is_floating_point():
                base = start[name].to(tensor.dtype)
                tensor.copy_(base + share * (tensor - base))


def _train_norms_only(net) -> None:
    """Only the BatchNorms' scale and shift of ``net`` get gradients (the rest is fixed)."""
    import torch

    net.requires_grad_(False)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.requires_grad_(True)


def _score(net, samples: list[LabeledImage], held, max_clicks: int) -> dict:
    from napari_ritm.training.validate import validation_noc

    plain = [replace(s, labels=np.where(s.labels < 0, 0, s.labels)) for s in samples]
    return {k: round(v, 4) for k, v in
            validation_noc(net, plain, held, max_clicks=max_clicks, mode="window").items()}


def time_left(step: int, total: int, started: float, first: float, now: float,
              budget: float | None) -> float | None:
    """Seconds an adaptation has left at training step ``step`` of ``total`` (clock readings:
    ``started`` the adaptation, ``first`` the first step done, ``now``): the steps left at the
    speed measured since the first step, at most the time ``budget`` leaves, then a comparison
    on the held-back objects as long as the one before training took. None before step 3 (no
    speed measured yet)."""
    if step < 3:
        return None
    training = (now - first) / (step - 1) * (total - step)
    if budget is not None:
        training = min(training, max(0.0, budget - (now - first)))
    return training + (first - started)


def adapt(
    net,
    samples: list[LabeledImage],
    options: AdaptOptions = AdaptOptions(),
    *,
    on_progress: Callable[[int, int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    rehearsal: list[LabeledImage] | None = None,
) -> AdaptResult | None:
    """Fine-tune a copy of ``net`` (an ``RITMNet``) on the objects of ``samples`` and compare it
    with ``net`` on held-back objects. ``rehearsal``: images of the kind the model was trained
    on, drawn as often as the user's (half of each batch) so that it keeps what it knew; they
    are not scored. ``on_progress(step, steps, loss)`` after each step;
    ``should_stop()`` True (checked after each step) ends training and returns None: the user
    cancelled, ``net`` is unchanged; ``options.max_seconds`` ends training and keeps it. Raises
    ValueError when there are too few objects. ``rehearsal`` replaces the shipped rehearsal
    images; with ``options.rehearsal`` False there is none."""
    from napari_ritm.training.options import TrainOptions
    from napari_ritm.training.trainer import Trainer

    if options.layers not in ("all", "norms"):
        raise ValueError(f"layers must be 'all' or 'norms', not {options.layers!r}")
    start = time.perf_counter()
    train, held = split_objects(samples, options.held_out, min_held=options.min_held,
                                min_train=options.min_train, min_area=options.min_area,
                                seed=options.seed)
    before = _score(net, samples, held, options.max_clicks)
    work = copy.deepcopy(net).float().train()
    if options.layers == "norms":
        _train_norms_only(work)
    history: list[float] = []
    if not options.rehearsal:
        rehearsal = None
    elif rehearsal is None:
        rehearsal = rehearsal_images()

    def step_done(step: int, total: int, loss: float) -> None:
        history.append(loss)
        if on_progress is not None:
            on_progress(step, total, loss)

    cancelled = False

    def stop_here() -> bool:  # the user cancelled, or the time budget is spent
        nonlocal cancelled
        cancelled = should_stop is not None and should_stop()
        return cancelled or (options.max_seconds is not None
                             and time.perf_counter() - training_start > options.max_seconds)

    with tempfile.TemporaryDirectory(prefix="napari-ritm-adapt-") as tmp:
        trainer_options = TrainOptions(
            out=Path(tmp) / "adapted.pth", steps=options.steps, batch_size=options.batch_size,
            crop_size=options.crop_size, lr=options.lr, milestones=(),
            backbone_lr_mult=options.backbone_lr_mult, freeze_norm=options.freeze_norm,
            epoch_len=options.steps * options.batch_size, object_crops=True,
            object_scale_jitter=options.scale_jitter,
            single_click_prob=0.4, seed=options.seed, save_every=0, val_objects=0,
            val_samples=0, progress=False,
        )
        fit_on = train
        if rehearsal:
            trainer_options = replace(trainer_options, balance_sets=True)
            fit_on = [replace(t, set_name="user") for t in train] + [
                replace(r, set_name="rehearsal") for r in rehearsal]
        trainer = Trainer(work, fit_on, [], trainer_options)
        training_start = time.perf_counter()
        try:
            trainer.fit(step_done, stop_here)
        finally:
            trainer.close()
    if cancelled:
        return None
    work.eval().requires_grad_(True)
    _blend(work, net, options.blend)
    after = _score(work, samples, held, options.max_clicks)
    n_train = sum(int((np.unique(s.labels[s.labels > 0])).size) for s in train)
    return AdaptResult(work, before, after, n_train, len(held), len(history),
                       time.perf_counter() - start, history, options.blend,
                       len(rehearsal) if rehearsal else 0)
