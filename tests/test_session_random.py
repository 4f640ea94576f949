"""The session's randomized property test: thousands of random operations on real napari Labels
layers, each checked for touching one label only, under the overwrite policy, with napari's undo
taking every write back exactly."""
from __future__ import annotations

import numpy as np
from napari.layers import Labels

from _fakes import DiskPredictor
from napari_ritm.inference.planes import ImageSource
from napari_ritm.session import Session

# ------------------------------------------------------------------------------------------

class WriteRecorder:
    """Wraps a Labels layer's data_setitem to snapshot the array before every write."""

    def __init__(self, labels: Labels) -> None:
        self.labels = labels
        self.snapshots: list[np.ndarray] = []
        original = labels.data_setitem

        def recording(indices, value, refresh=True):
            self.snapshots.append(labels.data.copy())
            original(indices, value, refresh=refresh)

        labels.data_setitem = recording


def check_writes(labels, recorder, before, editable, overwrite):
    """After one session operation: the writes touched one label only, under the policy, and
    napari's undo takes each write back exactly (then redo restores the result)."""
    after = labels.data.copy()
    changed = after != before
    writes = recorder.snapshots
    if not writes:
        assert not changed.any(), "labels changed outside data_setitem"
        return
    gained = set(np.unique(after[changed]).tolist()) - {0}
    freed = set(np.unique(before[changed & (after == 0)]).tolist())
    edited = gained | freed
    assert len(edited) <= 1, f"one operation edited several labels: {edited}"
    if edited:
        label = edited.pop()
        assert label in editable, f"label {label} was edited, only {editable} may be"
        if not overwrite:
            assert np.isin(before[changed], [0, label]).all(), "a pixel of another label changed"
    states = [*writes, after]
    for i in range(len(writes) - 1, -1, -1):
        labels.undo()
        np.testing.assert_array_equal(labels.data, states[i])
    for i in range(1, len(states)):
        labels.redo()
        np.testing.assert_array_equal(labels.data, states[i])
    recorder.snapshots.clear()


def random_setup(rng):
    """A small random image (2D or a short stack) with bright boxes and pre-painted labels."""
    depth = int(rng.choice([1, 1, 3, 5, 6]))
    h, w = int(rng.integers(14, 28)), int(rng.integers(14, 28))
    shape = (depth, h, w) if depth > 1 else (h, w)
    image = rng.integers(20, 40, shape, dtype=np.uint8)  # dark noise: no slice is constant
    labels_data = np.zeros(shape, np.uint16 if rng.random() < 0.8 else np.uint8)
    for _ in range(int(rng.integers(1, 5))):
        r0, c0 = int(rng.integers(0, h - 4)), int(rng.integers(0, w - 4))
        image[..., r0 : r0 + int(rng.integers(3, 12)), c0 : c0 + int(rng.integers(3, 12))] = 220
    for _ in range(int(rng.integers(0, 6))):
        r0, c0 = int(rng.integers(0, h - 2)), int(rng.integers(0, w - 2))
        labels_data[..., r0 : r0 + int(rng.integers(2, 8)), c0 : c0 + int(rng.integers(2, 8))] = \
            int(rng.integers(1, 6))
    if labels_data.dtype == np.uint8 and rng.random() < 0.5:
        labels_data.flat[0] = 255  # no room for a new id
    if depth > 1 and rng.random() < 0.3:
        image[int(rng.integers(depth))] = 30  # a constant slice cannot be segmented
    return image, labels_data


def random_episode(rng, n_ops):
    """Runs ``n_ops`` random operations on a fresh random image/labels; returns ops run."""
    image, labels_data = random_setup(rng)
    h, w = image.shape[-2:]
    depth = image.shape[0] if image.ndim == 3 else 1
    labels = Labels(labels_data)
    recorder = WriteRecorder(labels)
    session = Session(ImageSource(image), labels,
                      predictor=DiskPredictor(radius=float(rng.integers(2, 6))),
                      overwrite=bool(rng.random() < 0.2))
    probs_after_click: list = []  # probabilities after each applied click, to check undo exactly

    weights = {"pos": 8, "neg": 3, "undo": 3, "finish": 4, "reset": 1, "refine_at": 2,
               "refine_sel": 1, "threshold": 1, "paint": 1, "napari_undo": 1, "switch": 1}
    if depth > 1:
        weights.update(slice=3, propagate_up=1, propagate_down=1, whole=1)
    ops = list(weights)
    p = np.array(list(weights.values()), float) / sum(weights.values())
    for _ in range(n_ops):
        op = str(rng.choice(ops, p=p))
        before = labels.data.copy()
        overwrite = session.overwrite
        # the one label an operation may edit: the object's; else a new id (or, for propagate,
        # the object finished last)
        if session.object_id is not None:
            editable = {session.object_id}
        else:
            editable = {int(before.max()) + 1}
            if op.startswith("propagate") or op == "whole":
                editable.add(session.last_committed)
        if op in ("pos", "neg"):
            n_clicks = len(session.clicks)
            if op == "pos" and rng.random() < 0.8:  # mostly on the object, as users do
                bright = np.argwhere(image[session.key] > 100)
                y, x = bright[rng.integers(len(bright))] if len(bright) else (0, 0)
            else:
                y, x = rng.integers(0, h), rng.integers(0, w)
            session.click(y, x, op == "pos")
            session.run_pending()
            if len(session.clicks) == n_clicks + 1:
                probs_after_click.append(session.probs)
        elif op == "undo":
            if session.undo():
                session.run_pending()
                probs_after_click.pop()
                expected = probs_after_click[-1] if probs_after_click else None
                if expected is None:
                    assert session.probs is None
                else:
                    np.testing.assert_array_equal(session.probs, expected)
        elif op == "finish":
            session.finish()
            session.run_pending()
            if session.stacks.wants_repropagation:  # a corrected propagated slice: carried on
                run = session.stacks.repropagate()
                if run is not None:
                    for step in run.steps():
                        session.stacks.apply_step(step)
                    session.stacks.end()
        elif op == "reset":
            session.reset()
        elif op == "refine_at":
            session.refine_at(rng.integers(0, h), rng.integers(0, w))
        elif op == "refine_sel":
            session.refine(int(rng.integers(1, 7)))
        elif op == "threshold":
            session.set_threshold(float(rng.choice([0.3, 0.49, 0.8])))
        elif op == "paint":  # the user paints with napari's brush in between
            rows, cols = np.nonzero(np.ones((2, 2), bool))
            lead = tuple(np.full(4, k) for k in session.key)
            r, c = int(rng.integers(0, h - 2)), int(rng.integers(0, w - 2))
            labels.data_setitem((*lead, rows + r, cols + c), int(rng.integers(1, 6)))
        elif op == "napari_undo":
            labels.undo()
        elif op == "slice":
            session.set_slice((int(rng.integers(0, depth)),))
        elif op == "switch":  # the user picks another image (or comes back): a new session
            session.reset("")
            image = np.ascontiguousarray(image[..., ::-1]) if rng.random() < 0.5 else image
            session = Session(ImageSource(image), labels, predictor=session.predictor,
                              overwrite=session.overwrite)
            probs_after_click.clear()
        elif op == "whole":
            run = session.stacks.propagate_both()
            if run is not None:
                for step in run.steps():
                    session.stacks.apply_step(step)
                session.stacks.end()
        else:
            prop = session.stacks.propagate(1 if op == "propagate_up" else -1)
            if prop is not None:
                label, start = session.object_id, session.key
                for step in prop.steps():
                    session.stacks.apply_step(step)
                session.stacks.end()
                if not overwrite:  # its pixels on other slices are never changed
                    for z in range(depth):
                        if (z,) != start and (before[z] == label).any():
                            np.testing.assert_array_equal(labels.data[z] == label,
                                                          before[z] == label)
                assert session.object_id is None  # the next click starts a new object
        if op in ("paint", "napari_undo"):
            recorder.snapshots.clear()
            continue
        if op in ("pos", "neg", "undo", "threshold", "refine_at", "refine_sel", "reset"):
            assert not recorder.snapshots, f"{op} wrote into the labels"
        check_writes(labels, recorder, before, editable, overwrite)
        if not session.clicks:
            probs_after_click.clear()
        assert len(probs_after_click) == len(session.clicks)
    return n_ops


def test_randomized_operations_keep_every_other_label_intact():
    rng = np.random.default_rng(20240605)
    total = sum(random_episode(rng, 100) for _ in range(30))
    assert total >= 3000


