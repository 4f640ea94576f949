"""The one table of model variants (no torch needed: the CLI and the zoo read it cheaply).

An RITM HRNet model is an architecture (``h18s``, ``h18``, ``h32``: :data:`ARCHITECTURES`) and a
kind (``itermask``: the previous mask is an input; ``baseline``: it is not). Every part of the
package spells variants the same way: ``h18s_itermask``, ``h18_baseline``.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ARCHITECTURES", "RITMVariant"]

#: The released HRNet architectures, by the short name every part of the package uses:
#: (HRNet width, OCR width, small). A full variant name adds the kind, e.g. "h18s_itermask".
ARCHITECTURES: dict[str, tuple[int, int, bool]] = {
    "h18s": (18, 48, True),
    "h18": (18, 64, False),
    "h32": (32, 128, False),
}


@dataclass(frozen=True)
class RITMVariant:
    """The architecture of an RITM HRNet model.

    ``width``: HRNet width (18 or 32 in the releases); ``ocr_width``: OCR key channels (48 for
    h18s, 64 for h18, 128 for h32); ``small``: the 2-blocks-per-branch HRNet (h18s);
    ``with_prev_mask``: whether the previous mask is a network input (False for the baseline);
    ``norm_radius``: click disk radius in network-input pixels (5 for all releases).
    """

    width: int
    ocr_width: int
    small: bool
    with_prev_mask: bool
    norm_radius: float = 5.0

    @property
    def architecture(self) -> str:
        """The short architecture name of :data:`ARCHITECTURES` (e.g. ``h18s``), or a
        description like ``w24-ocr32`` for an architecture that was never released."""
        shape = (self.width, self.ocr_width, self.small)
        found = [name for name, arch in ARCHITECTURES.items() if arch == shape]
        small = "s" if self.small else ""
        return found[0] if found else f"w{self.width}{small}-ocr{self.ocr_width}"

    @property
    def name(self) -> str:
        """The variant's name: architecture and kind, e.g. ``h18s_itermask``, ``h18_baseline``."""
        return f"{self.architecture}_{'itermask' if self.with_prev_mask else 'baseline'}"

    @classmethod
    def named(cls, name: str) -> RITMVariant:
        """The variant called ``name``: an architecture of :data:`ARCHITECTURES`, optionally
        with ``_itermask`` (the default: previous-mask input) or ``_baseline``."""
        arch, _, kind = name.partition("_")
        if arch not in ARCHITECTURES or kind not in ("", "itermask", "baseline"):
            raise ValueError(f"unknown model variant {name!r}; choose from "
                             f"{', '.join(ARCHITECTURES)} (optionally _itermask or _baseline)")
        return cls(*ARCHITECTURES[arch], with_prev_mask=kind != "baseline")
