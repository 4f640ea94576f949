"""Checkpoint format: key lists of all four variants, variant detection, official-format
save/load round trips, and the refusals (never a silent partial load)."""
from __future__ import annotations

import json
import warnings
from collections import OrderedDict

import pytest
import torch

from napari_ritm.model.checkpoint import (
    CheckpointError,
    detect_variant,
    load_checkpoint,
    official_config,
    read_checkpoint,
    save_checkpoint,
)
from napari_ritm.model.ritm_net import RITMNet, RITMVariant

VARIANTS = {
    "h18s_itermask": RITMVariant(18, 48, True, True, 5.0),
    "h18_itermask": RITMVariant(18, 64, False, True, 5.0),
    "h32_itermask": RITMVariant(32, 128, False, True, 5.0),
    "h18_baseline": RITMVariant(18, 64, False, False, 5.0),
}
def test_one_name_per_variant():
    for name, variant in VARIANTS.items():
        assert variant.name == name and RITMVariant.named(name) == variant
    assert RITMVariant.named("h18s") == VARIANTS["h18s_itermask"]
    with pytest.raises(ValueError, match="unknown model variant"):
        RITMVariant.named("hrnet18s_itermask")


FAKES = {
    "h18s_itermask": "fake_coco_lvis_h18s_itermask.pth",
    "h18_baseline": "fake_coco_lvis_h18_baseline.pth",
}


class _NeedsCode:
    """Pickled by reference to this module: weights_only loading must refuse it."""


def _read_keys(path):
    lines = path.read_text().splitlines()
    header, rows = lines[0], [line.split("\t") for line in lines[1:]]
    return header, [(k, shape, dtype) for k, shape, dtype in rows]


@pytest.fixture(scope="module")
def h18s(ref_dir):
    """The fake h18s checkpoint as loaded by torch: (state_dict, config)."""
    ckpt = torch.load(ref_dir / "checkpoints" / FAKES["h18s_itermask"], weights_only=True)
    return ckpt["state_dict"], ckpt["config"]


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_state_dict_keys_shapes_dtypes_equal_official(ref_dir, name):
    header, expected = _read_keys(ref_dir / f"keys_{name}.txt")
    net = RITMNet.from_variant(VARIANTS[name])
    ours = [
        (k, str(tuple(v.shape)), str(v.dtype).removeprefix("torch."))
        for k, v in net.state_dict().items()
    ]
    assert ours == expected  # same keys, same order, same shapes and dtypes
    n_params = sum(p.numel() for p in net.parameters())
    assert header.startswith(f"# {len(expected)} state_dict entries, {n_params} parameters")
    assert net.variant == VARIANTS[name]


@pytest.mark.parametrize("name", sorted(FAKES))
def test_fake_release_checkpoints_load_strictly(ref_dir, name):
    path = ref_dir / "checkpoints" / FAKES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # config and shapes agree: no warning
        net = load_checkpoint(path)
    assert net.variant == VARIANTS[name]
    assert not net.training
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in net.parameters())
    state_dict, config = read_checkpoint(path)
    reference = json.loads((ref_dir / f"config_{name}.json").read_text())
    assert json.loads(json.dumps(config)) == reference
    for key, value in net.state_dict().items():
        assert torch.equal(value, state_dict[key]), key
    # what we would save for this variant is exactly the released config (order and types too)
    ours = official_config(net.variant)
    assert ours == config and list(ours["params"]) == list(config["params"])
    assert isinstance(ours["params"]["norm_mean_std"]["value"], tuple)


@pytest.mark.parametrize("name", ["h18_itermask", "h32_itermask"])
def test_save_load_round_trip_in_official_format(ref_dir, tmp_path, name):
    torch.manual_seed(1)
    net = RITMNet.from_variant(VARIANTS[name])
    path = tmp_path / f"coco_lvis_{name}.pth"
    save_checkpoint(net, path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"state_dict", "config"}
    reference = json.loads((ref_dir / f"config_{name}.json").read_text())
    assert json.loads(json.dumps(raw["config"])) == reference
    assert list(raw["config"]["params"]) == list(reference["params"])
    assert raw["config"]["class"] == "isegm.model.is_hrnet_model.HRNetModel"
    loaded = load_checkpoint(path)
    assert loaded.variant == VARIANTS[name] and not loaded.training
    for (k, a), (k2, b) in zip(net.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k


def test_shapes_win_over_a_disagreeing_config(h18s, tmp_path):
    state_dict, config = h18s
    params = {**config["params"], "width": {**config["params"]["width"], "value": 32}}
    params.pop("with_prev_mask")  # the class default (False) disagrees with the 3-channel weights
    with pytest.warns(UserWarning) as record:
        variant = detect_variant(state_dict, {**config, "params": params}, source="x.pth")
    assert variant == VARIANTS["h18s_itermask"]
    messages = " ".join(str(w.message) for w in record)
    assert "width=32" in messages and "with_prev_mask=False" in messages


def test_norm_radius_comes_from_config(h18s):
    state_dict, config = h18s
    radius = {"type": "builtin", "value": 7.5, "specified": True}
    params = {**config["params"], "norm_radius": radius}
    assert detect_variant(state_dict, {**config, "params": params}).norm_radius == 7.5


def _save(tmp_path, obj, name="bad.pth"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


def _refused(path, *fragments):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_refuses_missing_file_and_directory(tmp_path):
    _refused(tmp_path / "nope.pth", "no such file")
    _refused(tmp_path, "not a file")


def test_refuses_truncated_file(ref_dir, tmp_path):
    data = (ref_dir / "checkpoints" / FAKES["h18s_itermask"]).read_bytes()
    path = tmp_path / "truncated.pth"
    path.write_bytes(data[: len(data) // 2])
    _refused(path, "corrupt or truncated")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint" * 10)
    _refused(garbage, "corrupt or truncated")


def test_refuses_pickle_that_needs_code(tmp_path):
    path = _save(tmp_path, {"state_dict": {}, "config": _NeedsCode()})
    _refused(path, "need code", "weights_only")


def test_refuses_wrong_containers(h18s, tmp_path):
    state_dict, config = h18s
    _refused(_save(tmp_path, [1, 2, 3], "list.pth"), "got list")
    _refused(_save(tmp_path, {"config": config}, "nostate.pth"), "no 'state_dict'")
    _refused(_save(tmp_path, OrderedDict(state_dict), "raw.pth"), "no 'state_dict'")
    _refused(_save(tmp_path, {"state_dict": state_dict}, "noconfig.pth"), "no 'config'")
    bad_entry = {**state_dict, "maps_transform.3.scale": 0.05}
    path = _save(tmp_path, {"state_dict": bad_entry, "config": config}, "float.pth")
    _refused(path, "not tensors")


def test_refuses_other_architecture(h18s, tmp_path):
    _, config = h18s
    resnet = OrderedDict(
        [
            ("conv1.weight", torch.zeros(64, 3, 7, 7)),
            ("bn1.weight", torch.ones(64)),
            ("layer1.0.conv1.weight", torch.zeros(64, 64, 1, 1)),
            ("fc.weight", torch.zeros(1000, 2048)),
        ]
    )
    path = _save(tmp_path, {"state_dict": resnet, "config": config})
    _refused(path, "not an RITM HRNet state_dict")
    other_class = {**config, "class": "isegm.model.is_deeplab_model.DeeplabModel"}
    state_dict, _ = h18s
    _refused(_save(tmp_path, {"state_dict": state_dict, "config": other_class}, "deeplab.pth"),
             "unsupported model class")


def test_refuses_unsupported_settings(h18s, tmp_path):
    state_dict, config = h18s
    no_disks = {"type": "builtin", "value": False, "specified": True}
    params = {**config["params"], "use_disks": no_disks}
    path = _save(tmp_path, {"state_dict": state_dict, "config": {**config, "params": params}})
    _refused(path, "use_disks=False")


@pytest.mark.parametrize("problem", ["missing", "extra", "shape"])
def test_refuses_state_dict_mismatch(h18s, tmp_path, problem):
    state_dict, config = h18s
    broken = OrderedDict(state_dict)
    key = "feature_extractor.stage3.2.branches.1.0.bn2.running_var"
    if problem == "missing":
        del broken[key]
        expected = f"missing keys: {key}"
    elif problem == "extra":
        broken["feature_extractor.extra_head.weight"] = torch.zeros(3)
        expected = "unexpected keys: feature_extractor.extra_head.weight"
    else:
        broken[key] = torch.ones(7)
        expected = f"wrong shapes: {key} (7,) (expected (36,))"
    _refused(_save(tmp_path, {"state_dict": broken, "config": config}), expected)
