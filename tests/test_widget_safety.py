"""Issue 16 in the widget, driven as a user does: clicks land whichever layer is selected,
propagation ends its object, the clicks layer's own tools cannot desynchronise it, undo past the
last click asks first, and each image keeps its own labels layer."""
from __future__ import annotations

import numpy as np

from _fakes import DiskPredictor
from test_widget import blob_image, mouse_click, open_widget, wait_idle


def test_a_click_after_propagate_starts_a_new_object(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    stack = np.full((6, 40, 40), 10, np.uint16)
    stack[:, 5:15, 5:15] = 3000  # object A on every slice
    stack[:, 25:35, 25:35] = 3000  # object B
    viewer.add_image(stack, name="stack")
    widget = open_widget(viewer, qtbot, DiskPredictor(radius=4))
    labels = widget.labels_layer
    viewer.dims.set_current_step(0, 2)
    mouse_click(viewer, (2, 10, 10))
    wait_idle(widget, qtbot)
    widget.propagate(1)
    wait_idle(widget, qtbot)
    a_before = labels.data == 1
    assert a_before[3:].any(axis=(1, 2)).all()
    mouse_click(viewer, (2, 30, 30))  # elsewhere, then Finish: a new object with a new id
    wait_idle(widget, qtbot)
    widget.finish()
    wait_idle(widget, qtbot)
    np.testing.assert_array_equal(labels.data == 1, a_before)  # A lost no pixel
    assert labels.data[2, 30, 30] == 2


def test_clicks_land_whichever_session_layer_is_selected(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(blob_image((40, 50), (5, 35, 5, 45)), name="cells")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    for layer in (viewer.layers["cells"], widget.labels_layer, widget.preview_layer):
        viewer.layers.selection.active = layer  # e.g. opening a sample selects the image
        mouse_click(viewer, (20, 10 + len(widget.session.clicks)))
        wait_idle(widget, qtbot)
    assert len(widget.session.clicks) == 3
    widget.labels_layer.mode = "paint"  # the user paints: the brush gets the click, not us
    viewer.layers.selection.active = widget.labels_layer
    mouse_click(viewer, (25, 25))
    wait_idle(widget, qtbot)
    assert len(widget.session.clicks) == 3


def test_refine_selected_label_gives_the_clicks_back(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(blob_image((40, 40), (5, 35, 5, 35)), name="cells")
    painted = np.zeros((40, 40), np.uint16)
    painted[10:14, 10:14] = 7
    viewer.add_labels(painted, name="cellpose")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    widget.labels_combo.setCurrentText("cellpose")
    viewer.layers.selection.active = widget.labels_layer  # where the label is picked
    widget.labels_layer.selected_label = 7
    widget.refine_selected()
    assert viewer.layers.selection.active == widget.clicks_layer  # (a proxy of it)
    mouse_click(viewer, (20, 20))
    wait_idle(widget, qtbot)
    assert len(widget.session.clicks) == 1 and widget.session.object_id == 7


def test_the_clicks_layer_tools_cannot_desynchronise_it(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(blob_image((40, 40), (5, 35, 5, 35)))
    widget = open_widget(viewer, qtbot, DiskPredictor())
    mouse_click(viewer, (20, 20))
    mouse_click(viewer, (22, 24))
    wait_idle(widget, qtbot)
    for mode in ("add", "select"):  # the layer's own tool buttons
        widget.clicks_layer.mode = mode
        assert widget.clicks_layer.mode == "pan_zoom"
        assert "drawn for you" in widget.status.text()
    mouse_click(viewer, (10, 10))  # no "index out of bounds": a normal click
    wait_idle(widget, qtbot)
    assert len(widget.clicks_layer.data) == len(widget.session.clicks) == 3


def test_each_image_keeps_its_own_labels_layer(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(blob_image((40, 40), (5, 20, 5, 20)), name="a")
    viewer.add_image(blob_image((40, 40), (20, 35, 20, 35)), name="b")
    viewer.add_image(blob_image((30, 30), (5, 20, 5, 20)), name="small")
    widget = open_widget(viewer, qtbot, DiskPredictor())
    widget.image_combo.setCurrentText("a")
    a_labels = widget.labels_layer
    mouse_click(viewer, (10, 10))
    wait_idle(widget, qtbot)
    widget.finish()
    wait_idle(widget, qtbot)
    a_state = a_labels.data.copy()
    widget.image_combo.setCurrentText("b")  # same shape: still its own layer
    assert widget.labels_layer != a_labels and widget.labels_layer.name == "b labels"
    mouse_click(viewer, (30, 30))
    wait_idle(widget, qtbot)
    widget.finish()
    wait_idle(widget, qtbot)
    np.testing.assert_array_equal(a_labels.data, a_state)
    warnings = []
    widget.warn = warnings.append
    widget.image_combo.setCurrentText("small")  # another shape: a fitting layer, no warning
    assert widget.labels_layer.data.shape == (30, 30) and warnings == []
    widget.image_combo.setCurrentText("a")  # back: the layer used with it before
    assert widget.labels_layer == a_labels


def test_randomized_user_actions_keep_layers_in_sync(make_napari_viewer, qtbot):
    """300 random user actions (clicks with any layer selected, the clicks layer's own tools,
    painting, undo, finish, reset, propagate, switching images): the clicks layer always shows
    the session's clicks, and one action changes at most one label of the labels layer."""
    rng = np.random.default_rng(16)
    viewer = make_napari_viewer()
    stack = np.full((4, 24, 24), 10, np.uint16)
    stack[:, 4:12, 4:12] = 3000
    stack[:, 14:22, 12:22] = 3000
    viewer.add_image(stack, name="one")
    viewer.add_image(stack[:, ::-1].copy(), name="two")
    widget = open_widget(viewer, qtbot, DiskPredictor(radius=3))
    ops = ["click", "click", "click", "right", "finish", "undo", "reset", "tool", "paint",
           "propagate", "switch", "slice"]
    for _ in range(300):
        op = str(rng.choice(ops))
        labels = widget.labels_layer
        before = labels.data.copy()
        if op in ("click", "right"):
            viewer.layers.selection.active = viewer.layers[int(rng.integers(len(viewer.layers)))]
            mouse_click(viewer, (widget.session.key[0], *rng.integers(0, 24, 2)),
                        button=1 if op == "click" else 2)
        elif op == "finish":
            widget.finish()
        elif op == "undo":
            widget.undo()
        elif op == "reset":
            widget.reset()
        elif op == "tool":
            widget.clicks_layer.mode = str(rng.choice(["add", "select", "pan_zoom"]))
        elif op == "paint":  # a brush stroke: the brush gets it, the session does not
            labels.mode = "paint"
            viewer.layers.selection.active = labels
            n = len(widget.session.clicks)
            mouse_click(viewer, (widget.session.key[0], 3, 3))
            assert len(widget.session.clicks) == n
            labels.mode = "pan_zoom"
        elif op == "propagate":
            widget.propagate(int(rng.choice([1, -1])))
        elif op == "switch":
            widget.image_combo.setCurrentText(str(rng.choice(["one", "two"])))
        else:
            viewer.dims.set_current_step(0, int(rng.integers(4)))
        wait_idle(widget, qtbot)
        assert str(widget.clicks_layer.mode) == "pan_zoom"
        assert len(widget.clicks_layer.data) == len(widget.session.clicks), op
        if labels == widget.labels_layer and op not in ("undo", "paint"):  # (users edit)
            changed = labels.data != before
            edited = set(np.unique(labels.data[changed])) | set(np.unique(before[changed]))
            assert len(edited - {0}) <= 1, (op, edited)
