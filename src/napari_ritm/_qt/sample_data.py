"""Sample images for File -> Open Sample -> napari-ritm, on disk without any download.

- ``nuclei2d``: 512x512 uint16 fluorescence nuclei shipped in this package (``data/``, from the
  StarDist wheel, BSD-3; originally DSB2018, CC0 — see ``data/README.md``).
- ``ihc``: 512x512 RGB immunohistochemistry image that ships inside scikit-image's wheel.
"""
from __future__ import annotations

from importlib.resources import files
from typing import Any

import numpy as np

__all__ = ["ihc", "nuclei2d"]


def nuclei2d() -> list[tuple[np.ndarray, dict[str, Any], str]]:
    """The fluorescence nuclei image as one napari image layer (uint16, (512, 512))."""
    import tifffile

    with files("napari_ritm").joinpath("data", "nuclei2d.tif").open("rb") as handle:
        image = tifffile.imread(handle)
    return [(image, {"name": "nuclei2d", "colormap": "gray"}, "image")]


def ihc() -> list[tuple[np.ndarray, dict[str, Any], str]]:
    """scikit-image's immunohistochemistry image as one RGB image layer (uint8, (512, 512, 3))."""
    from skimage import data

    return [(data.immunohistochemistry(), {"name": "ihc", "rgb": True}, "image")]
