"""Initial masks with errors, refine and propagate training samples, and 3D test stacks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_ritm.evaluation.initial_masks import (
    ERROR_KINDS,
    matched_masks,
    synthetic_error,
    threshold_watershed,
)
from napari_ritm.evaluation.stacks import (
    STACK_KINDS,
    linked_sections,
    object_extents,
    synthetic_nuclei,
)
from napari_ritm.inference.clicks import innermost_pixel
from napari_ritm.training.augment import Augmenter
from napari_ritm.training.data import ClickDataset, LabeledImage, samples_from_arrays
from napari_ritm.training.guidance import GuidanceMix, corrective_click
from napari_ritm.training.iterative import simulate_previous_clicks
from napari_ritm.training.object_crops import ObjectCropper
from napari_ritm.training.sampler import MultiPointSampler


def _discs(shape=(96, 96), centres=((30, 30), (30, 52), (70, 60)), radius=10):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    for k, (cy, cx) in enumerate(centres, start=1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = k
    return labels


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_each_error_kind_has_its_error():
    labels = _discs()
    gt = labels == 1
    rng = np.random.default_rng(0)
    out = {kind: synthetic_error(kind, labels, 1, rng) for kind in ERROR_KINDS}
    assert out["tight"].sum() < gt.sum() and not (out["tight"] & ~gt).any()
    assert out["loose"].sum() > gt.sum() and gt[~out["loose"]].sum() == 0
    assert (out["merged"] & (labels == 2)).sum() == (labels == 2).sum()  # the neighbour joined
    assert not (out["merged"] & (labels == 3)).any()  # the far object did not
    assert not (out["split"] & ~gt).any() and 0.3 < out["split"].sum() / gt.sum() < 0.8
    assert not (out["lobe_missing"] & ~gt).any() and out["lobe_missing"].sum() < gt.sum()
    assert gt[~out["lobe_extra"]].sum() == 0 and out["lobe_extra"].sum() > gt.sum()
    for kind in ("neighbour_slice", "polygon"):
        assert 0.4 < _iou(out[kind], gt) < 1.0, kind
    # no neighbour in reach: no merge; unknown kinds are refused
    assert synthetic_error("merged", labels, 3, rng) is None
    with pytest.raises(ValueError, match="unknown error kind"):
        synthetic_error("blurry", labels, 1, rng)


def test_threshold_watershed_separates_touching_discs_and_matches_them():
    labels = _discs(centres=((30, 30), (30, 49), (70, 60)))
    image = np.where(labels > 0, 200, 30).astype(np.uint8)
    auto = threshold_watershed(image, bright=True)
    matched = matched_masks(auto, labels)
    assert set(matched) == {1, 2, 3}
    assert all(_iou(matched[k], labels == k) > 0.8 for k in matched)
    dark = threshold_watershed(255 - image, bright=False)
    assert dark.max() == auto.max()
    assert matched_masks(np.zeros_like(labels), labels)[1].sum() == 0


def test_corrective_click_goes_into_the_larger_error():
    gt = _discs() == 1
    rng = np.random.default_rng(0)
    y, x, positive = corrective_click(gt & (np.arange(96) < 30)[None, :], gt.astype(float), rng)
    assert positive and gt[y, x] and x >= 30  # the missing half
    y, x, positive = corrective_click(gt | (_discs() == 3), gt.astype(float), rng)
    assert not positive and (_discs() == 3)[y, x]
    assert corrective_click(gt, gt.astype(float), rng) is None
    assert innermost_pixel(gt) == (30, 30)


def _dataset(samples, mix, **kwargs):
    aug = Augmenter((64, 64), scale_range=None, brightness_contrast_prob=0, rgb_shift_prob=0,
                    gamma_prob=0)
    return ClickDataset(samples, MultiPointSampler(24), crop_size=(64, 64), augmenter=aug,
                        epoch_len=40, object_crops=ObjectCropper((64, 64), augmenter=aug),
                        guidance=mix, **kwargs)


def test_refine_samples_start_from_a_wrong_mask_with_one_click():
    labels = _discs()
    sample = LabeledImage(np.where(labels[..., None] > 0, 200, 30).astype(np.uint8)
                          .repeat(3, 2), labels, "discs", "toy")
    ds = _dataset([sample], GuidanceMix(refine_prob=1.0, propagate_prob=0.0))
    refined = 0
    for i in range(40):
        item = ds[i]
        prev, gt, points = item["prev"][0], item["gt"][0], item["points"]
        if not prev.any():
            continue  # a kind that cannot happen here: a click-loop sample
        refined += 1
        clicks = points[points[:, 0] >= 0]
        assert len(clicks) == 1 and not item["frozen"]
        assert _iou(prev > 0.5, gt > 0.5) < 1.0
    assert refined >= 20


def test_propagate_samples_have_no_click_and_may_vanish():
    labels = _discs()
    image = np.where(labels[..., None] > 0, 200, 30).astype(np.uint8).repeat(3, 2)
    ds = _dataset([LabeledImage(image, labels, "discs", "toy")],
                  GuidanceMix(refine_prob=0.0, propagate_prob=1.0, vanish_prob=0.5,
                              frozen_prob=1.0))
    empty = 0
    for i in range(40):
        item = ds[i]
        assert (item["points"][:, 0] < 0).all() and item["frozen"]
        assert item["prev"].any()
        empty += not (item["gt"] > 0.5).any()
    assert 5 <= empty <= 35


def test_propagate_samples_of_a_stack_use_the_neighbouring_slice():
    stack = np.stack([_discs(radius=r) for r in (6, 10, 8)])
    stack[2][stack[2] == 3] = 0  # object 3 ends after slice 1
    image = np.where(stack > 0, 200, 30).astype(np.uint8)
    samples = samples_from_arrays(image, stack, name="s")
    assert [len(s.neighbours) for s in samples] == [1, 2, 1]
    assert samples[1].neighbours[0] is not None and (samples[1].neighbours[1] == 3).sum() == 0
    ds = _dataset([samples[1]], GuidanceMix(refine_prob=0.0, propagate_prob=1.0,
                                            vanish_prob=0.0))
    item = ds[0]
    prev, gt = item["prev"][0] > 0.5, item["gt"][0] > 0.5
    # the neighbour slice's disc (radius 6 or 8) inside this slice's one (radius 10)
    assert prev.sum() < gt.sum() and (prev & ~gt).sum() <= 0.05 * prev.sum()


def test_frozen_samples_keep_their_previous_mask_and_clicks():
    net = _ConstantNet()
    image = torch.zeros(2, 3, 16, 16)
    points = torch.full((2, 4, 3), -1.0)
    gt = torch.zeros(2, 1, 16, 16)
    gt[:, :, 4:12, 4:12] = 1
    start = torch.zeros(2, 1, 16, 16)
    start[:, :, 6:10, 6:10] = 1
    rng = np.random.default_rng(3)  # draws at least one iteration
    prev, out_points, iters = simulate_previous_clicks(
        net, image, points, gt, max_num_next_clicks=3, rng=rng, prev_mask=start,
        frozen=torch.tensor([True, False]))
    assert iters > 0
    assert torch.equal(prev[0], start[0]) and torch.equal(out_points[0], points[0])
    assert not torch.equal(prev[1], start[1]) and (out_points[1, :, 0] >= 0).any()


class _ConstantNet(torch.nn.Module):
    """Predicts probability 0.25 everywhere (a logit of -ln 3)."""

    def forward(self, image, points, prev_mask=None):
        logits = torch.full_like(image[:, :1], -float(np.log(3)))
        return {"instances": logits, "instances_aux": logits}


def test_set_weights_change_how_often_each_set_is_drawn():
    labels = _discs()
    image = np.zeros((*labels.shape, 3), np.uint8)
    samples = [LabeledImage(image, labels, "a", "A"), LabeledImage(image, labels, "b", "B")]
    aug = Augmenter((64, 64))
    ds = ClickDataset(samples, MultiPointSampler(4), crop_size=(64, 64), augmenter=aug,
                      epoch_len=400, balance_sets=True, set_weights={"B": 0.25})
    picks = [int(ds._by_set[0][0] == 0) for _ in range(1)]
    assert picks  # the groups are sorted by set name: A first
    counts = np.bincount([_drawn_set(ds, i) for i in range(400)], minlength=2)
    assert 0.7 < counts[0] / 400 < 0.9
    with pytest.raises(ValueError, match="sets without images"):
        ClickDataset(samples, MultiPointSampler(4), crop_size=(64, 64), augmenter=aug,
                     epoch_len=4, balance_sets=True, set_weights={"C": 1.0})


def _drawn_set(ds, index):
    rng = np.random.default_rng([ds.seed, ds.epoch, index])
    return int(rng.choice(len(ds._by_set), p=ds._set_probs))


def test_new_intensity_augmentations():
    image = np.full((32, 32, 3), 50, np.uint8)
    image[8:24, 8:24] = 200
    rng = np.random.default_rng(0)
    inverted = Augmenter((32, 32), invert_prob=1.0, brightness_contrast_prob=0,
                         rgb_shift_prob=0, gamma_prob=0).intensity(image, rng)
    assert inverted[0, 0, 0] == pytest.approx(1 - 50 / 255)
    blurred = Augmenter((32, 32), blur_prob=1.0, brightness_contrast_prob=0, rgb_shift_prob=0,
                        gamma_prob=0).intensity(image, rng)
    assert 50 / 255 < blurred[8, 16, 0] < 200 / 255 and blurred[16, 16, 0] == pytest.approx(
        200 / 255, abs=0.01)
    noisy = Augmenter((32, 32), read_noise_prob=1.0, brightness_contrast_prob=0,
                      rgb_shift_prob=0, gamma_prob=0).intensity(image, rng)
    assert noisy.std() > image.astype(np.float32).std() / 255 * 0.99
    assert np.array_equal(noisy[..., 0], noisy[..., 1])  # grey stays grey
    assert 0 <= noisy.min() and noisy.max() <= 1


@pytest.mark.parametrize("kind", list(STACK_KINDS))
def test_synthetic_nuclei_shrink_to_their_caps(kind):
    stack = synthetic_nuclei(5, kind, depth=32, size=96, nuclei=6, radius=(8, 12))
    assert stack.image.dtype == np.uint16 and stack.image.shape == (32, 96, 96)
    extents = object_extents(stack.labels)
    assert len(extents) >= 3
    for index, (first, last) in extents.items():
        areas = [(stack.labels[z] == index).sum() for z in range(first, last + 1)]
        assert first > 0 and last < 31  # a slice of background above and below
        assert max(areas) > 1.5 * areas[0] and max(areas) > 1.5 * areas[-1]
    inside = stack.image[stack.labels > 0].mean()
    assert inside > 1.5 * stack.image[stack.labels == 0].mean()


def test_linked_sections_keep_ids_where_objects_overlap():
    a = _discs()
    b = np.zeros_like(a)
    b[a == 1] = 7  # same object, another id
    b[a == 3] = 2
    b[5:12, 80:90] = 9  # a new object
    stack = linked_sections([a, b])
    assert set(np.unique(stack[1])) == {0, 1, 3, 4}
    assert (stack[1][a == 1] == 1).all() and (stack[1][5:12, 80:90] == 4).all()


def test_refine_samples_weigh_the_loss_near_their_click():
    labels = _discs()
    sample = LabeledImage(np.where(labels[..., None] > 0, 200, 30).astype(np.uint8)
                          .repeat(3, 2), labels, "discs", "toy")
    plain = _dataset([sample], GuidanceMix(refine_prob=1.0, propagate_prob=0.0))
    focused = _dataset([sample], GuidanceMix(refine_prob=1.0, propagate_prob=0.0,
                                             focus_strength=3.0))
    seen = 0
    for i in range(20):
        item, same = focused[i], plain[i]
        np.testing.assert_array_equal(same["weight"], 1.0)
        np.testing.assert_array_equal(item["prev"], same["prev"])  # the sample is unchanged
        clicks = item["points"][item["points"][:, 0] >= 0]
        if not item["prev"].any() or len(clicks) != 1:
            np.testing.assert_array_equal(item["weight"], 1.0)
            continue
        seen += 1
        y, x = clicks[0, :2].astype(int)
        weight = item["weight"][0]
        assert weight[y, x] == pytest.approx(4.0)
        assert weight.min() >= 1.0 and weight[y, x] == weight.max()
        far = np.unravel_index(np.argmax((np.indices(weight.shape)[0] - y) ** 2
                                         + (np.indices(weight.shape)[1] - x) ** 2), weight.shape)
        assert weight[far] < 2.5  # the farthest pixel, over a radius away
    assert seen >= 10
    with pytest.raises(ValueError, match="focus_strength"):
        GuidanceMix(focus_strength=-1.0)
