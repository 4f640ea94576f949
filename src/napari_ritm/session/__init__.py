"""The interactive session without Qt: one image, one labels array, the object being segmented.

:class:`~napari_ritm.session.session.Session` (what the widget drives), the commit policy that
never loses a painted pixel (:mod:`~napari_ritm.session.editing`), propagation through stacks
(:mod:`~napari_ritm.session.propagation`) and the replayable record
(:mod:`~napari_ritm.session.record`, :mod:`~napari_ritm.session.replay`).
"""
from napari_ritm.session.session import Session

__all__ = ["Session"]
