"""Classic click-seeded baselines: same interface as the predictor, sensible masks."""
from __future__ import annotations

import numpy as np
import pytest

from napari_ritm.evaluation.baselines import (
    BACKGROUND,
    BASELINES,
    OBJECT,
    RandomWalkerBaseline,
    WatershedBaseline,
    click_markers,
)
from napari_ritm.evaluation.noc import evaluate_sample, get_iou
from napari_ritm.inference.clicks import Click


def _scene(size=64, rgb=True):
    rng = np.random.default_rng(0)
    image = np.full((size, size), 0.2, np.float32)
    gt = np.zeros((size, size), np.int32)
    gt[size // 4: size // 2 + 4, size // 4: size // 2 + 8] = 1
    image[gt == 1] = 0.8
    image = np.clip(image + rng.normal(0, 0.03, image.shape), 0, 1).astype(np.float32)
    if rgb:
        image = np.stack([image, image * 0.9, image * 0.5], axis=-1)
    else:
        image = np.repeat(image[..., None], 3, axis=-1)
    return image, gt


def test_markers_use_the_border_until_the_first_negative_click():
    markers = click_markers((10, 12), [Click(5, 6, True)], radius=1)
    assert markers[5, 6] == OBJECT and markers[0, 0] == BACKGROUND and markers[9, 11] == BACKGROUND
    markers = click_markers((10, 12), [Click(5, 6, True), Click(2, 2, False)], radius=1)
    assert markers[0, 11] == 0 and markers[2, 2] == BACKGROUND and markers[5, 6] == OBJECT
    both = click_markers((10, 12), [Click(5, 6, False), Click(5, 6, True)], radius=1)
    assert both[5, 6] == OBJECT  # a positive seed wins where seeds overlap


@pytest.mark.parametrize("name", sorted(BASELINES))
@pytest.mark.parametrize("rgb", [True, False])
def test_one_click_segments_a_contrasted_object(name, rgb):
    image, gt = _scene(rgb=rgb)
    predictor = BASELINES[name]()
    predictor.set_image(image)
    probs = predictor.predict([Click(26, 28, True)])
    assert probs.shape == gt.shape and probs.dtype == np.float32
    assert 0.0 <= probs.min() and probs.max() <= 1.0
    assert get_iou(gt, probs > 0.49) > 0.9


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_no_positive_click_predicts_nothing_and_loop_runs(name):
    image, gt = _scene()
    predictor = BASELINES[name]()
    predictor.set_image((image * 255).astype(np.uint8))
    assert not predictor.predict([Click(1, 1, False)]).any()
    result = evaluate_sample(predictor, image, gt, max_clicks=3)
    assert 1 <= len(result.ious) <= 3 and result.ious[-1] > 0.9


def test_random_walker_downscales_large_images_and_maps_back():
    image, gt = _scene(size=300)
    full, small = RandomWalkerBaseline(max_side=None), RandomWalkerBaseline(max_side=128)
    for predictor in (full, small):
        predictor.set_image(image)
    assert small.work.shape[:2] == (128, 128) and full.work.shape[:2] == (300, 300)
    clicks = [Click(110, 115, True)]
    p_small = small.predict(clicks)
    assert p_small.shape == (300, 300)
    assert get_iou(gt, p_small > 0.49) > 0.85
    assert get_iou(gt, full.predict(clicks) > 0.49) > 0.9


def test_negative_click_removes_a_wrongly_included_region():
    # two touching bright squares of equal colour: one positive click takes both,
    # a negative click on the second one separates them along the faint seam (the border stops
    # being a background seed then, see the module docstring)
    image = np.full((40, 60), 0.1, np.float32)
    image[10:30, 5:28] = 0.9
    image[10:30, 29:55] = 0.9
    image[10:30, 28] = 0.6
    image = np.repeat(image[..., None], 3, axis=-1)
    ws = WatershedBaseline()
    ws.set_image(image)
    both = ws.predict([Click(20, 15, True)]) > 0.49
    split = ws.predict([Click(20, 15, True), Click(20, 42, False)]) > 0.49
    assert both[20, 42] and not split[20, 42]
    assert split[10:30, 5:28].all() and not split[12:28, 31:53].any()


def test_set_image_rejects_non_rgb():
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        WatershedBaseline().set_image(np.zeros((8, 8), np.float32))
