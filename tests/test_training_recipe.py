"""The v2 training recipe: bfloat16 detection, object crops at the window predictor's scales,
single first-click samples, and the CLI flags that turn them on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_ritm.training.object_crops import ObjectCropper, object_boxes
from napari_ritm.training.precision import autocast_dtype, cpu_has_native_bf16
from napari_ritm.training.sampler import MultiPointSampler


@pytest.mark.parametrize(
    "flags,native",
    [("fpu avx2 avx512f avx512_bf16 sse", True), ("fpu amx_bf16 amx_tile", True),
     ("fpu avx2 avx512f avx512bw", False)],
)
def test_bf16_is_detected_from_the_cpu_flags(tmp_path, flags, native):
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n")
    assert cpu_has_native_bf16(info) is native


def test_autocast_dtype_falls_back_to_float32(monkeypatch, tmp_path):
    from napari_ritm.training import precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert autocast_dtype(torch.device("cpu")) is None
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert autocast_dtype(torch.device("cpu")) == torch.bfloat16
    assert autocast_dtype(torch.device("cpu"), enabled=False) is None
    assert cpu_has_native_bf16(tmp_path / "missing") is False


def _cells(shape=(600, 700)):
    labels = np.zeros(shape, np.int32)
    labels[100:110, 100:112] = 1  # 12 px: small
    labels[300:500, 200:460] = 2  # 260 px: large
    image = np.zeros((*shape, 3), np.uint8)
    image[labels > 0] = 200
    return image, labels


def test_object_boxes_skip_small_objects():
    _, labels = _cells()
    assert object_boxes(labels, min_area=50) == {1: (100, 109, 100, 111), 2: (300, 499, 200, 459)}
    assert list(object_boxes(labels, min_area=200)) == [2]


def test_views_follow_the_window_predictor_scales():
    window = {"net_size": 256, "first_window": 96, "max_window": 1024, "min_crop_size": 96}
    cropper = ObjectCropper((192, 192), window=window, jitter=(1.0, 1.0), cut_prob=0.0)
    rng = np.random.default_rng(0)
    small = [cropper.view((100, 109, 100, 111), (600, 700), rng)[0] for _ in range(50)]
    # a 12 px object: the 96 px first window or the 96 px minimum zoom, both 256 / 96
    np.testing.assert_allclose(small, 256 / 96)
    large = sorted(cropper.view((300, 499, 200, 459), (600, 700), rng)[0] for _ in range(200))
    # a 260 px object: the 384 px first window (96 -> 192 -> 384, the first >= 1.2 x 260) or a
    # zoom window of 1.4-1.82 x 260 px
    first, zoom = 256 / 384, [s for s in large if abs(s - 256 / 384) > 1e-9]
    assert first in large and zoom
    assert 256 / (1.3 * 1.4 * 260) - 1e-6 <= min(zoom) and max(zoom) <= 256 / (1.4 * 260) + 1e-6


def test_deep_cut_views_use_every_smaller_first_window():
    window = {"net_size": 256, "first_window": 96, "max_window": 1024, "min_crop_size": 96}
    box, hw = (300, 499, 200, 459), (600, 700)  # 260 px: held by the 384 px window
    scales = {}
    for levels in (1, 2, 5):
        cropper = ObjectCropper((192, 192), window=window, first_view_prob=1.0, cut_prob=1.0,
                                cut_levels=levels, jitter=(1.0, 1.0))
        rng = np.random.default_rng(0)
        scales[levels] = {round(cropper.view(box, hw, rng)[0], 6) for _ in range(100)}
    # one level: only the window before the growth step; more: down to the first window, no lower
    assert scales[1] == {round(256 / 192, 6)}
    assert scales[2] == scales[5] == {round(256 / 192, 6), round(256 / 96, 6)}


def test_deep_cut_crop_inside_a_large_object_is_all_object():
    image, labels = _cells()
    boxes = {2: object_boxes(labels, 50)[2]}
    cropper = ObjectCropper((96, 96), first_view_prob=1.0, cut_prob=1.0, cut_levels=2,
                            jitter=(1.0, 1.0))
    full = [(cropper(image, labels, boxes, np.random.default_rng(s))[1] == 2).mean()
            for s in range(40)]
    # a 96 px first window inside the 200 x 260 px object: the crop (its middle) is all object
    assert max(full) == 1.0 and min(full) > 0.3


def test_object_crop_contains_its_target_near_the_middle():
    image, labels = _cells()
    boxes = object_boxes(labels, 50)
    cropper = ObjectCropper((96, 96), first_view_prob=0.0)  # zoom views: the object centred
    for seed in range(10):
        img, lab, target = cropper(image, labels, boxes, np.random.default_rng(seed))
        assert img.shape == (96, 96, 3) and img.dtype == np.float32 and lab.shape == (96, 96)
        rows, cols = np.nonzero(lab == target)
        assert rows.size > 0
        assert abs(rows.mean() - 47.5) < 20 and abs(cols.mean() - 47.5) < 20


def test_single_click_samples_have_one_positive_at_the_innermost_pixel():
    labels = np.zeros((60, 80), np.int32)
    labels[10:31, 10:31] = 1
    labels[35:55, 45:75] = 2
    sampler = MultiPointSampler(24, single_click_prob=1.0, centre_click_prob=1.0,
                                merge_objects_prob=0.0)
    gt, points = sampler.sample(labels, np.random.default_rng(0), target=1)
    assert gt[20, 20] == 1 and gt[45, 60] == 0  # the requested target
    positives, negatives = points[:24], points[24:]
    assert (positives[:, 0] >= 0).sum() == 1 and (negatives[:, 0] >= 0).sum() == 0
    assert tuple(positives[0, :2]) == (20.0, 20.0)


def test_cli_trains_with_object_crops_and_single_clicks(data_dir, tmp_path):
    from napari_ritm.cli import main
    from napari_ritm.training import trainer as trainer_module

    seen = {}
    original = trainer_module.Trainer.train_step

    def recording(self, batch, rng):
        seen["cropper"] = self.train_set.object_crops
        seen["single"] = self.train_set.sampler.single_click_prob
        return original(self, batch, rng)

    trainer_module.Trainer.train_step = recording
    try:
        code = main(["train", "--data", str(data_dir / "blobs"), "--out", str(tmp_path / "m.pth"),
                     "--steps", "1", "--batch-size", "2", "--crop", "64", "64", "--device", "cpu",
                     "--object-crops", "--cut-prob", "0.5", "--cut-levels", "3",
                     "--single-click-prob", "0.4",
                     "--no-progress", "--val-objects", "0"])
    finally:
        trainer_module.Trainer.train_step = original
    assert code == 0 and isinstance(seen["cropper"], ObjectCropper) and seen["single"] == 0.4
    assert seen["cropper"].cut_levels == 3 and seen["cropper"].cut_prob == 0.5
    assert Path(tmp_path / "m.pth").exists()


def test_cli_passes_guided_samples_and_augmentations(data_dir, tmp_path):
    from napari_ritm.cli import main
    from napari_ritm.training import trainer as trainer_module

    seen = {}
    original = trainer_module.Trainer.train_step

    def recording(self, batch, rng):
        seen["guidance"] = self.train_set.guidance
        seen["augmenter"] = self.train_set.augmenter
        seen["batch"] = batch
        return original(self, batch, rng)

    trainer_module.Trainer.train_step = recording
    try:
        code = main(["train", "--data", str(data_dir / "blobs"), "--out", str(tmp_path / "m.pth"),
                     "--steps", "1", "--batch-size", "2", "--crop", "64", "64", "--device", "cpu",
                     "--object-crops", "--refine-prob", "0.3", "--propagate-prob", "0.2",
                     "--click-focus", "2", "--invert-prob", "0.1", "--blur-prob", "0.2",
                     "--read-noise-prob", "0.3",
                     "--balance-sets", "--set-weight", "blobs=2",
                     "--no-progress", "--val-objects", "0"])
    finally:
        trainer_module.Trainer.train_step = original
    assert code == 0
    assert (seen["guidance"].refine_prob, seen["guidance"].propagate_prob) == (0.3, 0.2)
    assert seen["guidance"].focus_strength == 2.0
    aug = seen["augmenter"]
    assert (aug.invert_prob, aug.blur_prob, aug.read_noise_prob) == (0.1, 0.2, 0.3)
    assert seen["batch"]["prev"].shape == (2, 1, 64, 64) and seen["batch"]["frozen"].shape == (2,)
    assert seen["batch"]["weight"].shape == (2, 1, 64, 64) and seen["batch"]["weight"].min() >= 1


@pytest.mark.parametrize("extra, message", [
    (["--refine-prob", "0.2"], "need --object-crops"),
    (["--object-crops", "--refine-prob", "0.7", "--propagate-prob", "0.5"], "more than 1"),
    (["--balance-sets", "--set-weight", "blobs"], "NAME=WEIGHT"),
    (["--balance-sets", "--set-weight", "nuclei=2"], "no such training set"),
])
def test_cli_refuses_bad_guided_options(data_dir, tmp_path, capsys, extra, message):
    from napari_ritm.cli import main

    code = main(["train", "--data", str(data_dir / "blobs"), "--out", str(tmp_path / "m.pth"),
                 "--steps", "1", "--batch-size", "2", "--device", "cpu", *extra])
    assert code == 2 and message in capsys.readouterr().err
