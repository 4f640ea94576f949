"""Training and fine-tuning with the RITM recipe.

- :mod:`~napari_ritm.training.losses`: normalized focal loss + auxiliary BCE;
- :mod:`~napari_ritm.training.sampler`: the multi-point click sampler for training crops;
- :mod:`~napari_ritm.training.iterative`: the mask-guided iterative clicks before each step;
- :mod:`~napari_ritm.training.augment`: resize, flips, 90° rotations, crop, intensity changes;
- :mod:`~napari_ritm.training.data`: folders or arrays of labelled images, splits, the Dataset;
- :mod:`~napari_ritm.training.trainer`: :class:`Trainer` / :func:`train` (CPU, CUDA, DDP);
- :mod:`~napari_ritm.training.validate`: validation loss and NoC during training.

Command line: ``napari-ritm train`` and ``napari-ritm finetune``; recipes in ``recipes/``.
"""
