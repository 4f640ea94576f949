"""The model shipped inside the package: it loads offline, is small, and segments nuclei.

The acceptance image is ``stardist_nuclei2d``: its one image is held out of training entirely
(see ``recipes/shared_split.json``). In the window mode (the widget's, with mirror averaging)
the test clicks 40 nuclei spread evenly over the image's ids, three clicks each, and asks for a
mean best IoU of 0.75 and at least 0.70 on each nucleus: a smoke test that the shipped weights
segment nuclei, with a margin for float differences between machines. Quality is measured by
benchmarks/eval_dev.py and benchmarks/sample_image.py (docs/models.md); random weights reach
none of the floors.
"""
from __future__ import annotations

import numpy as np

from napari_ritm.model.zoo import local_path

NUCLEI = 40
#: mean over the nuclei of the best IoU within 3 clicks, and the least any one may reach
MEAN_BEST, LEAST_BEST = 0.75, 0.70


def test_shipped_file_is_small_and_in_the_official_format():
    import torch

    path = local_path("default")
    assert path.is_file(), f"the default model is not shipped at {path}"
    assert path.stat().st_size <= 20 * 2**20
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert set(checkpoint) == {"state_dict", "config"}
    assert checkpoint["config"]["class"] == "isegm.model.is_hrnet_model.HRNetModel"


def test_default_loads_as_float32_h18s_without_network(monkeypatch):
    import torch

    from napari_ritm import load_model
    from napari_ritm.model import zoo

    monkeypatch.setenv(zoo.BASE_URL_ENV, "http://127.0.0.1:9")  # nothing listens: no download
    net = load_model("default")
    assert net.variant.name == "h18s_itermask"
    dtypes = {t.dtype for t in net.state_dict().values() if t.is_floating_point()}
    assert dtypes == {torch.float32} and not net.training


def test_segments_stardist_nuclei_within_three_clicks(data_dir):
    from napari_ritm import load_model
    from napari_ritm.evaluation.datasets import InstanceDataset
    from napari_ritm.evaluation.noc import evaluate_sample
    from napari_ritm.inference.modes import make_predictor

    predictor = make_predictor(load_model("default"), "window")
    nuclei = InstanceDataset(data_dir / "stardist_nuclei2d", max_objects_per_image=NUCLEI,
                             min_area=30)
    best = []
    for i, sample in enumerate(nuclei):
        result = evaluate_sample(predictor, sample.image, sample.gt, max_clicks=3, stop_iou=0.8,
                                 new_image=i == 0)
        best.append(max(result.ious))
    assert len(best) == NUCLEI
    message = f"best IoU within 3 clicks per nucleus: {np.round(best, 3)}"
    assert np.mean(best) >= MEAN_BEST and min(best) >= LEAST_BEST, message


def test_download_command_reports_the_default_as_bundled(capsys):
    from napari_ritm.cli import main

    assert main(["download", "--list"]) == 0
    line = next(li for li in capsys.readouterr().out.splitlines() if li.split()[:1] == ["default"])
    assert "not bundled" not in line and "bundled" in line


def test_exact_mode_runs_fused_within_1e4_of_the_plain_network(data_dir):
    """With trained weights the exact mode passes optimize_exact's probe and runs the folded
    channels_last copy; click by click (the plain run's clicker clicks, previous masks kept in
    step) its probabilities stay within 1e-4 of the plain network under the same settings."""
    from dataclasses import replace

    from napari_ritm import load_model
    from napari_ritm.evaluation.clicker import Clicker
    from napari_ritm.evaluation.datasets import InstanceDataset
    from napari_ritm.inference.modes import make_predictor, predictor_kwargs
    from napari_ritm.inference.predictor import Predictor
    from napari_ritm.model.fuse import EXACT_TOLERANCE

    net = load_model("default")
    exact = make_predictor(net, "exact", interactive=True)
    plain = Predictor(net, **predictor_kwargs("exact", interactive=True))  # the plain network
    assert exact.fused and exact.exact_probe_change <= EXACT_TOLERANCE
    sample = next(iter(InstanceDataset(data_dir / "stardist_nuclei2d", max_objects_per_image=1,
                                       min_area=30)))
    exact.set_image(sample.image)
    plain.set_image(sample.image)
    clicker, probs, diffs = Clicker(sample.gt), None, []
    for _ in range(5):
        pred = np.zeros(sample.gt.shape, bool) if probs is None else plain.mask(probs)
        clicker.add_click(clicker.next_click(pred))
        probs = plain.predict(clicker.clicks)
        diffs.append(float(np.abs(exact.predict(clicker.clicks) - probs).max()))
        exact.set_state(replace(exact.get_state(), prev_probs=probs))
    assert max(diffs) <= 1e-4, diffs
