"""NoC evaluation (the RITM paper's protocol) and classic click-seeded baselines.

- :mod:`~napari_ritm.evaluation.datasets`: samples (one per instance) from ``images/`` +
  ``labels/``;
- :mod:`~napari_ritm.evaluation.clicker`: the simulated user's next-click rule;
- :mod:`~napari_ritm.evaluation.noc`: the click loop, IoU, NoC/NoF and mIoU-per-click;
- :mod:`~napari_ritm.evaluation.baselines`: random walker and watershed with the predictor
  interface;
- :mod:`~napari_ritm.evaluation.plots`: IoU-vs-clicks curves.

The ``napari-ritm evaluate`` command puts them together.
"""
from napari_ritm.evaluation.clicker import Clicker
from napari_ritm.evaluation.datasets import InstanceDataset, Sample
from napari_ritm.evaluation.noc import DatasetResult, evaluate_dataset, evaluate_sample, noc

__all__ = ["Clicker", "DatasetResult", "InstanceDataset", "Sample", "evaluate_dataset",
           "evaluate_sample", "noc"]
