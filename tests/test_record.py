"""The replayable record: a session on a plain numpy labels array logs every action it applies,
and replaying the record rebuilds exactly the same labels (randomized sessions, and the CLI with
a real network)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from _fakes import DiskPredictor
from napari_ritm.session import Session
from napari_ritm.session.record import ArrayLabels, Record, fingerprint
from napari_ritm.session.replay import replay
from test_session_random import random_setup


def test_a_session_writes_into_a_plain_numpy_array_with_undo():
    image = np.full((30, 30), 20, np.uint8)
    image[5:25, 5:25] = 200
    labels = np.zeros((30, 30), np.uint16)
    session = Session(image, labels, predictor=DiskPredictor(radius=4))
    session.click(15, 15, True)
    session.finish()
    session.run_pending()
    assert labels[15, 15] == 1  # the caller's array, written in place
    assert isinstance(session.labels, ArrayLabels) and session.labels.data is labels
    session.labels.undo()
    assert not labels.any()


def random_recorded_session(rng, n_ops=80):
    image, labels = random_setup(rng)
    radius = float(rng.integers(2, 6))
    session = Session(image, labels.copy(), predictor=DiskPredictor(radius=radius),
                      overwrite=bool(rng.random() < 0.2))
    h, w = image.shape[-2:]
    depth = image.shape[0] if image.ndim == 3 else 1
    for _ in range(n_ops):
        op = rng.choice(["click", "click", "click", "neg", "undo", "finish", "reset", "refine",
                         "threshold", "overwrite", "slice", "propagate", "labels_undo"])
        if op in ("click", "neg"):
            session.click(int(rng.integers(h)), int(rng.integers(w)), op == "click")
        elif op == "undo":
            session.undo()
        elif op == "finish":
            session.finish()
        elif op == "reset":
            session.reset()
        elif op == "refine":
            session.refine(int(rng.integers(1, 7)))
        elif op == "threshold":
            session.set_threshold(float(rng.choice([0.3, 0.49, 0.8])))
        elif op == "overwrite":
            session.set_overwrite(bool(rng.random() < 0.5))
        elif op == "slice" and depth > 1:
            session.set_slice((int(rng.integers(depth)),))
        elif op == "propagate" and depth > 1:
            prop = session.stacks.propagate(int(rng.choice([1, -1])))
            if prop is not None:
                steps = prop.steps()
                for _, step in zip(range(int(rng.integers(0, 4))), steps):
                    session.stacks.apply_step(step)
                session.stacks.end(cancelled=bool(rng.random() < 0.5))
        elif op == "labels_undo":
            session.labels.undo()
            session.labels_undone()
        session.run_pending()
    return image, labels, session, radius


def test_replay_rebuilds_randomized_sessions_exactly(tmp_path):
    rng = np.random.default_rng(18)
    actions = 0
    for episode in range(25):
        image, start, session, radius = random_recorded_session(rng)
        path = tmp_path / f"r{episode}.json"
        session.save_record(path)
        record = Record.load(path)
        actions += len(record.actions)
        result = replay(path, image, start.copy(),
                        predictor_for=lambda entry, r=radius: DiskPredictor(radius=r))
        np.testing.assert_array_equal(result.labels, session.labels.data)
        assert result.exact is True and result.notes == []
    assert actions >= 1000


def test_replay_notices_a_changed_image_and_changed_labels(tmp_path):
    rng = np.random.default_rng(3)
    image, start, session, radius = random_recorded_session(rng, 40)
    session.save_record(tmp_path / "r.json")
    other = image.copy()
    other[..., 0, 0] = 255 - other[..., 0, 0]
    result = replay(tmp_path / "r.json", other, start.copy(),
                    predictor_for=lambda entry: DiskPredictor(radius=radius))
    assert any("image differs" in n for n in result.notes)
    assert fingerprint(start) != fingerprint(start + 1)


def test_cli_replay_with_a_real_network_is_exact(tmp_path, ref_dir, capsys):
    tifffile = pytest.importorskip("tifffile")
    from napari_ritm.cli import main
    from napari_ritm.inference.modes import WINDOW_SETTINGS, make_predictor
    from napari_ritm.model.checkpoint import load_checkpoint
    from napari_ritm.model.zoo import model_file_hash

    checkpoint = str(ref_dir / "checkpoints" / "fake_coco_lvis_h18s_itermask.pth")
    rng = np.random.default_rng(5)
    image = (rng.random((120, 140)) * 255).astype(np.uint8)
    image[30:70, 40:90] = 230
    labels = np.zeros((120, 140), np.uint16)
    session = Session(image, labels, threshold=0.3)
    info = {"model": checkpoint, "sha256": model_file_hash(checkpoint), "mode": "window",
            "settings": {k: WINDOW_SETTINGS[k]
                         for k in ("second_look", "local_corrections", "thin_change")}}
    session.set_predictor(make_predictor(load_checkpoint(checkpoint), "window",
                                         interactive=True), info)
    for y, x, positive in [(50, 60, True), (35, 85, False), (60, 45, True)]:
        session.click(y, x, positive)
    session.undo()
    session.finish()
    session.click(100, 20, True)
    session.finish()
    session.run_pending()
    assert labels.any()
    tifffile.imwrite(tmp_path / "image.tif", image)
    session.save_record(tmp_path / "record.json")
    assert json.loads((tmp_path / "record.json").read_text())["actions"][2]["op"] == "predictor"
    out = tmp_path / "replayed.tif"
    assert main(["replay", str(tmp_path / "record.json"), "--image", str(tmp_path / "image.tif"),
                 "--out", str(out)]) == 0
    assert "the labels match the record" in capsys.readouterr().out
    np.testing.assert_array_equal(tifffile.imread(out), labels)
