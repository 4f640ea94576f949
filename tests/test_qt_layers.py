"""The napari layer helpers of the widget that need no viewer: napari's undo and redo of a
Labels layer, told apart from a step on an empty history without napari's private history."""
from __future__ import annotations

import warnings

import numpy as np
from napari.layers import Labels

from napari_ritm._qt.layers import history_step


def painted_layer() -> Labels:
    layer = Labels(np.zeros((8, 8), np.int32))
    layer.data_setitem((np.array([1, 2]), np.array([1, 2])), 5)
    return layer


def test_a_step_says_whether_it_changed_the_labels():
    layer = painted_layer()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # napari's private-access deprecation
        assert history_step(layer, "undo") and layer.data.sum() == 0
        assert not history_step(layer, "undo")  # the history is empty now
        assert history_step(layer, "redo") and layer.data.sum() == 10
        assert not history_step(layer, "redo")
    n_listeners = len(layer.events.set_data.callbacks)
    history_step(layer, "undo")
    assert len(layer.events.set_data.callbacks) == n_listeners  # none left behind


def test_on_a_hidden_layer_a_step_is_taken_to_have_changed_something():
    layer = painted_layer()
    layer.visible = False
    assert history_step(layer, "undo") and layer.data.sum() == 0
