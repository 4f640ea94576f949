"""The training losses reproduce the official RITM numbers (../shared/ref/losses.npz)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_ritm.training.losses import (
    RITMLoss,
    normalized_focal_loss,
    sigmoid_bce_loss,
)


@pytest.fixture(scope="module")
def ref(ref_dir):
    return dict(np.load(ref_dir / "losses.npz"))


def _t(a, dtype=torch.float32):
    return torch.from_numpy(np.asarray(a)).to(dtype)


def test_nfl_matches_reference_per_image(ref):
    got = normalized_focal_loss(_t(ref["logits"]), _t(ref["labels"])).numpy()
    np.testing.assert_allclose(got, ref["nfl_per_image"], rtol=1e-5, atol=0)
    np.testing.assert_allclose(got.mean(), ref["nfl_mean"], rtol=1e-5, atol=0)


def test_bce_matches_reference_per_image(ref):
    got = sigmoid_bce_loss(_t(ref["logits_aux"]), _t(ref["labels"])).numpy()
    np.testing.assert_allclose(got, ref["bce_per_image"], rtol=1e-5, atol=0)
    np.testing.assert_allclose(got.mean(), ref["bce_mean"], rtol=1e-5, atol=0)


def test_total_objective_matches_reference(ref):
    total, parts = RITMLoss()(
        {"instances": _t(ref["logits"]), "instances_aux": _t(ref["logits_aux"])}, _t(ref["labels"])
    )
    np.testing.assert_allclose(total.item(), ref["total"], rtol=1e-5)
    np.testing.assert_allclose(parts["nfl"].item(), ref["nfl_mean"], rtol=1e-5)
    np.testing.assert_allclose(parts["bce"].item(), ref["bce_mean"], rtol=1e-5)


def test_float64_inputs_match_float64_reference(ref):
    nfl = normalized_focal_loss(_t(ref["logits"], torch.float64), _t(ref["labels"], torch.float64))
    bce = sigmoid_bce_loss(_t(ref["logits_aux"], torch.float64), _t(ref["labels"], torch.float64))
    assert nfl.dtype == torch.float64
    np.testing.assert_allclose(nfl.numpy(), ref["nfl_per_image_f64"], rtol=1e-10)
    np.testing.assert_allclose(bce.numpy(), ref["bce_per_image_f64"], rtol=1e-10)


def test_half_precision_logits_are_promoted(ref):
    got = normalized_focal_loss(_t(ref["logits"], torch.bfloat16), _t(ref["labels"]))
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), ref["nfl_per_image"], rtol=2e-2)


def test_ignored_pixels_do_not_change_the_loss(ref):
    logits, labels = _t(ref["logits"]), _t(ref["labels"])
    changed = logits.clone()
    changed[labels == -1] = 50.0  # anything on ignored pixels
    np.testing.assert_allclose(
        normalized_focal_loss(changed, labels).numpy(),
        normalized_focal_loss(logits, labels).numpy(),
        rtol=1e-6,
    )


def test_normalisation_factor_carries_no_gradient():
    logits = torch.tensor([[[[2.0, -1.0], [0.5, 3.0]]]], requires_grad=True)
    labels = torch.tensor([[[[1.0, 0.0], [1.0, -1.0]]]])
    normalized_focal_loss(logits, labels).sum().backward()
    # reference gradient with mult treated as a constant
    with torch.no_grad():
        p = torch.sigmoid(logits)
        valid = labels != -1
        pt = torch.where(valid, 1 - (labels - p).abs(), torch.ones_like(p))
        mult = valid.sum() / ((1 - pt) ** 2).sum()
    z = logits.detach().clone().requires_grad_(True)
    p = torch.sigmoid(z)
    pt = torch.where(valid, 1 - (labels - p).abs(), torch.ones_like(p))
    manual = (
        -(0.5 * valid) * (1 - pt) ** 2 * mult * torch.log(pt.clamp(max=1.0)) * valid
    ).sum() / valid.sum()
    manual.backward()
    np.testing.assert_allclose(logits.grad.numpy(), z.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert logits.grad[0, 0, 1, 1] == 0  # ignored pixel gets no gradient


def test_pixel_weights_count_pixels_more_or_not_at_all(ref):
    logits, labels = _t(ref["logits"]), _t(ref["labels"])
    plain = normalized_focal_loss(logits, labels)
    ones = normalized_focal_loss(logits, labels, weight=torch.ones_like(labels))
    np.testing.assert_allclose(ones.numpy(), plain.numpy(), rtol=1e-6)
    # a zero weight is an ignored pixel
    weight = torch.ones_like(labels)
    weight[..., : labels.shape[-1] // 2] = 0
    cut = labels.clone()
    cut[..., : labels.shape[-1] // 2] = -1
    np.testing.assert_allclose(
        normalized_focal_loss(logits, labels, weight=weight).numpy(),
        normalized_focal_loss(logits, cut).numpy(), rtol=1e-5)
    # the weighted loss lies between the losses of its two halves alone
    weight[..., : labels.shape[-1] // 2] = 4.0
    left, right = labels.clone(), labels.clone()
    left[..., labels.shape[-1] // 2:] = -1
    right[..., : labels.shape[-1] // 2] = -1
    got = normalized_focal_loss(logits, labels, weight=weight).numpy()
    a, b = normalized_focal_loss(logits, left).numpy(), normalized_focal_loss(logits, right).numpy()
    assert np.all((got >= np.minimum(a, b) - 1e-6) & (got <= np.maximum(a, b) + 1e-6))
