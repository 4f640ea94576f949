"""``napari-ritm export --onnx`` and the ONNX Runtime backend (skipped without onnx packages)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from napari_ritm.cli import main

HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="onnx, onnxscript, onnxruntime not installed")
CHECKPOINT = "checkpoints/fake_coco_lvis_h18s_itermask.pth"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def exported(ref_dir, tmp_path_factory):
    """(torch network, path of its ONNX export made by the CLI)."""
    if not HAVE_ONNX:
        pytest.skip("onnx, onnxscript, onnxruntime not installed")
    from napari_ritm.model.checkpoint import load_checkpoint

    out = tmp_path_factory.mktemp("onnx") / "h18s.onnx"
    assert main(["export", "--onnx", str(out), "--model", str(ref_dir / CHECKPOINT)]) == 0
    return load_checkpoint(ref_dir / CHECKPOINT), out


@needs_onnx
def test_exported_model_matches_torch(ref_dir, exported):
    from napari_ritm.model.onnx_backend import OnnxRITM

    net, path = exported
    model = OnnxRITM(path)
    assert model.variant == net.variant
    data = np.load(ref_dir / "forward_h18s.npz")
    for case in ("b", "c"):  # batch 2, two image sizes and click counts: all dynamic
        image = torch.from_numpy(data[f"{case}_image_u8"]).float() / 255
        points = torch.from_numpy(data[f"{case}_points"])
        prev = torch.from_numpy(data[f"{case}_prev_mask"])
        got = model(image, points, prev)["instances"]
        # folded BatchNorms move these chaotic random-weight logits by up to ~4e-4
        np.testing.assert_allclose(got.numpy(), data[f"{case}_instances"], rtol=0, atol=1e-3)


@needs_onnx
def test_predictor_runs_on_onnx_runtime(exported):
    from napari_ritm.inference.clicks import Click
    from napari_ritm.inference.modes import predictor_kwargs
    from napari_ritm.inference.predictor import Predictor
    from napari_ritm.model.onnx_backend import OnnxRITM

    net, path = exported
    kwargs = predictor_kwargs("fast", interactive=True)
    on_ort, on_torch = Predictor(OnnxRITM(path), **kwargs), Predictor(net, **kwargs)
    image = np.random.default_rng(0).integers(0, 256, (300, 420, 3), dtype=np.uint8)
    clicks = [Click(150, 200, True), Click(40, 60, False), Click(170, 230, True)]
    for predictor in (on_ort, on_torch):
        predictor.set_image(image)
    for k in range(1, 4):
        a, b = on_ort.predict(clicks[:k]), on_torch.predict(clicks[:k])
        assert a.shape == (300, 420) and a.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=1e-3)
        on_ort.set_state(on_torch.get_state())  # no drift through the previous mask


@needs_onnx
def test_onnx_file_without_our_metadata_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from napari_ritm.model.onnx_backend import OnnxRITM

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph), path)
    with pytest.raises(ValueError, match="not exported by napari-ritm"):
        OnnxRITM(path)


def test_export_usage_errors(tmp_path, capsys):
    assert main(["export", "--onnx", str(tmp_path / "model.txt"), "--model", "x"]) == 2
    assert ".onnx" in capsys.readouterr().err
    assert main(["export", "--onnx", str(tmp_path / "m.onnx"), "--model", "no_such_model"]) == 2
    assert "no_such_model" in capsys.readouterr().err
    missing = tmp_path / "nowhere" / "m.onnx"
    assert main(["export", "--onnx", str(missing), "--model", "default"]) == 2
    assert "does not exist" in capsys.readouterr().err
