"""``napari-ritm average``: the mean of checkpoints' weights, in the official format."""
from __future__ import annotations

import torch

from napari_ritm.cli import main as cli
from napari_ritm.model.checkpoint import load_checkpoint, save_checkpoint
from napari_ritm.model.ritm_net import RITMNet, RITMVariant


def _saved(path, variant: str, seed: int, batches: int):
    torch.manual_seed(seed)
    net = RITMNet.from_variant(RITMVariant.named(variant))
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_var.uniform_(0.5, 2.0)
            module.num_batches_tracked.fill_(batches)
    save_checkpoint(net, path)
    return net.state_dict()


def test_average_is_the_mean_of_floating_tensors(tmp_path, capsys):
    states = [_saved(tmp_path / f"{i}.pth", "h18s_itermask", i, 10 * (i + 1)) for i in range(3)]
    out = tmp_path / "mean.pth"
    assert cli(["average", *(str(tmp_path / f"{i}.pth") for i in range(3)), "--out", str(out)]) == 0
    assert "3 checkpoint(s) of h18s_itermask averaged" in capsys.readouterr().out
    mean = load_checkpoint(out).state_dict()
    for name in ("feature_extractor.conv1.weight", "feature_extractor.bn1.running_var"):
        want = (states[0][name] + states[1][name] + states[2][name]) / 3
        torch.testing.assert_close(mean[name], want, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(mean[name], states[2][name])
    assert int(mean["feature_extractor.bn1.num_batches_tracked"]) == 30  # the last checkpoint's


def test_average_refuses_mixed_architectures_and_bad_paths(tmp_path, capsys):
    _saved(tmp_path / "a.pth", "h18s_itermask", 0, 1)
    _saved(tmp_path / "b.pth", "h18_baseline", 1, 1)
    assert cli(["average", str(tmp_path / "a.pth"), str(tmp_path / "b.pth"),
                "--out", str(tmp_path / "m.pth")]) == 2
    assert "only checkpoints of one architecture" in capsys.readouterr().err
    assert cli(["average", str(tmp_path / "a.pth"), str(tmp_path / "nope.pth"),
                "--out", str(tmp_path / "m.pth")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    assert cli(["average", str(tmp_path / "a.pth"), "--out", str(tmp_path / "a.pth")]) == 2
    assert "is one of the inputs" in capsys.readouterr().err
    assert not (tmp_path / "m.pth").exists()
