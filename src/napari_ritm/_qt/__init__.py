"""Everything of napari-ritm that imports Qt or napari: the dock widget, its panels, the layers it
draws, its shortcuts and napari's activity bars, and the sample data napari offers. The layers
below (``session``, ``inference``, ``model``) never import this package."""
