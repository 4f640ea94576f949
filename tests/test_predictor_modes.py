"""The predictor's speed modes (napari_ritm.inference.modes) and its optimised networks.

- ``exact`` mode still reproduces the official NoBRS predictor runs (shared/ref), step by step,
  within 1e-4 (previous probabilities re-synchronised after each step, as in
  test_predictor_reference.py);
- ``fast`` mode runs a fused copy at a smaller ZoomIn, without flip;
- the image is used without a copy; other models (ONNX Runtime, fakes) are used as given.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from napari_ritm.inference.clicks import Click
from napari_ritm.inference.modes import (
    FAST_TARGET_SIZE,
    INTERACTIVE,
    MODES,
    PREDICTOR_MODES,
    make_predictor,
    predictor_kwargs,
    with_interactive_threads,
)
from napari_ritm.inference.predictor import Predictor
from napari_ritm.model.fuse import InferenceRITM
from napari_ritm.model.ritm_net import RITMNet, RITMVariant

CHECKPOINT = "checkpoints/fake_coco_lvis_h18s_itermask.pth"
DEMO = {"target_size": (400, 400), "skip_clicks": -1, "max_size": 800}


@pytest.fixture(scope="module")
def fake_h18s(ref_dir):
    from napari_ritm.model.checkpoint import load_checkpoint

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # quick on a busy machine; measured max |dp| 3.9e-5 at 1 thread
    yield load_checkpoint(ref_dir / CHECKPOINT)
    torch.set_num_threads(threads)


@pytest.mark.parametrize("filename,prefix,settings", [
    ("predictor_h18s.npz", "eval_horse", {}),
    ("predictor_h18s_crop.npz", "demo_crop", DEMO),
], ids=["eval_horse", "demo_crop"])
def test_exact_mode_reproduces_reference_runs(ref_dir, fake_h18s, filename, prefix, settings):
    data = np.load(ref_dir / filename)
    predictor = make_predictor(fake_h18s, "exact", **settings)
    assert isinstance(predictor.model, InferenceRITM)
    predictor.set_image(data[f"{prefix}_image_u8"])
    clicks = [Click(float(y), float(x), bool(p)) for y, x, p, _ in data[f"{prefix}_clicks"]]
    rois = [None if r[0] < 0 else tuple(int(v) for v in r) for r in data[f"{prefix}_rois"]]
    errors = []
    for step, want in enumerate(data[f"{prefix}_probs"]):
        got = predictor.predict(clicks[: step + 1])
        errors.append(float(np.abs(got - want).max()))
        assert predictor.roi == rois[step]
        predictor.set_state(replace(predictor.get_state(), prev_probs=want))
    assert max(errors) <= 1e-4, errors


class _Recorder(nn.Module):
    """Records the network input of each call; logits +4 near the first click, -4 elsewhere."""

    variant = RITMVariant(18, 48, True, True)

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))
        self.calls: list[tuple[int, ...]] = []

    def forward(self, image, points, prev_mask=None):
        self.calls.append(tuple(image.shape))
        out = torch.full((image.shape[0], 1, *image.shape[2:]), -4.0)
        y, x = (int(v) for v in points[0, 0, :2])
        out[:, :, max(0, y - 20): y + 20, max(0, x - 20): x + 20] = 4.0
        return {"instances": out}


def test_fast_mode_uses_a_smaller_zoom_and_no_flip():
    recorder = _Recorder()
    predictor = Predictor(recorder, **predictor_kwargs("fast", interactive=True))
    assert predictor.model is recorder  # not an RITMNet: used as given, no optimisation
    image = np.random.default_rng(0).integers(0, 256, (600, 900, 3), dtype=np.uint8)
    predictor.set_image(image)
    probs = predictor.predict([Click(300, 450, True)])
    assert probs.shape == (600, 900)
    batch, _, h, w = recorder.calls[-1]
    assert batch == 1 and max(h, w) == FAST_TARGET_SIZE

    exact = Predictor(_Recorder(), **predictor_kwargs("exact", interactive=True))
    exact.set_image(image)
    exact.predict([Click(300, 450, True)])
    batch, _, h, w = exact.model.calls[-1]
    assert batch == 2 and max(h, w) == 400


def test_fast_mode_fuses_a_copy_of_the_network():
    torch.manual_seed(0)
    net = RITMNet(18, 48, small=True).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    predictor = make_predictor(net, "fast")
    assert isinstance(predictor.model, InferenceRITM)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in predictor.model.modules())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    image = np.random.default_rng(1).random((120, 150, 3), dtype=np.float32)
    plain = Predictor(net, zoom_in=True, target_size=FAST_TARGET_SIZE, flip=False)
    for p in (predictor, plain):
        p.set_image(image)
    clicks = [Click(60, 70, True), Click(20, 30, False)]
    for k in (1, 2):
        np.testing.assert_allclose(predictor.predict(clicks[:k]), plain.predict(clicks[:k]),
                                   atol=1e-4)


def test_image_is_used_without_a_copy_and_gray_works():
    predictor = Predictor(_Recorder(), zoom_in=False, flip=False)
    image = np.random.default_rng(2).random((50, 60, 3), dtype=np.float32)
    predictor.set_image(image)
    assert np.shares_memory(predictor._image.numpy(), image)
    gray = image[:, :, 0].copy()
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    a, b = Predictor(_Recorder(), zoom_in=False), Predictor(_Recorder(), zoom_in=False)
    a.set_image(gray)
    b.set_image(rgb)
    clicks = [Click(25, 30, True)]
    np.testing.assert_array_equal(a.predict(clicks), b.predict(clicks))


def test_make_predictor_builds_each_mode(fake_h18s):
    from napari_ritm.inference.modes import WINDOW_SETTINGS
    from napari_ritm.inference.window import WindowPredictor

    window = make_predictor(fake_h18s)
    assert isinstance(window, WindowPredictor) and window.fused
    assert window.net_size == WINDOW_SETTINGS["net_size"] and window.flip  # mirror averaging
    exact = make_predictor(fake_h18s, "exact", interactive=True)
    assert isinstance(exact, Predictor) and exact.flip and exact.limit.max_size == 800
    fast = make_predictor(fake_h18s, "fast", prob_thresh=0.7)
    assert not fast.flip and fast.prob_thresh == 0.7
    with pytest.raises(ValueError, match="exact, fast"):
        make_predictor(fake_h18s, "quick")


def test_modes_mapping():
    assert MODES == ("window", "exact", "fast")
    assert predictor_kwargs("exact") == PREDICTOR_MODES["exact"]
    kwargs = predictor_kwargs("fast", interactive=True)
    assert kwargs == {**PREDICTOR_MODES["fast"], **INTERACTIVE}
    kwargs["flip"] = True  # a new dict every time
    assert PREDICTOR_MODES["fast"]["flip"] is False
    with pytest.raises(ValueError, match="exact, fast"):
        predictor_kwargs("quick")


def test_predictor_info_writes_down_the_mirror_averaging(ref_dir):
    """A session's record keeps ``info``: it names flip, the second look and the local
    corrections even when they are the mode's defaults, so a record replays the same after a
    default changes."""
    from napari_ritm.model.zoo import load_model

    net = load_model(ref_dir / "checkpoints" / "fake_coco_lvis_h18s_itermask.pth")
    window = {"second_look": 4, "local_corrections": True, "thin_change": 0.15}
    assert make_predictor(net).info["settings"] == {"flip": True, **window}
    assert make_predictor(net, flip=False).info["settings"] == {"flip": False, **window}
    fast = make_predictor(net, "fast", interactive=True, prob_thresh=0.7)
    assert fast.info["settings"] == {"flip": False, "prob_thresh": 0.7}


def test_a_record_from_before_the_second_look_replays_without_it(ref_dir):
    """... and without the local corrections, which came the same day."""
    from napari_ritm.session.replay import predictor_from_entry

    entry = {"model": str(ref_dir / "checkpoints" / "fake_coco_lvis_h18s_itermask.pth"),
             "mode": "window", "settings": {"flip": True}}
    old = predictor_from_entry(entry)
    assert old.second_look == 0 and not old.local_corrections
    entry["settings"].update(second_look=4, local_corrections=True)
    new = predictor_from_entry(entry)
    assert new.second_look == 4 and new.local_corrections


def test_the_window_mode_runs_in_bfloat16_where_the_cpu_has_it(fake_h18s, monkeypatch):
    """``precision="auto"``: bfloat16 on CPUs that compute it natively, float32 elsewhere; with
    trained weights the probabilities move little (the masks' agreement on the val sets is
    measured by benchmarks/window_variants.py)."""
    from napari_ritm.inference import modes
    from napari_ritm.model import precision
    from napari_ritm.model.zoo import load_model

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert modes.make_predictor(fake_h18s, "window").precision == "float32"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    window = modes.make_predictor(fake_h18s, "window")
    assert window.precision == "bfloat16"
    assert modes.make_predictor(fake_h18s, "exact").flip  # the paper's modes stay float32
    image = np.zeros((96, 96), np.uint8)
    image[30:60, 30:60] = 200
    trained = load_model("default")
    window = modes.make_predictor(trained, "window", precision="bfloat16")
    reference = modes.make_predictor(trained, "window", precision="float32")
    clicks = [Click(45, 45, True)]
    window.set_image(image)
    reference.set_image(image)
    got, want = window.predict(clicks), reference.predict(clicks)
    assert np.abs(got - want).mean() < 0.01 and ((got > 0.49) != (want > 0.49)).mean() < 0.01


def test_worker_functions_set_the_thread_count_in_their_own_thread():
    import threading

    def steps():
        yield torch.get_num_threads()
        return "done"

    def plain():
        return torch.get_num_threads()

    out = {}

    def run():
        torch.set_num_threads(2)
        generator = with_interactive_threads(steps, threads=1)()
        out["yielded"] = next(generator)
        with pytest.raises(StopIteration) as end:
            next(generator)
        out["returned"] = end.value.value  # a worker's generator keeps its return value
        torch.set_num_threads(2)
        out["plain"] = with_interactive_threads(plain, threads=1)()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert out == {"yielded": 1, "returned": "done", "plain": 1}
