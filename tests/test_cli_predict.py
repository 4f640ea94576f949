"""``napari-ritm predict``: a happy path with the fake checkpoint, and every bad input -> exit 2."""
from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import torch

from napari_ritm.cli import main

CHECKPOINT = "checkpoints/fake_coco_lvis_h18s_itermask.pth"


@pytest.fixture(autouse=True)
def _two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def image_tif(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 4000, (48, 64)).astype(np.uint16)
    image[10:30, 20:40] += 20000  # a bright object
    path = tmp_path / "image.tif"
    tifffile.imwrite(path, image)
    return path


@pytest.fixture
def checkpoint(ref_dir):
    return str(ref_dir / CHECKPOINT)


def _fails(capsys, argv: list[str], message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "napari-ritm predict: error:" in err and message in err, err
    assert "Traceback" not in err


def test_predict_writes_a_binary_mask_and_probabilities(tmp_path, image_tif, checkpoint, capsys):
    out, prob = tmp_path / "mask.tif", tmp_path / "prob.tif"
    argv = ["predict", str(image_tif), "-c", "20,30,+", "-c", "5,5,-", "--model", checkpoint,
            "--threshold", "0.05", "-o", str(out), "--prob", str(prob)]
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    mask, probs = tifffile.imread(out), tifffile.imread(prob)
    assert mask.dtype == np.uint8 and mask.shape == (48, 64) and set(np.unique(mask)) <= {0, 1}
    assert probs.dtype == np.float32 and probs.shape == (48, 64)
    assert 0 <= probs.min() and probs.max() <= 1
    np.testing.assert_array_equal(mask, (probs > 0.05).astype(np.uint8))


def test_predict_with_init_mask_png_and_options(tmp_path, checkpoint):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    iio.imwrite(tmp_path / "rgb.png", image)
    init = np.zeros((40, 50), dtype=np.uint8)
    init[10:20, 10:30] = 255
    iio.imwrite(tmp_path / "init.png", init)
    out = tmp_path / "mask.tiff"
    argv = ["predict", str(tmp_path / "rgb.png"), "-c", "15,20,+", "--init-mask",
            str(tmp_path / "init.png"), "--model", checkpoint, "--threshold", "0",
            "--mode", "exact", "--no-flip", "--max-size", "32", "-o", str(out)]
    assert main(argv) == 0
    assert tifffile.imread(out).shape == (40, 50)


def test_window_mode_refines_an_init_mask_and_refuses_max_size(tmp_path, checkpoint, capsys):
    image = np.random.default_rng(1).integers(0, 256, (300, 320), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "img.tif", image)
    init = np.zeros((300, 320), dtype=np.uint8)
    init[100:200, 50:250] = 1
    tifffile.imwrite(tmp_path / "init.tif", init)
    out, prob = tmp_path / "mask.tif", tmp_path / "prob.tif"
    argv = ["predict", str(tmp_path / "img.tif"), "-c", "150,150,+", "--init-mask",
            str(tmp_path / "init.tif"), "--model", checkpoint, "--threshold", "0", "-o", str(out),
            "--prob", str(prob)]
    assert main(argv) == 0  # (the window rule itself: tests/test_window.py)
    probs = tifffile.imread(prob)
    assert probs.shape == (300, 320) and probs.dtype == np.float32
    assert main([*argv, "--no-flip"]) == 0  # without the mirror averaging the window mode uses
    # (the fake checkpoint's probabilities are tiny: compare them relative to their size)
    assert not np.allclose(tifffile.imread(prob), probs, rtol=1e-2, atol=0)
    _fails(capsys, [*argv[:-4], "--max-size", "64", "-o", str(out)], "--max-size applies")


def test_channel_and_slice_select_a_plane(tmp_path, checkpoint):
    stack = np.random.default_rng(2).integers(0, 1000, (3, 30, 40, 2)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    out = tmp_path / "mask.tif"
    argv = ["predict", str(tmp_path / "stack.tif"), "--slice", "1", "--channel", "1",
            "-c", "10,10,+", "--model", checkpoint, "-o", str(out)]
    assert main(argv) == 0
    assert tifffile.imread(out).shape == (30, 40)


def test_missing_image(tmp_path, capsys):
    _fails(capsys, ["predict", str(tmp_path / "nope.tif"), "-c", "1,1,+", "-o",
                    str(tmp_path / "o.tif")], "no such file")


def test_unreadable_image(tmp_path, capsys):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"this is not a tiff")
    _fails(capsys, ["predict", str(bad), "-c", "1,1,+", "-o", str(tmp_path / "o.tif")],
           "cannot read")


def test_stack_without_slice_or_channel(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "z.tif", np.zeros((5, 20, 20), dtype=np.uint16))
    _fails(capsys, ["predict", str(tmp_path / "z.tif"), "-c", "1,1,+", "-o",
                    str(tmp_path / "o.tif")], "--slice")


def test_slice_out_of_range(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "z.tif", np.zeros((5, 20, 20), dtype=np.uint16))
    _fails(capsys, ["predict", str(tmp_path / "z.tif"), "--slice", "5", "-c", "1,1,+", "-o",
                    str(tmp_path / "o.tif")], "--slice 5")


def test_constant_image(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "flat.tif", np.full((20, 20), 9, dtype=np.uint16))
    _fails(capsys, ["predict", str(tmp_path / "flat.tif"), "-c", "1,1,+", "-o",
                    str(tmp_path / "o.tif")], "constant")


@pytest.mark.parametrize("click", ["48,10,+", "10,64,-", "-1,3,+"])
def test_click_outside_the_image(image_tif, tmp_path, capsys, click):
    _fails(capsys, ["predict", str(image_tif), f"--click={click}", "-o", str(tmp_path / "o.tif")],
           "outside the image")


@pytest.mark.parametrize("click", ["10,10", "10;10;+", "a,b,+", "10,10,x", "1e,3,+"])
def test_malformed_click(image_tif, tmp_path, capsys, click):
    _fails(capsys, ["predict", str(image_tif), "-c", click, "-o", str(tmp_path / "o.tif")],
           "malformed --click")


def test_no_click(image_tif, tmp_path, capsys):
    _fails(capsys, ["predict", str(image_tif), "-o", str(tmp_path / "o.tif")], "at least one")


def test_init_mask_of_another_shape(image_tif, tmp_path, capsys):
    tifffile.imwrite(tmp_path / "m.tif", np.ones((10, 10), dtype=np.uint8))
    _fails(capsys, ["predict", str(image_tif), "-c", "1,1,+", "--init-mask",
                    str(tmp_path / "m.tif"), "-o", str(tmp_path / "o.tif")], "--init-mask")


def test_output_must_be_tiff(image_tif, tmp_path, capsys):
    _fails(capsys, ["predict", str(image_tif), "-c", "1,1,+", "-o", str(tmp_path / "o.png")],
           ".tif")


def test_threshold_out_of_range(image_tif, tmp_path, capsys):
    _fails(capsys, ["predict", str(image_tif), "-c", "1,1,+", "--threshold", "2",
                    "-o", str(tmp_path / "o.tif")], "--threshold")


def test_model_not_found(image_tif, tmp_path, capsys):
    _fails(capsys, ["predict", str(image_tif), "-c", "1,1,+", "--model",
                    str(tmp_path / "missing.pth"), "-o", str(tmp_path / "o.tif")],
           f"--model {tmp_path / 'missing.pth'}: No model file at")
    _fails(capsys, ["predict", str(image_tif), "-c", "1,1,+", "--model", "defualt", "-o",
                    str(tmp_path / "o.tif")], "unknown model name 'defualt'")
    assert not (tmp_path / "o.tif").exists()


def test_a_negative_coordinate_is_read_as_a_click(image_tif, tmp_path, capsys):
    _fails(capsys, ["predict", str(image_tif), "-c", "-5,10,+", "-o", str(tmp_path / "o.tif")],
           "click (-5, 10) lies outside the image")


def test_background_clicks_alone_are_refused(image_tif, tmp_path, capsys):
    _fails(capsys, ["predict", str(image_tif), "-c", "5,5,-", "-o", str(tmp_path / "o.tif")],
           "at least one positive click")


def test_a_click_on_missing_data_is_refused(tmp_path, capsys):
    image = np.random.default_rng(0).random((40, 40)).astype(np.float32)
    image[10:20, 10:20] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", image)
    _fails(capsys, ["predict", str(tmp_path / "nan.tif"), "-c", "15,15,+", "-o",
                    str(tmp_path / "o.tif")], "without data (NaN)")


def test_an_empty_result_is_an_error_with_a_hint(image_tif, tmp_path, capsys, checkpoint):
    out = tmp_path / "o.tif"
    _fails(capsys, ["predict", str(image_tif), "-c", "20,30,+", "--model", checkpoint,
                    "--threshold", "1", "-o", str(out)], "found no object")
    assert not out.exists()


def test_slice_of_a_4d_image(tmp_path, checkpoint, capsys):
    image = np.random.default_rng(3).integers(0, 1000, (2, 3, 30, 40)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "tzyx.tif", image)
    out = tmp_path / "mask.tif"
    argv = ["predict", str(tmp_path / "tzyx.tif"), "--slice", "1,2", "-c", "10,10,+",
            "--model", checkpoint, "--threshold", "0", "-o", str(out)]
    assert main(argv) == 0 and tifffile.imread(out).shape == (30, 40)
    _fails(capsys, [*argv[:3], "1,5", *argv[4:]], "--slice 1,5 does not exist")
    _fails(capsys, [*argv[:3], "x", *argv[4:]], "expected integers")


@pytest.mark.parametrize("image", [np.full((20, 20), 9, np.uint16),
                                   np.full((20, 20), np.nan, np.float32)])
def test_errors_about_the_pixels_do_not_talk_of_stacks(tmp_path, capsys, image):
    tifffile.imwrite(tmp_path / "bad.tif", image)
    assert main(["predict", str(tmp_path / "bad.tif"), "-c", "1,1,+", "-o",
                 str(tmp_path / "o.tif")]) == 2
    err = capsys.readouterr().err
    assert ("constant" in err or "finite" in err) and "--slice" not in err


def test_the_cli_and_the_widget_see_a_hot_pixel_image_alike(tmp_path, checkpoint, capsys):
    """Same image, same click, same mask: the widget normalises a 16-bit image with napari's
    default display range the way the command does (robust percentiles)."""
    from napari.layers import Image

    from napari_ritm._qt.layers import image_source
    from napari_ritm.inference.modes import make_predictor
    from napari_ritm.model.zoo import load_model
    from napari_ritm.session import Session

    rng = np.random.default_rng(3)
    image = (rng.integers(150, 250, (64, 80))).astype(np.uint16)
    image[20:44, 24:56] += 700
    image[2, 2] = 65535
    tifffile.imwrite(tmp_path / "hot.tif", image)
    assert main(["predict", str(tmp_path / "hot.tif"), "-c", "30,40,+", "--model", checkpoint,
                 "--threshold", "0.3", "-o", str(tmp_path / "cli.tif")]) == 0
    cli = tifffile.imread(tmp_path / "cli.tif").astype(bool)
    source, _ = image_source(Image(image))
    labels = np.zeros(image.shape, np.uint16)
    session = Session(source, labels, predictor=make_predictor(load_model(checkpoint)),
                      threshold=0.3)
    session.click(30, 40, positive=True)
    session.run_pending()
    np.testing.assert_array_equal(session.preview, cli)


def test_the_report_names_the_object_and_a_click_it_does_not_hold(
        image_tif, tmp_path, capsys, monkeypatch):
    from napari_ritm.commands import predict

    def fake(args, image, clicks, init_mask):
        mask = np.zeros(image.shape[:2], bool)
        mask[10:20, 30:35] = True
        return mask.astype(np.float32), mask

    monkeypatch.setattr(predict, "_predict", fake)
    assert main(["predict", str(image_tif), "-c", "2,2,+", "-o", str(tmp_path / "o.tif")]) == 0
    out, err = capsys.readouterr()
    assert "an object of 50 pixels in rows 10-19, columns 30-34" in out
    assert "does not hold the positive click (2, 2)" in err
