"""Fitting the threshold to the user's outlines: the function, ``napari-ritm fit-threshold`` and
``napari-ritm evaluate --threshold``; a fitted threshold kept in a model's card and used by
``napari-ritm predict``."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from _fakes import RadialPredictor
from napari_ritm.cli import main
from napari_ritm.evaluation.threshold import THRESHOLDS, fit_threshold
from napari_ritm.training.data import LabeledImage


def disks(radius: float, centres=((20, 20), (20, 60), (60, 40)), shape=(80, 80)) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    for k, (y, x) in enumerate(centres, 1):
        labels[np.hypot(rows - y, cols - x) <= radius] = k
    return labels


def sample(labels: np.ndarray) -> LabeledImage:
    return LabeledImage(np.zeros((*labels.shape, 3), np.uint8), labels, "img", "mine")


@pytest.mark.parametrize(("outline", "low", "high"), [(10, 0.45, 0.55), (7, 0.75, 0.85),
                                                       (13, 0.15, 0.25)],
                         ids=["as the model", "tighter", "looser"])
def test_the_fit_follows_how_the_outlines_are_drawn(outline, low, high):
    """The model's masks are disks of radius 10 at 0.5; labels drawn at radius 7 need
    sigmoid(1.5) = 0.82, at radius 13 sigmoid(-1.5) = 0.18."""
    predictor = RadialPredictor(radius=10, width=2)
    fit = fit_threshold(predictor, [sample(disks(outline))])
    assert low <= fit.threshold <= high
    assert fit.objects == 3 and predictor.images_set == 1 and predictor.predict_calls == 3
    assert fit.iou == fit.table[fit.threshold] and fit.iou_current == fit.table[0.49]
    if outline != 10:
        assert fit.iou == max(fit.table.values()) and fit.iou > fit.iou_current + 0.1
    assert set(THRESHOLDS) <= set(fit.table) and 0.49 in THRESHOLDS


def test_the_threshold_in_use_stays_unless_another_gains_enough():
    """Masks that do not change with the threshold keep the one in use, even off the grid; a
    gain below ``min_gain`` does not move it either."""
    predictor = RadialPredictor(radius=10.5, width=1e-3)  # a step: every threshold, one mask
    fit = fit_threshold(predictor, [sample(disks(10.5))], current=0.63)
    assert fit.threshold == fit.current == 0.63 and 0.63 in fit.table
    assert fit.iou == fit.iou_current
    tighter = [sample(disks(7))]
    gain = fit_threshold(RadialPredictor(), tighter)
    assert gain.threshold > 0.49
    kept = fit_threshold(RadialPredictor(), tighter, min_gain=gain.iou - gain.iou_current + 0.01)
    assert kept.threshold == 0.49 and kept.iou == kept.iou_current


def test_small_ignored_and_too_many_objects():
    labels = disks(10)
    labels[0:3, 0:3] = 9  # 9 pixels: below min_area
    labels[70:80, 0:10] = -1  # ignored pixels are no object
    fit = fit_threshold(RadialPredictor(), [sample(labels)], min_area=30)
    assert fit.objects == 3
    two = fit_threshold(RadialPredictor(), [sample(labels)] * 2, max_objects=4)
    assert two.objects == 4
    with pytest.raises(ValueError, match="no labelled object"):
        fit_threshold(RadialPredictor(), [sample(np.zeros((40, 40), np.int32))])


def test_progress_and_stop():
    seen = []
    fit = fit_threshold(RadialPredictor(), [sample(disks(8))],
                        on_progress=lambda *a: seen.append(a), should_stop=lambda: len(seen) >= 2)
    assert seen == [(1, 3), (2, 3)] and fit.objects == 2


@pytest.fixture()
def squares(tmp_path):
    """One 64x64 image with two bright squares, labelled."""
    root = tmp_path / "squares"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    image = np.full((64, 64), 30, np.uint8)
    labels = np.zeros((64, 64), np.uint16)
    for k, (y, x) in enumerate(((8, 8), (36, 30)), 1):
        image[y:y + 20, x:x + 20] = 220
        labels[y:y + 20, x:x + 20] = k
    tifffile.imwrite(root / "images" / "a.tif", image)
    tifffile.imwrite(root / "labels" / "a.tif", labels)
    return root


def test_fit_threshold_command(squares, tmp_path, capsys):
    out = tmp_path / "fit.json"
    assert main(["fit-threshold", "--data", str(squares), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "<- chosen" in printed and "on 2 objects" in printed
    report = json.loads(out.read_text())
    assert report["objects"] == 2 and report["default"] == 0.49 and report["flip"] is True
    assert report["iou"] > max(report["table"].values()) - 0.01  # kept unless 0.01 better
    assert report["table"][f"{report['threshold']:.2f}"] == report["iou"]
    assert main(["fit-threshold", "--data", str(squares), "--min-area", "1000"]) == 2
    assert "no labelled object of at least 1000 pixels" in capsys.readouterr().err
    assert main(["fit-threshold", "--data", str(squares), "--max-objects", "0"]) == 2


def test_evaluate_at_another_threshold(squares, tmp_path, capsys):
    """The report says the threshold; a stricter one gives smaller first masks."""
    reports = {}
    for threshold in (0.49, 0.999):
        out = tmp_path / f"{threshold}.json"
        assert main(["evaluate", "--model", "default", "--data", str(squares), "--clicks", "1",
                     "--threshold", str(threshold), "--json", str(out)]) == 0
        reports[threshold] = json.loads(out.read_text())
        assert reports[threshold]["threshold"] == threshold
    first = {t: [s["ious"][0] for s in r["datasets"]["squares"]["samples"]]
             for t, r in reports.items()}
    assert all(a > b for a, b in zip(first[0.49], first[0.999]))
    assert main(["evaluate", "--model", "default", "--data", str(squares),
                 "--threshold", "1.5"]) == 2
    assert "--threshold must be between 0 and 1" in capsys.readouterr().err


def test_a_model_card_keeps_the_fitted_threshold(tmp_path, monkeypatch):
    """Models with a card get one (the user's own, a .pth with its .json), registered models a
    card of their own that counts while their file is the one fitted with; a card without a
    usable value gives none."""
    from napari_ritm.evaluation.threshold import ThresholdFit
    from napari_ritm.model.user_models import (
        card_file,
        record_threshold,
        recorded_threshold,
        save_user_model,
        unique_name,
    )
    from napari_ritm.model.zoo import load_model, model_file_hash

    monkeypatch.setenv("NAPARI_RITM_MODELS", str(tmp_path / "models"))
    fit = ThresholdFit(0.65, 0.87, 0.49, 0.78, 20, {})
    registered = tmp_path / "models" / "registered" / "default.json"
    assert card_file("default") == registered and recorded_threshold("default") is None
    assert record_threshold("default", fit, {"mode": "window", "flip": True}) == registered
    card = json.loads(registered.read_text())
    assert card["sha256"] == model_file_hash("default") and card["registered_model"] == "default"
    assert card["threshold_fit"]["predictor"] == {"mode": "window", "flip": True}
    assert recorded_threshold("default") == 0.65
    assert recorded_threshold("default", sha256=card["sha256"]) == 0.65
    assert recorded_threshold("default", sha256="0" * 64) is None  # another file
    registered.write_text(json.dumps({**card, "sha256": "0" * 64}))  # fitted with an older one
    assert recorded_threshold("default") is None
    registered.write_text(json.dumps({**card, "sha256": None}))  # no file named: not this one
    assert recorded_threshold("default") is None
    assert unique_name("default") == "default-2"  # a user model never hides a registered one
    save_user_model(load_model("default"), "mine", {"source_model": "default"})
    assert recorded_threshold("mine") is None
    assert record_threshold("mine", fit) == tmp_path / "models" / "mine.json"
    assert recorded_threshold("mine") == 0.65
    card = json.loads((tmp_path / "models" / "mine.json").read_text())
    assert card["source_model"] == "default" and card["threshold_fit"]["objects"] == 20
    alone = tmp_path / "alone.pth"
    assert record_threshold(alone, fit) is None and not alone.with_suffix(".json").exists()
    stray = json.dumps({"threshold": 0.6})  # another tool's file: no card of ours
    alone.with_suffix(".json").write_text(stray)
    assert recorded_threshold(alone) is None and record_threshold(alone, fit) is None
    assert alone.with_suffix(".json").read_text() == stray
    for value in (1.5, "0.6", True):
        alone.with_suffix(".json").write_text(json.dumps({"source_model": "x", "threshold": value}))
        assert recorded_threshold(alone) is None
    alone.with_suffix(".json").write_text(json.dumps({"source_model": "x"}))
    assert record_threshold(alone, fit) == alone.with_suffix(".json")
    assert recorded_threshold(alone) == 0.65


def test_fit_threshold_save_and_predict_use_it(squares, tmp_path, monkeypatch, capsys):
    """``fit-threshold --save`` keeps the fit in the card of the user's model (or for the
    built-in model); ``predict`` without ``--threshold`` then uses it, and says so; a model
    file without a card refuses --save."""
    from napari_ritm.model.user_models import recorded_threshold, save_user_model
    from napari_ritm.model.zoo import load_model, local_path

    monkeypatch.setenv("NAPARI_RITM_MODELS", str(tmp_path / "models"))
    alone = tmp_path / "alone.pth"
    alone.write_bytes(local_path("default").read_bytes())
    assert main(["fit-threshold", "--model", str(alone), "--data", str(squares), "--save"]) == 2
    assert f"--save: {alone} has no model card" in capsys.readouterr().err
    assert main(["fit-threshold", "--data", str(squares), "--save"]) == 0
    kept = recorded_threshold("default")
    assert kept is not None and kept != 0.49
    assert "registered/default.json" in capsys.readouterr().out
    image = squares / "images" / "a.tif"
    assert main(["predict", str(image), "-c", "18,18,+", "-o", str(tmp_path / "d.tif")]) == 0
    assert f"threshold {kept:g}: fitted to your labels (the card of default)" in \
        capsys.readouterr().out
    save_user_model(load_model("default"), "mine", {"source_model": "default"})
    assert main(["fit-threshold", "--model", "mine", "--data", str(squares), "--save"]) == 0
    assert "kept in" in capsys.readouterr().out
    assert recorded_threshold("mine") is not None
    card = tmp_path / "models" / "mine.json"
    card.write_text(json.dumps({"source_model": "default", "threshold": 1.0}))  # no object
    argv = ["predict", str(image), "-c", "18,18,+", "--model", "mine",
            "-o", str(tmp_path / "m.tif")]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "threshold 1: fitted to your labels (the card of mine)" in captured.out
    assert "(now 1)" in captured.err
    assert main([*argv, "--threshold", "0.49"]) == 0  # the option wins over the card
    assert tifffile.imread(tmp_path / "m.tif").sum() > 300
