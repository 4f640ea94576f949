"""``napari-ritm evaluate`` end to end on a tiny dataset."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_ritm.cli import main
from napari_ritm.evaluation import baselines


@pytest.fixture()
def toy_set(tmp_path):
    """Two 48x48 images with bright squares (3 objects in all)."""
    root = tmp_path / "toy"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    rng = np.random.default_rng(0)
    boxes = {"a": [(5, 20, 5, 20), (28, 44, 26, 42)], "b": [(10, 30, 12, 36)]}
    for name, rects in boxes.items():
        image = np.full((48, 48), 40.0)
        labels = np.zeros((48, 48), np.uint16)
        for idx, (y0, y1, x0, x1) in enumerate(rects, start=1):
            image[y0:y1, x0:x1] = 200
            labels[y0:y1, x0:x1] = idx
        image = np.clip(image + rng.normal(0, 5, image.shape), 0, 255).astype(np.uint8)
        tifffile.imwrite(root / "images" / f"{name}.tif", image)
        tifffile.imwrite(root / "labels" / f"{name}.tif", labels)
    return root


def test_evaluate_baseline_writes_table_json_and_plot(toy_set, tmp_path, capsys):
    out, png = tmp_path / "res" / "eval.json", tmp_path / "curve.png"
    rc = main(["evaluate", "--model", "baseline:watershed", "--data", str(toy_set),
               "--json", str(out), "--plot", str(png)])
    assert rc == 0
    table = capsys.readouterr().out
    assert "NoC@90" in table and "toy" in table
    report = json.loads(out.read_text())
    assert set(report) == {"model", "mode", "flip", "threshold", "init_masks", "datasets"}
    assert report["init_masks"] is None
    assert report["threshold"] == 0.49
    assert report["model"] == "baseline:watershed"
    assert report["mode"] is None and report["flip"] is None  # baselines have no predictor
    toy = report["datasets"]["toy"]
    assert set(toy) == {"objects", "NoC@80", "NoC@85", "NoC@90", "NoF@85", "NoF@90",
                        "s_per_click", "samples"}
    assert toy["objects"] == 3 and isinstance(toy["NoF@90"], int)
    assert [(s["image"], s["label"]) for s in toy["samples"]] == [
        ("a.tif", 1), ("a.tif", 2), ("b.tif", 1)]
    assert all(0 < len(s["ious"]) <= 20 for s in toy["samples"])
    assert 1 <= toy["NoC@90"] <= 20
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ctrl_c_leaves_a_usable_partial_json(toy_set, tmp_path, monkeypatch, capsys):
    class Interrupting(baselines.WatershedBaseline):
        calls = 0

        def predict(self, clicks):
            type(self).calls += 1
            if len(clicks) == 1 and type(self).calls > 1:  # first click of the second object
                raise KeyboardInterrupt
            return super().predict(clicks)

    monkeypatch.setitem(baselines.BASELINES, "interrupting", Interrupting)
    out = tmp_path / "partial.json"
    rc = main(["evaluate", "--model", "baseline:interrupting", "--data", str(toy_set),
               "--json", str(out), "--all-clicks", "--clicks", "3"])
    assert rc == 130
    assert "interrupted" in capsys.readouterr().err
    report = json.loads(out.read_text())
    toy = report["datasets"]["toy"]
    assert toy["objects"] == 1 and len(toy["samples"][0]["ious"]) == 3


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "baseline:nope"], "unknown baseline"),
        (["--model", "baseline:watershed", "--clicks", "0"], "--clicks"),
        (["--model", "baseline:watershed", "--min-area", "100000"], "no object"),
        (["--model", "/no/such/model.pth"], "--model /no/such/model.pth: No model file at"),
        (["--model", "baseline:watershed", "--no-flip"], "--no-flip applies to models"),
    ],
)
def test_bad_input_is_a_usage_error(toy_set, argv, message, capsys):
    assert main(["evaluate", "--data", str(toy_set), *argv]) == 2
    assert message in capsys.readouterr().err


def test_split_file_selects_the_listed_images(toy_set, tmp_path, capsys):
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"format": "napari-ritm-split/1", "seed": 0, "val_fraction": 0.5,
                                 "sets": {"toy": {"train": ["a"], "val": ["b"]}}}))
    out = tmp_path / "val.json"
    base = ["evaluate", "--model", "baseline:watershed", "--data", str(toy_set), "--split",
            str(split)]
    assert main([*base, "--json", str(out)]) == 0
    assert [s["image"] for s in json.loads(out.read_text())["datasets"]["toy"]["samples"]] == [
        "b.tif"]
    assert main([*base, "--subset", "train", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["datasets"]["toy"]["objects"] == 2
    split.write_text(json.dumps({"format": "napari-ritm-split/1", "sets": {"other": {}}}))
    assert main(base) == 2
    assert "no set named 'toy'" in capsys.readouterr().err


def test_missing_data_folder_is_a_usage_error(tmp_path, capsys):
    rc = main(["evaluate", "--model", "baseline:watershed", "--data", str(tmp_path / "none")])
    assert rc == 2 and f"--data {tmp_path / 'none'}: no such folder" in capsys.readouterr().err
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.tif").write_bytes(b"")
    rc = main(["evaluate", "--model", "baseline:watershed", "--data", str(tmp_path / "flat")])
    err = capsys.readouterr().err
    assert rc == 2 and "expected the subfolders images/ and labels/" in err and "a.tif" in err


def test_unusable_image_is_a_usage_error_after_the_good_ones(toy_set, tmp_path, capsys):
    tifffile.imwrite(toy_set / "images" / "c.tif", np.zeros((48, 48, 2), np.uint16))
    labels = np.zeros((48, 48), np.uint16)
    labels[4:12, 4:12] = 1
    tifffile.imwrite(toy_set / "labels" / "c.tif", labels)
    out = tmp_path / "kept.json"
    rc = main(["evaluate", "--model", "baseline:watershed", "--data", str(toy_set),
               "--json", str(out)])
    assert rc == 2 and "c.tif" in capsys.readouterr().err
    assert json.loads(out.read_text())["datasets"]["toy"]["objects"] == 3


def test_evaluate_model_checkpoint_fast_mode(toy_set, tmp_path, ref_dir):
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path / "model.json"
        fake = ref_dir / "checkpoints/fake_coco_lvis_h18s_itermask.pth"
        rc = main(["evaluate", "--model", str(fake),
                   "--data", str(toy_set), "--clicks", "2", "--limit", "1", "--mode", "fast",
                   "--json", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    toy = json.loads(out.read_text())["datasets"]["toy"]
    assert toy["objects"] == 1 and 1 <= len(toy["samples"][0]["ious"]) <= 2
    assert toy["NoC@90"] <= 2


def test_window_mode_mirrors_unless_no_flip(toy_set, tmp_path, ref_dir):
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = str(ref_dir / "checkpoints/fake_coco_lvis_h18s_itermask.pth")
    reports = []
    try:
        for extra in ([], ["--no-flip"]):
            out = tmp_path / f"window{len(extra)}.json"
            assert main(["evaluate", "--model", model, "--data", str(toy_set), "--clicks", "2",
                         "--limit", "1", "--json", str(out), *extra]) == 0
            reports.append(json.loads(out.read_text()))
    finally:
        torch.set_num_threads(threads)
    assert [(r["mode"], r["flip"]) for r in reports] == [("window", True), ("window", False)]
    ious = [r["datasets"]["toy"]["samples"][0]["ious"] for r in reports]
    assert ious[0] != ious[1]  # the random network is not mirror-symmetric


def test_init_masks_refine_from_an_automatic_tools_labels(toy_set, tmp_path, ref_dir, capsys):
    """Each object starts from the automatic label that overlaps it most; an object no label
    touches is left out; the report gives the IoU before any click."""
    auto = tmp_path / "auto"
    auto.mkdir()
    a = np.zeros((48, 48), np.uint16)
    a[5:20, 5:30] = 7  # the first square, too wide; the second square missed
    tifffile.imwrite(auto / "a.tif", a)
    b = np.zeros((48, 48), np.uint16)
    b[12:28, 12:36] = 3  # a little tight
    tifffile.imwrite(auto / "b.tif", b)
    model = str(ref_dir / "checkpoints/fake_coco_lvis_h18s_itermask.pth")
    out = tmp_path / "refine.json"
    assert main(["evaluate", "--model", model, "--data", str(toy_set), "--init-masks", str(auto),
                 "--clicks", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    toy = report["datasets"]["toy"]
    assert toy["objects"] == 2 and report["init_masks"] == [str(auto)]
    starts = sorted(s["start_iou"] for s in toy["samples"])
    assert starts == pytest.approx([15 * 15 / (15 * 25), 16 * 24 / (20 * 24)], abs=1e-6)
    assert toy["start_iou"] == pytest.approx(np.mean(starts))
    assert main(["evaluate", "--model", model, "--data", str(toy_set), "--init-masks",
                 str(auto), "--init-masks", str(auto)]) == 2
    assert "one --init-masks per --data" in capsys.readouterr().err
