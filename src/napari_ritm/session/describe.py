"""What the dock's status and state lines say about a session (pure text, no Qt)."""
from __future__ import annotations

from typing import Any

__all__ = ["intensity_note", "object_text"]


def intensity_note(session: Any) -> str:
    """What intensity range the model sees on ``session``'s slice in view, and why ("" for RGB
    images and uint8 images shown at napari's default range)."""
    if session.image.rgb:
        return ""
    try:
        lo, hi = session.image.windows(session.key).limits
    except ValueError as error:
        return f"This slice cannot be segmented: {error}"
    if session.image.contrast_limits is not None:
        return f"The model sees intensities {lo:g} to {hi:g}: the image's contrast limits"
    if session.image.data.dtype == "uint8":
        return ""
    return (f"The model sees intensities {lo:g} to {hi:g} (the robust range of the slice: "
            "bright outliers do not squeeze it); set the image's contrast limits to choose "
            "another")


def object_text(session: Any) -> str:
    """The object in progress on ``session``'s slice: its label or "New object", its clicks,
    and the slice."""
    clicks = session.clicks
    where = f" · slice {session.key[-1]}" if session.key else ""
    if session.object_id is not None and not clicks:
        return f"Label {session.object_id}: click to correct it{where}"
    if clicks:
        label = f"Label {session.object_id}" if session.object_id is not None else "New object"
        positive = sum(c.positive for c in clicks)
        return (f"{label} · {len(clicks)} click(s): {positive} object, "
                f"{len(clicks) - positive} background{where}")
    return f"No object in progress: left click on the image to start one{where}"
