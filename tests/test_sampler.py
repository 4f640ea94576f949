"""Training click sampler, iterative next-click rule, augmentation and data loading."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

torch = pytest.importorskip("torch")

from napari_ritm.training import iterative  # noqa: E402
from napari_ritm.training.augment import Augmenter, pad_and_crop  # noqa: E402
from napari_ritm.training.data import (  # noqa: E402
    ClickDataset,
    LabeledImage,
    apply_split,
    load_split,
    make_split,
    read_folder,
    samples_from_arrays,
    save_split,
    tighten_outlines,
)
from napari_ritm.training.iterative import next_click_points, squared_distance_inside  # noqa: E402
from napari_ritm.training.sampler import MultiPointSampler, geometric_probs  # noqa: E402


def _two_squares(h=60, w=80):
    labels = np.zeros((h, w), np.int32)
    labels[10:30, 10:30] = 1
    labels[35:55, 45:75] = 2
    return labels


def _split_points(points, n):
    pos, neg = points[:n], points[n:]
    return pos[pos[:, 0] >= 0], neg[neg[:, 0] >= 0]


def test_geometric_count_law():
    p = geometric_probs(24, 0.8)
    assert p.shape == (24,) and np.isclose(p.sum(), 1)
    np.testing.assert_allclose(p[1:] / p[:-1], 0.8)


def test_sampler_shapes_and_click_locations():
    labels = _two_squares()
    sampler = MultiPointSampler(24, merge_objects_prob=0.0)
    rng = np.random.default_rng(0)
    for _ in range(50):
        gt, points = sampler.sample(labels, rng)
        assert gt.shape == labels.shape and gt.dtype == np.float32
        assert points.shape == (48, 3) and points.dtype == np.float32
        target = labels[gt > 0.5]
        assert len(np.unique(target)) == 1 and target[0] in (1, 2)
        assert set(np.unique(gt)) <= {0.0, 1.0}
        pos, neg = _split_points(points, 24)
        assert 1 <= len(pos) <= 24
        yx = pos[:, :2].astype(int)
        assert np.all(gt[yx[:, 0], yx[:, 1]] == 1)
        yx = neg[:, :2].astype(int)
        assert np.all(gt[yx[:, 0], yx[:, 1]] == 0)
        # padding rows are all -1 and sit after the clicks in each half
        for half in (points[:24], points[24:]):
            used = half[:, 0] >= 0
            assert not np.any(np.diff(used.astype(int)) > 0)
            assert np.all(half[~used] == -1)


def test_sampler_positive_counts_follow_the_geometric_law():
    labels = _two_squares()
    sampler = MultiPointSampler(24, merge_objects_prob=0.0)
    rng = np.random.default_rng(1)
    counts = [int((sampler.sample(labels, rng)[1][:24, 0] >= 0).sum()) for _ in range(600)]
    # P(1 click) = 0.2 / (1 - 0.8**24) ≈ 0.2009; mean ≈ 1/0.2 - small tail correction ≈ 4.8
    assert 0.15 < np.mean(np.equal(counts, 1)) < 0.26
    assert 4.0 < np.mean(counts) < 5.6


def test_sampler_erodes_positives_and_uses_border_negatives():
    labels = np.zeros((80, 80), np.int32)
    labels[20:60, 20:60] = 1
    sampler = MultiPointSampler(
        24,
        positive_erode_prob=1.0,
        negative_bg_prob=0.0,
        negative_other_prob=0.0,
        negative_border_prob=1.0,
    )
    rng = np.random.default_rng(2)
    for _ in range(30):
        _, points = sampler.sample(labels, rng)
        pos, neg = _split_points(points, 24)
        assert np.all((pos[:, :2] >= 23) & (pos[:, :2] <= 56))  # eroded 3 px
        # ring of width ceil(0.1 * sqrt(1600)) = 4 around the square
        for y, x in neg[:, :2].astype(int):
            assert 16 <= y <= 63 and 16 <= x <= 63 and not (20 <= y < 60 and 20 <= x < 60)


def test_sampler_other_object_negatives_and_merging():
    labels = _two_squares()
    only_other = MultiPointSampler(
        24,
        merge_objects_prob=0.0,
        negative_bg_prob=0.0,
        negative_other_prob=1.0,
        negative_border_prob=0.0,
    )
    rng = np.random.default_rng(3)
    for _ in range(20):
        gt, points = only_other.sample(labels, rng)
        _, neg = _split_points(points, 24)
        other = 3 - labels[gt > 0.5][0]
        assert np.all(labels[neg[:, 0].astype(int), neg[:, 1].astype(int)] == other)
    merging = MultiPointSampler(24, merge_objects_prob=1.0)
    gt, points = merging.sample(labels, rng)
    assert set(np.unique(labels[gt > 0.5])) == {1, 2}
    pos, _ = _split_points(points, 24)
    hit = set(labels[pos[:, 0].astype(int), pos[:, 1].astype(int)])
    assert hit == {1, 2}  # one first click in each merged object


def test_sampler_without_objects_and_with_ignore():
    sampler = MultiPointSampler(8)
    rng = np.random.default_rng(4)
    gt, points = sampler.sample(np.zeros((20, 20), np.int32), rng)
    assert gt.max() == 0 and np.all(points[:8] == -1)
    labels = _two_squares()
    labels[:, :5] = -1
    gt, points = sampler.sample(labels, rng)
    assert np.all(gt[:, :5] == -1)
    _, neg = _split_points(points, 8)
    assert np.all(neg[:, 1] >= 5)


def test_sampler_is_reproducible_with_a_seed():
    labels = _two_squares()
    a = MultiPointSampler(24).sample(labels, np.random.default_rng(7))
    b = MultiPointSampler(24).sample(labels, np.random.default_rng(7))
    np.testing.assert_array_equal(a[1], b[1])


def test_next_click_goes_to_the_larger_error_far_from_its_border():
    gt = np.zeros((1, 1, 40, 40), np.float32)
    gt[0, 0, 5:35, 5:35] = 1
    probs = np.zeros_like(gt)
    probs[0, 0, 5:35, 5:20] = 0.9  # left half found: false negative = right half (30x15)
    probs[0, 0, 36:39, 0:3] = 0.9  # small false positive
    points = torch.full((1, 4, 3), -1.0)
    points[0, 0] = torch.tensor([10.0, 10.0, 0.0])
    rng = np.random.default_rng(0)
    for _ in range(20):
        out = next_click_points(torch.from_numpy(probs), torch.from_numpy(gt), points, 1, rng)
        y, x, idx = out[0, 1].tolist()  # row N - 1 of the positive half
        assert idx == 1 and 5 <= y < 35 and 20 <= x < 35
        # farther than half the max distance (max = 8 in a 15-wide band): not on the band edge
        assert 20 + 3 <= x <= 35 - 4
        assert torch.equal(out[0, [0, 2, 3]], points[0, [0, 2, 3]])
    # a perfect prediction adds no click; errors inside an ignore region do not count
    perfect = next_click_points(torch.from_numpy(gt.copy()), torch.from_numpy(gt), points, 1, rng)
    assert torch.equal(perfect, points)
    ignored = gt.copy()
    ignored[0, 0, :, 20:] = -1
    probs2 = gt.copy()
    probs2[0, 0, :, 20:] = 0.0
    assert torch.equal(
        next_click_points(torch.from_numpy(probs2), torch.from_numpy(ignored), points, 1, rng),
        points,
    )


def test_next_click_negative_slot():
    gt = np.zeros((1, 1, 30, 30), np.float32)
    probs = np.zeros_like(gt)
    probs[0, 0, 10:20, 10:20] = 0.8
    points = torch.full((1, 6, 3), -1.0)
    out = next_click_points(
        torch.from_numpy(probs), torch.from_numpy(gt), points, 2, np.random.default_rng(0)
    )
    y, x, idx = out[0, 4].tolist()  # 2N - click_index = 4
    assert idx == 2 and 10 <= y < 20 and 10 <= x < 20


def _random_masks(rng, batch, h, w):
    blobs = rng.random((batch, h, w)) > 0.35
    masks = np.stack([ndimage.binary_opening(b, iterations=2) for b in blobs])
    masks[0] = True  # the distance to the image border only
    masks[1] = False
    return torch.from_numpy(masks)


@pytest.mark.parametrize("shape", [(5, 40, 40), (4, 23, 57), (3, 61, 9)])
def test_gpu_distance_transform_matches_scipy(shape, monkeypatch):
    # the torch transform the GPU uses gives scipy's exact squared distances, also when it
    # splits the batch into chunks
    masks = _random_masks(np.random.default_rng(shape[1]), *shape)
    expected = squared_distance_inside(masks)  # scipy on a CPU tensor
    assert expected[0, 0, 0] == 1 and expected[1].max() == 0 and expected.max() > 4
    monkeypatch.setattr(iterative, "CHUNK_ELEMENTS", 2 * shape[1] * shape[2] * (shape[2] + 2))
    assert torch.equal(iterative._squared_distance_torch(masks), expected)


def test_next_click_is_the_same_with_either_distance_transform(monkeypatch):
    rng = np.random.default_rng(3)
    gt = _random_masks(rng, 6, 48, 48)[:, None].float()
    gt[0, 0, :, :10] = -1
    probs = torch.from_numpy(rng.random((6, 1, 48, 48)).astype(np.float32))
    probs = torch.from_numpy(ndimage.uniform_filter(probs.numpy(), size=(1, 1, 7, 7)) * 1.6)
    points = torch.full((6, 8, 3), -1.0)
    cpu = next_click_points(probs, gt, points, 2, np.random.default_rng(0))
    monkeypatch.setattr(iterative, "squared_distance_inside", iterative._squared_distance_torch)
    torch_path = next_click_points(probs, gt, points, 2, np.random.default_rng(0))
    assert torch.equal(cpu, torch_path)
    assert (cpu[:, :, 2] == 2).sum() >= 4  # clicks were added


def _paper_rule_clicks(probs, gt, points, click_index, rng, thresh=0.49):
    # the rule as first written here: float distances from scipy, a click farther than half
    # the larger error region's maximum distance
    pred, target = probs.float().numpy()[:, 0], gt.numpy()[:, 0]
    fn = (target > 0.5) & (pred < thresh) & (target != -1)
    fp = (target <= 0.5) & (pred > thresh) & (target != -1)
    out, num = points.clone(), points.shape[1] // 2
    for b in range(len(pred)):
        fn_dt, fp_dt = (ndimage.distance_transform_edt(np.pad(m[b], 1))[1:-1, 1:-1]
                        for m in (fn, fp))
        positive = fn_dt.max() > fp_dt.max()
        dt = fn_dt if positive else fp_dt
        candidates = np.argwhere(dt > max(fn_dt.max(), fp_dt.max()) / 2.0)
        if len(candidates):
            y, x = candidates[rng.integers(len(candidates))]
            row = num - click_index if positive else 2 * num - click_index
            out[b, row] = torch.tensor([float(y), float(x), float(click_index)])
    return out


@pytest.mark.parametrize("seed", range(4))
def test_next_click_follows_the_paper_rule(seed):
    # binary probabilities make many ties between distances, smoothed ones few
    rng = np.random.default_rng(seed)
    gt = _random_masks(rng, 5, 21 + seed, 30)[:, None].float()
    gt[1, 0, 3:9, 4:12] = -1
    raw = rng.random((5, 1, 21 + seed, 30)).astype(np.float32)
    probs = torch.from_numpy(raw > 0.5).float() if seed % 2 else torch.from_numpy(
        ndimage.uniform_filter(raw, size=(1, 1, 5, 5)) * 1.5)
    points = torch.full((5, 6, 3), -1.0)
    for click_index in (1, 2):
        ours = next_click_points(probs, gt, points, click_index, np.random.default_rng(seed))
        paper = _paper_rule_clicks(probs, gt, points, click_index, np.random.default_rng(seed))
        assert torch.equal(ours, paper)
    # bfloat16 probabilities are compared at float32, as the trainer's float32 ones
    half = probs.to(torch.bfloat16)
    assert torch.equal(next_click_points(half, gt, points, 1, np.random.default_rng(seed)),
                       _paper_rule_clicks(half, gt, points, 1, np.random.default_rng(seed)))


def test_pad_and_crop_and_augmenter_shapes():
    image = np.random.default_rng(0).integers(0, 255, (30, 50, 3), dtype=np.uint8)
    labels = _two_squares(30, 50)
    img, lab = pad_and_crop(image, labels, (40, 40))
    assert img.shape == (40, 40, 3) and lab.shape == (40, 40)
    assert np.all(img[:5] == 0) and np.all(lab[:5] == 0)  # centred zero padding of 10 rows
    aug = Augmenter((32, 48))
    rng = np.random.default_rng(1)
    for _ in range(10):
        out, lab = aug(image, labels, rng)
        assert out.shape == (32, 48, 3) and out.dtype == np.float32
        assert 0 <= out.min() and out.max() <= 1
        assert lab.shape == (32, 48) and lab.dtype == np.int32
        assert set(np.unique(lab)) <= {0, 1, 2}


def test_photon_noise_keeps_grey_images_grey_and_grows_at_low_counts():
    flat = np.full((64, 64, 3), 100, np.uint8)
    spread = {}
    for photons in (10.0, 300.0):
        aug = Augmenter((64, 64), brightness_contrast_prob=0, rgb_shift_prob=0, gamma_prob=0,
                        noise_prob=1.0, photon_range=(photons, photons))
        out = aug.intensity(flat, np.random.default_rng(0))
        assert out.dtype == np.float32 and out.shape == flat.shape
        assert np.array_equal(out[..., 0], out[..., 2])  # the same noise in every channel
        assert 0.0 <= out.min() and out.max() <= 1.0
        assert abs(out.mean() - 100 / 255) < 0.02
        spread[photons] = out.std()
    # Poisson: std = sqrt(value / photons), so 30x the photons gives about 1/sqrt(30) the std
    assert spread[10.0] == pytest.approx(np.sqrt(100 / 255 / 10), rel=0.1)
    assert spread[300.0] == pytest.approx(np.sqrt(100 / 255 / 300), rel=0.1)
    # a colour image gets independent noise in each channel
    colour = np.stack([np.full((32, 32), v, np.float32) for v in (0.2, 0.5, 0.8)], axis=-1)
    noise = Augmenter((32, 32)).photon_noise(colour, np.random.default_rng(2)) - colour
    assert not np.allclose(noise[..., 0], noise[..., 1])


def test_augmenter_geometry_keeps_image_and_labels_aligned():
    labels = _two_squares()
    image = np.where(labels[..., None] > 0, 200, 20).astype(np.uint8).repeat(3, axis=-1)
    aug = Augmenter(
        (48, 48), scale_range=(0.8, 1.3), brightness_contrast_prob=0, rgb_shift=0, gamma_range=None
    )
    rng = np.random.default_rng(5)
    for _ in range(20):
        out, lab = aug(image, labels, rng)
        bright = out[..., 0] > 110 / 255
        assert np.mean(bright == (lab > 0)) > 0.97  # only resampling edges may differ


def _write_set(root, n=5):
    import tifffile

    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        tifffile.imwrite(
            root / "images" / f"im{i}.tif", rng.integers(0, 4000, (40, 50), dtype=np.uint16)
        )
        tifffile.imwrite(root / "labels" / f"im{i}.tif", _two_squares(40, 50).astype(np.uint16))


def test_read_folder_split_roundtrip(tmp_path):
    _write_set(tmp_path / "cells", 5)
    samples = read_folder(tmp_path / "cells")
    assert len(samples) == 5
    assert samples[0].image.shape == (40, 50, 3) and samples[0].image.dtype == np.uint8
    assert samples[0].set_name == "cells" and samples[0].labels.dtype == np.int32
    split = make_split(samples, 0.2, seed=0)
    assert len(split["sets"]["cells"]["val"]) == 1 and len(split["sets"]["cells"]["train"]) == 4
    save_split(split, tmp_path / "split.json")
    assert load_split(tmp_path / "split.json") == split
    train, val, unlisted = apply_split(samples, split)
    assert len(train) == 4 and len(val) == 1 and not unlisted
    with pytest.raises(ValueError, match="split"):
        (tmp_path / "bad.json").write_text("{}")
        load_split(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="images/ and labels/"):
        read_folder(tmp_path)


def test_samples_from_arrays_stack_and_float():
    labels = np.zeros((3, 20, 20), np.int32)
    labels[1, 5:10, 5:10] = 4
    image = np.random.default_rng(0).random((3, 20, 20)).astype(np.float32)
    out = samples_from_arrays(image, labels, name="vol")
    assert [s.name for s in out] == ["vol@z1"]
    np.testing.assert_array_equal(out[0].image[..., 0], np.rint(image[1] * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="does not match"):
        samples_from_arrays(image[:, :10], labels)


def test_click_dataset_items_are_deterministic_and_valid(data_dir):
    samples = read_folder(data_dir / "blobs")
    kwargs = dict(crop_size=(64, 96), epoch_len=6, seed=3)
    ds = ClickDataset(samples, MultiPointSampler(24), augmenter=Augmenter((64, 96)), **kwargs)
    item = ds[2]
    assert item["image"].shape == (3, 64, 96) and item["image"].dtype == np.float32
    assert item["gt"].shape == (1, 64, 96) and item["points"].shape == (48, 3)
    assert item["gt"].max() == 1
    np.testing.assert_array_equal(ds[2]["points"], item["points"])
    ds.set_epoch(1)
    assert not np.array_equal(ds[2]["image"], item["image"])
    val = ClickDataset(samples, MultiPointSampler(24), augmenter=None, **kwargs)
    first = val[0]["image"]
    val.set_epoch(5)
    np.testing.assert_array_equal(val[0]["image"], first)


def test_tighten_outlines_drops_each_objects_outer_ring_and_keeps_ignored_pixels():
    labels = np.zeros((8, 9), np.int32)
    labels[1:6, 1:4], labels[1:6, 4:7], labels[7, :] = 1, 2, -1
    out = tighten_outlines(labels)
    expected = np.zeros_like(labels)
    expected[2:5, 2], expected[2:5, 5], expected[7, :] = 1, 2, -1
    np.testing.assert_array_equal(out, expected)
    assert labels[1, 1] == 1  # the input is not changed


@pytest.mark.parametrize(
    ("prob", "sets", "area"), [(0.0, None, 900), (1.0, None, 784), (1.0, ["other"], 900)]
)
def test_click_dataset_tightens_outlines_of_the_chosen_sets(prob, sets, area):
    labels = np.zeros((64, 64), np.int32)
    labels[17:47, 17:47] = 1
    sample = LabeledImage(np.zeros((64, 64, 3), np.uint8), labels, "square", "squares")
    ds = ClickDataset(
        [sample],
        MultiPointSampler(24),
        crop_size=(64, 64),
        augmenter=Augmenter((64, 64), scale_range=None),
        epoch_len=4,
        tighten_prob=prob,
        tighten_sets=sets,
    )
    assert [int((ds[i]["gt"] == 1).sum()) for i in range(4)] == [area] * 4
