"""The predictor against the official NoBRS predictor runs in shared/ref/predictor_h18s*.npz.

Two levels:
- transforms only (no network): from each stored step's state (clicks, previous probabilities,
  ROI), the ROI decision, the network input size and the exact points tensor of the next call;
- end to end with the fake h18s checkpoint: every step's probabilities within 1e-4, same ROI and
  ``roi_changed``, same input sizes and points for every network call (the previous
  probabilities are re-synchronised to the reference after each step, see the test).
Plus the predictor's own rules on small fake networks: undo, reset, flip averaging, the
skip_clicks=0 second pass, LimitLongestSide, banker's rounding, input validation.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from napari_ritm.inference.clicks import Click
from napari_ritm.inference.predictor import Predictor, PredictorState

EVAL = {}
DEMO = {"target_size": (400, 400), "skip_clicks": -1, "max_size": 800}
# (file, prefix, predictor settings, external initial mask)
RUNS = [
    ("predictor_h18s.npz", "eval_horse", EVAL, False),
    ("predictor_h18s.npz", "eval_dsb", EVAL, False),
    ("predictor_h18s.npz", "demo_big", DEMO, False),
    ("predictor_h18s.npz", "demo_nozoom_big", {"zoom_in": False, "max_size": 800}, False),
    ("predictor_h18s.npz", "demo_initmask_horse", DEMO, True),
    ("predictor_h18s_crop.npz", "eval_crop", EVAL, False),
    ("predictor_h18s_crop.npz", "demo_crop", DEMO, False),
    ("predictor_h18s_crop.npz", "demo_crop_initmask", DEMO, True),
]
RUN_IDS = [prefix for _, prefix, _, _ in RUNS]
CHECKPOINT = "checkpoints/fake_coco_lvis_h18s_itermask.pth"


class _Run:
    """The arrays of one reference run."""

    def __init__(self, ref_dir, filename: str, prefix: str) -> None:
        data = np.load(ref_dir / filename)
        get = lambda name: data[f"{prefix}_{name}"]  # noqa: E731
        self.image = get("image_u8")
        self.clicks = [Click(float(y), float(x), bool(p)) for y, x, p, _ in get("clicks")]
        self.index_offset = int(get("clicks")[0, 3])
        self.probs = get("probs")
        self.rois = [None if r[0] < 0 else tuple(int(v) for v in r) for r in get("rois")]
        self.roi_changed = get("roi_changed").tolist()
        self.call_step = get("net_call_step").tolist()
        self.input_hw = [tuple(int(v) for v in hw) for hw in get("net_input_hw")]
        self.batch = get("net_batch").tolist()
        self.points = [get(f"net_points_{m:02d}") for m in range(len(self.call_step))]
        self.init_mask = get("init_mask") if f"{prefix}_init_mask" in data.files else None


class _Recorder(torch.nn.Module):
    """Stands in for the network: records each call and returns zero logits."""

    class variant:  # noqa: N801 - mirrors RITMNet.variant
        with_prev_mask = True

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.calls: list[tuple[tuple[int, int], int, np.ndarray]] = []

    def forward(self, image, points, prev_mask=None):
        self.calls.append((tuple(image.shape[2:]), image.shape[0], points.numpy().copy()))
        return {"instances": image.new_zeros((image.shape[0], 1, *image.shape[2:]))}


@pytest.mark.parametrize("filename,prefix,settings,initmask", RUNS, ids=RUN_IDS)
def test_transforms_reproduce_reference_calls(ref_dir, filename, prefix, settings, initmask):
    run = _Run(ref_dir, filename, prefix)
    recorder = _Recorder()
    predictor = Predictor(recorder, **settings)
    predictor.set_image(run.image)
    prev_mask = run.init_mask if initmask else None
    checked = 0
    for step in range(len(run.clicks)):
        calls = [m for m, s in enumerate(run.call_step) if s == step]
        if step > 0:
            predictor.set_state(PredictorState(
                tuple(run.clicks[:step]), run.probs[step - 1], run.rois[step - 1], False))
        elif len(calls) > 1:
            calls = calls[:1]  # the repeat's ROI depends on the first call's unstored output
        recorder.calls.clear()
        predictor.predict(run.clicks[: step + 1], prev_mask, index_offset=run.index_offset)
        (hw, batch, points), m = recorder.calls[0], calls[0]
        assert hw == run.input_hw[m], f"call {m}"
        assert batch == run.batch[m]
        np.testing.assert_array_equal(points, run.points[m], err_msg=f"call {m}")
        if len(calls) == len([s for s in run.call_step if s == step]):
            assert predictor.roi == run.rois[step], f"step {step}"
            assert predictor.roi_changed == run.roi_changed[step], f"step {step}"
        checked += 1
    assert checked == len(run.clicks)


@pytest.fixture(scope="module")
def fake_net(ref_dir):
    from napari_ritm.model.checkpoint import load_checkpoint

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield load_checkpoint(ref_dir / CHECKPOINT)
    torch.set_num_threads(threads)


@pytest.mark.parametrize("filename,prefix,settings,initmask", RUNS, ids=RUN_IDS)
def test_predictor_reproduces_reference_run(
    ref_dir, fake_net, filename, prefix, settings, initmask
):
    """The whole run, step by step. After each step the stored previous probabilities are swapped
    for the reference's (clicks and ZoomIn ROI stay the predictor's own): with these random
    weights a 1e-6 change of the previous mask changes the next map by ~3e-5, so a free run
    would amplify float32 rounding (~1e-6 per step) beyond 1e-4 within three steps."""
    run = _Run(ref_dir, filename, prefix)
    calls = []
    hook = fake_net.register_forward_pre_hook(
        lambda module, args: calls.append((tuple(args[0].shape[2:]), args[0].shape[0],
                                           args[1].cpu().numpy().copy())))
    try:
        predictor = Predictor(fake_net, **settings)
        predictor.set_image(run.image)
        prev_mask = run.init_mask if initmask else None
        errors = []
        for step in range(len(run.clicks)):
            clicks = run.clicks[: step + 1]
            probs = predictor.predict(clicks, prev_mask, index_offset=run.index_offset)
            if initmask and step == 0:  # the demo predicts the first click twice
                probs = predictor.predict(clicks, prev_mask, index_offset=run.index_offset)
            errors.append(float(np.abs(probs - run.probs[step]).max()))
            assert predictor.roi == run.rois[step], f"step {step}"
            assert predictor.roi_changed == run.roi_changed[step], f"step {step}"
            assert predictor.clicks == tuple(clicks)
            np.testing.assert_array_equal(predictor.get_state().prev_probs, probs)
            predictor.set_state(replace(predictor.get_state(), prev_probs=run.probs[step]))
    finally:
        hook.remove()
    print(f"\n{prefix}: max |prob - ref| per step {['%.1e' % e for e in errors]}, "
          f"max {max(errors):.2e}")
    assert max(errors) <= 1e-4, errors
    assert [hw for hw, _, _ in calls] == run.input_hw
    assert [b for _, b, _ in calls] == run.batch
    for m, (_, _, points) in enumerate(calls):
        np.testing.assert_array_equal(points.astype(np.float32), run.points[m], err_msg=f"call {m}")


class _BlobNet(_Recorder):
    """Records calls; logits +6 within 25 network pixels of a positive click, -6 elsewhere."""

    def forward(self, image, points, prev_mask=None):
        super().forward(image, points, prev_mask)
        h, w = image.shape[2:]
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        out = torch.full((image.shape[0], 1, h, w), -6.0)
        n = points.shape[1] // 2
        for b in range(image.shape[0]):
            for y, x, _ in points[b, :n].tolist():
                if max(y, x) >= 0:
                    out[b, 0][(yy - y) ** 2 + (xx - x) ** 2 <= 25**2] = 6.0
        return {"instances": out}


def _image(h=300, w=400):
    return np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_undo_restores_clicks_probabilities_and_roi_exactly():
    predictor = Predictor(_BlobNet())
    predictor.set_image(_image())
    clicks = [Click(150, 200, True), Click(160, 230, True), Click(40, 370, True)]
    predictor.predict(clicks[:1])
    second = predictor.predict(clicks[:2])
    state = predictor.get_state()
    assert predictor.roi is not None and predictor.roi_changed
    third = predictor.predict(clicks)
    assert predictor.roi != state.roi  # the far positive click moved the ROI
    predictor.set_state(state)
    assert predictor.clicks == tuple(clicks[:2]) and predictor.roi == state.roi
    assert predictor.roi_changed == state.roi_changed
    np.testing.assert_array_equal(predictor.get_state().prev_probs, second)
    np.testing.assert_array_equal(predictor.predict(clicks), third)


def test_returned_probabilities_do_not_alias_the_state():
    predictor = Predictor(_BlobNet())
    predictor.set_image(_image())
    probs = predictor.predict([Click(150, 200, True)])
    probs[:] = 0
    assert predictor.get_state().prev_probs.max() > 0.99


def test_reset_starts_a_new_object_on_the_same_image():
    predictor = Predictor(_BlobNet())
    predictor.set_image(_image())
    first = predictor.predict([Click(150, 200, True)])
    predictor.predict([Click(150, 200, True), Click(100, 100, True)])
    predictor.reset()
    assert predictor.clicks == () and predictor.roi is None
    np.testing.assert_array_equal(predictor.predict([Click(150, 200, True)]), first)


class _RampNet(_Recorder):
    """Logits = column / 10 for every batch item."""

    def forward(self, image, points, prev_mask=None):
        super().forward(image, points, prev_mask)
        ramp = torch.arange(image.shape[3], dtype=torch.float32) / 10
        return {"instances": ramp.expand(image.shape[0], 1, *image.shape[2:]).clone()}


def test_flip_averages_logits_before_the_sigmoid():
    predictor = Predictor(_RampNet())
    predictor.set_image(_image(60, 80))
    probs = predictor.predict([Click(30, 10, True)])
    assert probs.dtype == np.float32 and probs.shape == (60, 80)
    # 0.5 * (x / 10 + (79 - x) / 10) = 3.95 everywhere
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-3.95)), rtol=1e-6)
    unflipped = Predictor(_RampNet(), flip=False)
    unflipped.set_image(_image(60, 80))
    probs = unflipped.predict([Click(30, 10, True)])
    np.testing.assert_allclose(probs[0], 1 / (1 + np.exp(-np.arange(80) / 10)), rtol=1e-6)


def test_skip_clicks_zero_predicts_twice_on_a_small_object():
    net = _BlobNet()
    predictor = Predictor(net, skip_clicks=0)
    predictor.set_image(_image(600, 800))
    probs = predictor.predict([Click(300, 400, True)])
    assert len(net.calls) == 2 and predictor.roi is not None and predictor.roi_changed
    assert net.calls[1][0] == (400, 400)  # the 200x200-minimum crop of the small blob
    assert probs[300, 400] > 0.99 and probs[0, 0] == 0.0


def test_limit_longest_side_shrinks_the_network_input():
    net = _BlobNet()
    predictor = Predictor(net, zoom_in=False, flip=False, max_size=100)
    predictor.set_image(_image(300, 150))
    probs = predictor.predict([Click(150, 75, True)])
    assert net.calls[0][0:2] == ((100, 50), 1) and probs.shape == (300, 150)
    np.testing.assert_allclose(net.calls[0][2][0, 0], [50.0, 25.0, 0.0])


def test_object_roi_uses_bankers_rounding():
    net = _BlobNet()
    predictor = Predictor(net)
    predictor.set_image(_image())
    prev = np.zeros((300, 400), dtype=np.float32)
    prev[100:102, 100:102] = 1.0
    # bbox centre 100.5, min side 200: round(0.5) = 0 and round(200.5) = 200 (half to even)
    predictor.set_state(PredictorState((Click(100, 100, True),), prev, None, False))
    predictor.predict([Click(100, 100, True), Click(101, 101, False)])
    assert predictor.roi == (0, 200, 0, 200)


def test_set_image_and_predict_reject_bad_input():
    predictor = Predictor(_BlobNet())
    with pytest.raises(RuntimeError, match="set_image"):
        predictor.predict([Click(1, 1, True)])
    with pytest.raises(ValueError, match="normalize_image"):
        predictor.set_image(np.zeros((10, 10), dtype=np.uint16))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        predictor.set_image(np.full((10, 10), 2.0))
    with pytest.raises(ValueError, match="shape"):
        predictor.set_image(np.zeros((10, 10, 4), dtype=np.uint8))
    predictor.set_image(np.zeros((10, 12), dtype=np.uint8))
    assert predictor.image_shape == (10, 12)
    with pytest.raises(ValueError, match="outside"):
        predictor.predict([Click(10, 0, True)])
    with pytest.raises(ValueError, match="prev_mask"):
        predictor.predict([Click(1, 1, True)], prev_mask=np.zeros((12, 10)))
