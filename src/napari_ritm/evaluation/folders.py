"""Labelled image folders, read the same way by evaluation, training and the commands.

Layout (the one of ``shared/data``; user folders follow it too)::

    <set>/images/<name>.<png|jpg|jpeg|tif|tiff>
    <set>/labels/<name>.tif        instance ids (uint8/16/32), 0 = background, same height and width

3D stacks (labels ``(Z, H, W)``) are used slice by slice; slice ``k`` of ``name`` is called
``name@z<k>`` (:func:`slice_name`) in sample names and split files.
"""
from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np

__all__ = ["IMAGE_SUFFIXES", "SLICE_MARK", "DatasetError", "image_label_pairs", "read_array",
           "slice_name", "to_rgb01", "wanted_slices"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


class DatasetError(ValueError):
    """A dataset folder or file that does not follow the layout (message names the file)."""


def image_label_pairs(root: str | Path) -> list[tuple[Path, Path]]:
    """(image, label) file pairs of one ``<set>`` folder, in file-name order.

    Raises :class:`DatasetError` when ``images/`` or ``labels/`` is missing, an image has no
    label file, or there is no image at all.
    """
    root = Path(root)
    images_dir, labels_dir = root / "images", root / "labels"
    if not images_dir.is_dir() or not labels_dir.is_dir():
        if not root.is_dir():
            raise DatasetError(f"{root}: no such folder")
        raise DatasetError(
            f"{root}: expected the subfolders images/ and labels/ (label files named "
            "like their images), found " + (", ".join(sorted(p.name for p in root.iterdir()))
                                            or "nothing")
        )
    pairs = []
    for image_path in sorted(images_dir.iterdir()):
        if image_path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        label_path = labels_dir / f"{image_path.stem}.tif"
        if not label_path.exists():
            raise DatasetError(f"no label file {label_path} for image {image_path.name}")
        pairs.append((image_path, label_path))
    if not pairs:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {images_dir}")
    return pairs


def read_array(path: Path) -> np.ndarray:
    """Read an image file as an array (tifffile for TIFF, imageio otherwise)."""
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        return tifffile.imread(path)
    import imageio.v3 as iio

    return iio.imread(path)


def to_rgb01(image: np.ndarray) -> np.ndarray:
    """A 2D image (H, W), (H, W, C) or (C, H, W) with C in 1..4 as (H, W, 3) float32 in [0, 1].

    uint8 gray or RGB(A) gives exactly ``u8 / 255`` (gray repeated, alpha dropped), as the
    official evaluation feeds its network; any other dtype goes through
    :func:`napari_ritm.inference.normalize.normalize_image`.
    """
    if image.ndim == 3 and image.shape[0] <= 4 < image.shape[-1]:
        image = np.moveaxis(image, 0, -1)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        image = image[..., :3]
    elif image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3):
        raise ValueError(f"expected a 2D gray or RGB image, got shape {image.shape}")
    if image.dtype == np.uint8:
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        return image.astype(np.float32) / np.float32(255)
    from napari_ritm.inference.normalize import normalize_image

    return normalize_image(image, channel_axis=-1 if image.ndim == 3 else None)


#: Between a stack's file stem and its slice index in sample and split-file names (``cells@z3``).
SLICE_MARK = "@z"


def slice_name(stem: str, z: int) -> str:
    """The name of slice ``z`` of the stack ``stem``, as training samples and split files use it."""
    return f"{stem}{SLICE_MARK}{z}"


def wanted_slices(stem: str, names: Collection[str] | None) -> set | None:
    """Which slices of image ``stem`` the ``names`` filter keeps: None (no filter), a set with
    "all" (the whole image is listed), slice indices (``stem@z<k>`` entries), or an empty set."""
    if names is None:
        return None
    wanted: set = {"all"} if stem in names else set()
    prefix = f"{stem}{SLICE_MARK}"
    for name in names:
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            wanted.add(int(name[len(prefix):]))
    return wanted
