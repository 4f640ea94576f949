"""Training data: labelled images from folders or arrays, train/val splits, and the torch Dataset.

Folders follow the layout of :mod:`napari_ritm.evaluation.folders` and are read with its
readers (uint8 as is, other dtypes through ``normalize_image``) and kept as uint8 RGB. 3D
stacks are split into labelled 2D slices.
A split file is JSON ``{"format": "napari-ritm-split/1", "seed", "val_fraction",
"sets": {<set>: {"train": [names], "val": [names]}}}``; names are image file stems (with
``@z<k>`` for slice k of a stack). A set may also list the two halves of its val images,
``val_select`` (to choose checkpoints, thresholds and rules on) and ``val_report`` (to report).
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from skimage.segmentation import find_boundaries

from napari_ritm.evaluation.folders import (
    image_label_pairs,
    read_array,
    slice_name,
    to_rgb01,
)
from napari_ritm.training.augment import Augmenter, pad_and_crop
from napari_ritm.training.guidance import GuidanceMix
from napari_ritm.training.object_crops import ObjectCropper, object_boxes
from napari_ritm.training.sampler import MultiPointSampler, target_map

SPLIT_FORMAT = "napari-ritm-split/1"


@dataclass(frozen=True)
class LabeledImage:
    """One 2D training image: ``image`` (H, W, 3) uint8 RGB, ``labels`` (H, W) int32 instance ids
    (0 = background), ``name`` (file stem, ``@z<k>`` for a stack slice) and ``set_name``;
    ``neighbours``: the labels (H, W) of the neighbouring slices of a stack, where the same
    object has the same id (empty for a 2D image)."""

    image: np.ndarray
    labels: np.ndarray
    name: str
    set_name: str
    neighbours: tuple[np.ndarray, ...] = ()


def _to_rgb_u8(image: np.ndarray, contrast_limits: tuple[float, float] | None = None) -> np.ndarray:
    if (
        image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[-1] == 3
        and contrast_limits is None
    ):
        return image
    if contrast_limits is not None:
        from napari_ritm.inference.normalize import normalize_image

        rgb = normalize_image(
            image, channel_axis=-1 if image.ndim == 3 else None, contrast_limits=contrast_limits
        )
    elif (
        np.issubdtype(image.dtype, np.floating)
        and image.size
        and 0 <= image.min()
        and image.max() <= 1
    ):
        rgb = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image[..., :3]
    else:
        rgb = to_rgb01(image)
    return np.clip(np.rint(np.asarray(rgb, dtype=np.float32) * 255), 0, 255).astype(np.uint8)


def samples_from_arrays(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    name: str = "layer",
    set_name: str = "layer",
    contrast_limits: tuple[float, float] | None = None,
) -> list[LabeledImage]:
    """Training images from in-memory arrays, e.g. a napari Image layer and its Labels layer.

    image: (H, W), (H, W, 3|4), or a stack (Z, H, W[, 3|4]); labels: (H, W) or (Z, H, W) integer
    ids with the same leading shape. uint8 is used as is, float already in [0, 1] as is, anything
    else is normalised (``contrast_limits`` forces the napari-style window). Stack slices without
    any label are skipped; the others keep the labels of the slices above and below as
    ``neighbours`` (a 3D label stack names an object by one id on every slice). Raises
    ValueError on mismatched shapes.
    """
    labels = np.asarray(labels)
    image = np.asarray(image)
    if labels.ndim not in (2, 3) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be a 2D or 3D integer array, got {labels.dtype} {labels.shape}"
        )
    if image.shape[: labels.ndim] != labels.shape:
        raise ValueError(f"image shape {image.shape} does not match labels shape {labels.shape}")
    if labels.ndim == 2:
        return [
            LabeledImage(
                _to_rgb_u8(image, contrast_limits), labels.astype(np.int32), name, set_name
            )
        ]
    labels = labels.astype(np.int32)
    out = []
    for z, plane in enumerate(labels):
        if plane.max() > 0:
            out.append(
                LabeledImage(
                    _to_rgb_u8(image[z], contrast_limits),
                    plane,
                    slice_name(name, z),
                    set_name,
                    tuple(labels[k] for k in (z - 1, z + 1) if 0 <= k < len(labels)),
                )
            )
    return out


def read_folder(root: str | Path) -> list[LabeledImage]:
    """All labelled images of one ``<set>`` folder, in file-name order; set name = folder name.

    Raises ValueError when the folder does not follow the layout or shapes do not match.
    """
    set_name = Path(root).resolve().name
    out: list[LabeledImage] = []
    for path, label_path in image_label_pairs(root):
        image, labels = read_array(path), read_array(label_path)
        if (
            labels.ndim == 2
            and image.ndim == 3
            and image.shape[0] in (3, 4)
            and image.shape[1:] == labels.shape
        ):
            image = np.moveaxis(image, 0, -1)
        try:
            out.extend(samples_from_arrays(image, labels, name=path.stem, set_name=set_name))
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    if not out:
        raise ValueError(f"no labelled objects in {root}")
    return out


def make_split(samples: list[LabeledImage], val_fraction: float, seed: int = 0) -> dict:
    """A random split by image, per set: ceil(val_fraction * n) validation images (at most n - 1;
    none for a set of one image). Returns the split dict (see the module docstring)."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    sets: dict[str, list[str]] = {}
    for s in samples:
        sets.setdefault(s.set_name, []).append(s.name)
    rng = np.random.default_rng(seed)
    out = {}
    for set_name in sorted(sets):
        names = sorted(sets[set_name])
        n_val = min(math.ceil(val_fraction * len(names)), len(names) - 1)
        chosen = set(rng.permutation(names)[:n_val].tolist())
        out[set_name] = {"train": [n for n in names if n not in chosen], "val": sorted(chosen)}
    return {"format": SPLIT_FORMAT, "seed": seed, "val_fraction": val_fraction, "sets": out}


def save_split(split: dict, path: str | Path) -> None:
    """Write a split dict as indented JSON."""
    Path(path).write_text(json.dumps(split, indent=1) + "\n")


def load_split(path: str | Path) -> dict:
    """Read and check a split file; raises ValueError naming the file when it is not one."""
    try:
        split = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read split file {path}: {err}") from None
    if (
        not isinstance(split, dict)
        or split.get("format") != SPLIT_FORMAT
        or not isinstance(split.get("sets"), dict)
    ):
        raise ValueError(f"{path} is not a napari-ritm split file (format {SPLIT_FORMAT})")
    return split


def apply_split(
    samples: list[LabeledImage], split: dict
) -> tuple[list[LabeledImage], list[LabeledImage], list[str]]:
    """(train, val, unlisted): images listed as val go to val, all others to train; ``unlisted``
    names the "set/name" of images the split does not mention (they are trained on)."""
    train, val, unlisted = [], [], []
    for s in samples:
        entry = split["sets"].get(s.set_name, {})
        if s.name in entry.get("val", ()):
            val.append(s)
        else:
            train.append(s)
            if s.name not in entry.get("train", ()):
                unlisted.append(f"{s.set_name}/{s.name}")
    return train, val, unlisted


def tighten_outlines(labels: np.ndarray) -> np.ndarray:
    """Copy of instance ``labels`` (H, W) where each object loses its inner 4-connected boundary
    (pixels next to another id or to the background): every outline drawn a pixel tighter.
    Negative (ignored) pixels stay as they are."""
    out = np.array(labels, copy=True)
    out[find_boundaries(labels, connectivity=1, mode="inner") & (labels > 0)] = 0
    return out


class ClickDataset(torch.utils.data.Dataset):
    """Random training samples: an augmented crop, its target object and sampled clicks.

    Item ``i`` of epoch ``e`` is a pure function of (seed, e, i), whatever the worker or process.
    Returns ``{"image": (3, h, w) float32 in [0, 1], "points": (2N, 3) float32, "gt": (1, h, w)
    float32 in {0, 1, -1}, "prev": (1, h, w) float32 in [0, 1], "frozen": bool, "weight": (1, h,
    w) float32 >= 1}``: ``prev`` is the previous-mask input (zeros, or a guided sample's mask),
    ``frozen`` keeps it and the clicks through the iterative passes, ``weight`` is the loss
    weight of each pixel (ones, or a guided sample's ``focus``). ``augmenter=None`` means
    validation: a seeded pad-and-random-crop without other changes, and the same items every
    epoch. Crops without any object of at least ``min_object_area`` pixels are redrawn (kept
    with probability ``keep_background_prob``, as in the recipe). ``balance_sets``: pick the
    set uniformly first, then an image in it; ``set_weights`` (set name -> weight, 1 for the
    sets not named) makes some sets more or less likely than the others.
    ``object_crops``: an :class:`ObjectCropper` replaces the augmenter's random crop: each item
    centres one object of the image (uniformly chosen) at a random size, and that object is the
    target (images without objects fall back to the augmenter).
    ``tighten_prob``: share of training items whose objects lose their outermost pixels (the
    inner 4-connected boundary of each object), as if outlined a pixel tighter; only items of
    the sets in ``tighten_sets`` (None: every set). Annotators differ by about that much.
    ``guidance``: a :class:`~napari_ritm.training.guidance.GuidanceMix` that turns a share of the
    object-centred items into refine and propagate samples (needs ``object_crops``).
    """

    def __init__(
        self,
        samples: list[LabeledImage],
        sampler: MultiPointSampler,
        *,
        crop_size: tuple[int, int],
        augmenter: Augmenter | None,
        epoch_len: int,
        seed: int = 0,
        min_object_area: int = 20,
        keep_background_prob: float = 0.05,
        balance_sets: bool = False,
        max_tries: int = 20,
        object_crops: ObjectCropper | None = None,
        tighten_prob: float = 0.0,
        tighten_sets: Collection[str] | None = None,
        guidance: GuidanceMix | None = None,
        set_weights: Mapping[str, float] | None = None,
    ) -> None:
        if not samples:
            raise ValueError("no training images")
        self.samples = samples
        self.sampler = sampler
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.augmenter = augmenter
        self.epoch_len = int(epoch_len)
        self.seed = seed
        self.min_object_area = min_object_area
        self.keep_background_prob = keep_background_prob
        self.max_tries = max_tries
        self.object_crops = object_crops
        self.tighten_prob = tighten_prob
        self.tighten_sets = None if tighten_sets is None else frozenset(tighten_sets)
        self.guidance = guidance
        self._boxes: dict[int, dict] = {}  # sample index -> object boxes, filled on first use
        self.epoch = 0
        self._by_set: list[list[int]] = []
        if balance_sets:
            groups: dict[str, list[int]] = {}
            for i, s in enumerate(samples):
                groups.setdefault(s.set_name, []).append(i)
            self._by_set = [groups[k] for k in sorted(groups)]
        self._set_probs = None
        if balance_sets and set_weights:
            unknown = sorted(set(set_weights) - {s.set_name for s in samples})
            if unknown:
                raise ValueError(f"set weights for sets without images: {', '.join(unknown)}")
            weights = np.array([set_weights.get(k, 1.0) for k in sorted(groups)], float)
            if (weights < 0).any() or weights.sum() <= 0:
                raise ValueError("set weights must be >= 0 with a positive sum")
            self._set_probs = weights / weights.sum()

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (call before creating the DataLoader iterator)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.epoch_len

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        epoch = self.epoch if self.augmenter is not None else 0
        rng = np.random.default_rng([self.seed, epoch, index])
        if self._by_set:
            pick = (rng.integers(len(self._by_set)) if self._set_probs is None
                    else rng.choice(len(self._by_set), p=self._set_probs))
            group = self._by_set[int(pick)]
            which = group[int(rng.integers(len(group)))]
        else:
            which = index % len(self.samples)
        sample, target, neighbours, guided = self.samples[which], None, (), None
        boxes = self._object_boxes(which) if self.object_crops is not None else None
        ghost = None
        if boxes and self._guiding() and rng.random() < self.guidance.vanish_share:
            ghost = self.guidance.ghost(sample.labels, boxes, rng)
        if ghost is not None:  # a vanished object: crop around where its mask now lies
            planes = np.stack([sample.labels, ghost[0].astype(sample.labels.dtype)], axis=-1)
            image, planes, _ = self.object_crops(sample.image, planes, {0: ghost[1]}, rng)
            labels = self._drop_small(planes[..., 0])
            guided = self.guidance.vanished(planes[..., 1] > 0, rng)
        elif boxes:
            planes = np.stack([sample.labels, *sample.neighbours], axis=-1)
            image, planes, target = self.object_crops(sample.image, planes, boxes, rng)
            labels = self._drop_small(planes[..., 0])
            neighbours = tuple(planes[..., k] for k in range(1, planes.shape[-1]))
        else:
            for _ in range(self.max_tries):
                image, labels = self._crop(sample, rng)
                if labels.max() > 0 or rng.random() < self.keep_background_prob:
                    break
        if self._may_tighten(sample) and rng.random() < self.tighten_prob:
            labels = self._drop_small(tighten_outlines(labels))
        if self._guiding() and target is not None and (labels == target).any():
            guided = self.guidance.draw(image, labels, target, neighbours, rng)
        focus = None if guided is None else guided.focus
        if guided is None:
            gt, points = self.sampler.sample(labels, rng, target)
            prev, frozen = np.zeros(labels.shape, np.float32), False
        else:
            gt = target_map(labels, guided.gt_ids)
            points = self.sampler.points(guided.positives, guided.negatives)
            prev, frozen = guided.prev, guided.frozen
        return {
            "image": np.ascontiguousarray(image.transpose(2, 0, 1)),
            "points": points,
            "gt": gt[None],
            "prev": prev[None],
            "frozen": frozen,
            "weight": (np.ones(labels.shape, np.float32) if focus is None else focus)[None],
        }

    def _crop(
        self, sample: LabeledImage, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.augmenter is None:
            image, labels = pad_and_crop(sample.image, sample.labels, self.crop_size, rng)
            image = image.astype(np.float32) / np.float32(255)
        else:
            image, labels = self.augmenter(sample.image, sample.labels, rng)
        return image, self._drop_small(labels)

    def _guiding(self) -> bool:
        return self.guidance is not None and self.augmenter is not None

    def _may_tighten(self, sample: LabeledImage) -> bool:
        return (
            self.augmenter is not None
            and self.tighten_prob > 0
            and (self.tighten_sets is None or sample.set_name in self.tighten_sets)
        )

    def _drop_small(self, labels: np.ndarray) -> np.ndarray:
        """int32 copy of ``labels`` without the objects under ``min_object_area`` pixels."""
        labels = np.array(labels, dtype=np.int32)
        if self.min_object_area > 1 and labels.max() > 0:
            areas = np.bincount(labels[labels > 0])
            small = np.flatnonzero(areas < self.min_object_area)
            labels[np.isin(labels, small[small > 0])] = 0
        return labels

    def _object_boxes(self, which: int) -> dict:
        if which not in self._boxes:
            self._boxes[which] = object_boxes(self.samples[which].labels, self.min_object_area)
        return self._boxes[which]


def samples_from_planes(source, labels, *, name: str = "layer",
                        only: Mapping[tuple[int, ...], Collection[int]] | None = None,
                        ) -> list[LabeledImage]:
    """Training images from every plane of ``labels`` (an (..., H, W) array) that holds a label,
    with the image read through ``source.normalized(key)`` (an ``ImageSource``: the widget's
    image, channel and contrast limits), one plane at a time.

    ``only`` (slice key -> label ids, e.g. :meth:`napari_ritm.session.Session.committed_objects`)
    keeps just those objects on just those planes; the plane's other labels become background
    there (they are not training targets)."""
    labels_shape = tuple(int(s) for s in labels.shape)
    keys = np.ndindex(labels_shape[:-2]) if only is None else sorted(only)
    out = []
    for key in keys:
        plane = np.asarray(labels[key])
        if only is not None:
            plane = np.where(np.isin(plane, list(only[key])), plane, 0)
        if plane.max() > 0:
            suffix = "@" + ",".join(map(str, key)) if key else ""
            out += samples_from_arrays(source.normalized(key), plane, name=f"{name}{suffix}")
    return out
