"""Training end to end on tiny crops: the loss goes down, the CLI writes a loadable checkpoint,
resume and fine-tuning work, and the same command runs under torchrun with DDP (gloo, 2 CPUs)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tifffile = pytest.importorskip("tifffile")

from napari_ritm.cli import main  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_set(data_dir, tmp_path_factory) -> Path:
    """Four 96x96 crops of the blobs image as a set folder (one goes to validation)."""
    image = tifffile.imread(data_dir / "blobs" / "images" / "blobs.tif")
    labels = tifffile.imread(data_dir / "blobs" / "labels" / "blobs.tif")
    root = tmp_path_factory.mktemp("sets") / "tinyblobs"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i, (y, x) in enumerate([(0, 0), (0, 150), (150, 0), (150, 150)]):
        tifffile.imwrite(root / "images" / f"crop{i}.tif", image[y : y + 96, x : x + 96])
        tifffile.imwrite(root / "labels" / f"crop{i}.tif", labels[y : y + 96, x : x + 96])
    return root


@pytest.fixture(scope="module")
def trained(tiny_set, tmp_path_factory):
    """Two CLI training steps with a validation split; returns the output checkpoint path."""
    out = tmp_path_factory.mktemp("run") / "tiny.pth"
    code = main(
        [
            "train",
            "--data",
            str(tiny_set),
            "--model",
            "h18s",
            "--out",
            str(out),
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--crop",
            "64",
            "64",
            "--device",
            "cpu",
            "--val-split",
            str(out.parent / "split.json"),
            "--val-fraction",
            "0.25",
            "--val-objects",
            "1",
            "--val-max-clicks",
            "3",
            "--val-samples",
            "2",
            "--save-every",
            "1",
            "--keep-every",
            "1",
            "--no-progress",
        ]
    )
    assert code == 0
    return out


def test_a_fixed_batch_is_fitted(data_dir):
    from torch.utils.data import default_collate

    from napari_ritm.model.ritm_net import RITMNet
    from napari_ritm.training.augment import Augmenter
    from napari_ritm.training.data import ClickDataset, read_folder
    from napari_ritm.training.optim import init_weights
    from napari_ritm.training.options import TrainOptions
    from napari_ritm.training.sampler import MultiPointSampler
    from napari_ritm.training.trainer import Trainer

    samples = read_folder(data_dir / "blobs")
    data = ClickDataset(
        samples,
        MultiPointSampler(24),
        crop_size=(64, 64),
        augmenter=Augmenter((64, 64)),
        epoch_len=4,
        seed=2,
    )
    batch = default_collate([data[i] for i in range(4)])
    options = TrainOptions(
        out=Path("unused.pth"),
        steps=100,
        batch_size=4,
        crop_size=(64, 64),
        milestones=(),
        max_num_next_clicks=0,
        progress=False,
    )
    torch.manual_seed(2)
    trainer = Trainer(init_weights(RITMNet(18, 48, small=True)), samples, [], options)
    losses = [trainer.train_step(batch, np.random.default_rng(0))["loss"] for _ in range(12)]
    assert trainer.step == 12
    # seeded and single-threaded: the mean of the last three is about 0.55 x the first three
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses


def test_cli_train_writes_official_checkpoint_metrics_and_split(trained):
    from napari_ritm.model.checkpoint import load_checkpoint
    from napari_ritm.training.options import metrics_path, state_path

    raw = torch.load(trained, map_location="cpu", weights_only=True)
    assert set(raw) == {"state_dict", "config"}
    net = load_checkpoint(trained)
    assert net.variant.small and net.variant.ocr_width == 48 and net.variant.with_prev_mask
    state = torch.load(state_path(trained), map_location="cpu", weights_only=True)
    assert state["step"] == 2 and {"optimizer", "scheduler", "state_dict"} <= set(state)
    rows = list(csv.DictReader(open(metrics_path(trained))))
    assert rows and rows[-1]["step"] == "2" and float(rows[-1]["loss"]) > 0
    assert rows[-1]["val_loss"] and rows[-1]["val_noc90"] and rows[-1]["val_objects"] == "1"
    kept = sorted(p.name for p in trained.parent.glob("tiny.step*.pth"))
    assert kept == ["tiny.step1.pth", "tiny.step2.pth"]
    assert torch.equal(load_checkpoint(trained.parent / "tiny.step2.pth").state_dict()[
        "feature_extractor.conv1.weight"], net.state_dict()["feature_extractor.conv1.weight"])
    split = json.loads((trained.parent / "split.json").read_text())
    assert (
        len(split["sets"]["tinyblobs"]["val"]) == 1
        and len(split["sets"]["tinyblobs"]["train"]) == 3
    )


def test_trained_checkpoint_runs_in_the_predictor(trained, tiny_set):
    import napari_ritm
    from napari_ritm.inference.clicks import Click
    from napari_ritm.inference.predictor import Predictor

    net = napari_ritm.load_model(trained)
    image = tifffile.imread(tiny_set / "images" / "crop0.tif")
    predictor = Predictor(net, flip=False)
    predictor.set_image(image)
    probs = predictor.predict([Click(40.0, 40.0, True)])
    assert probs.shape == image.shape and probs.dtype == np.float32
    assert np.isfinite(probs).all() and 0 <= probs.min() and probs.max() <= 1


def test_resume_and_finetune(trained, tiny_set):
    from napari_ritm.training.options import metrics_path, state_path

    args = [
        "--data",
        str(tiny_set),
        "--out",
        str(trained),
        "--batch-size",
        "2",
        "--crop",
        "64",
        "64",
        "--device",
        "cpu",
        "--no-progress",
        "--val-objects",
        "0",
    ]
    assert main(["train", *args, "--steps", "3", "--resume"]) == 0
    assert torch.load(state_path(trained), weights_only=True)["step"] == 3
    assert [r["step"] for r in csv.DictReader(open(metrics_path(trained)))][-1] == "3"
    tuned = trained.with_name("tuned.pth")
    assert main(["finetune", "--init", str(trained), "--data", str(tiny_set), "--out", str(tuned),
                 "--steps", "1", "--blend", "1", "--keep-anyway",
                 "--held-out", "0.05"]) == 0  # (the fewest objects the comparison allows)
    card = json.loads(tuned.with_suffix(".json").read_text())
    assert card["source_model"] == str(trained) and card["steps"] == 1 and card["blend"] == 1
    assert card["rehearsal_images"] == 8  # the shipped rehearsal images, by default
    assert set(card["before"]) == {"val_noc85", "val_noc90", "val_iou1", "val_objects"}
    fit = card["threshold_fit"]  # then fitted: the threshold kept never does worse
    assert fit["objects"] > 0 and fit["iou"] >= fit["iou_previous"]
    assert card["threshold"] == fit["previous"] or fit["iou"] >= fit["iou_previous"] + 0.01
    from napari_ritm.model.checkpoint import load_checkpoint

    before, after = load_checkpoint(trained).state_dict(), load_checkpoint(tuned).state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    alone = trained.with_name("alone.pth")
    assert main(["finetune", "--init", str(trained), "--data", str(tiny_set), "--out", str(alone),
                 "--steps", "1", "--no-rehearsal", "--keep-anyway", "--held-out", "0.05"]) == 0
    assert json.loads(alone.with_suffix(".json").read_text())["rehearsal_images"] == 0


def test_finetune_keeps_the_model_only_when_it_needs_fewer_clicks(trained, tiny_set, tmp_path,
                                                                  capsys):
    """The keep-only-if-better rule, without --keep-anyway: a fine-tuning that cannot change the
    weights (lr 0) scores exactly as before, so it is not written."""
    out = trained.with_name("same.pth")
    assert main(["finetune", "--init", str(trained), "--data", str(tiny_set), "--out", str(out),
                 "--steps", "1", "--lr", "0", "--blend", "1", "--held-out", "0.05"]) == 0
    assert "no better on the held-back objects: not written" in capsys.readouterr().out
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_adapt_result_is_kept_for_fewer_clicks_then_a_better_first_click():
    from napari_ritm.training.adapt import AdaptResult

    def result(before, after):
        keys = ("val_noc85", "val_noc90", "val_iou1")
        return AdaptResult(None, dict(zip(keys, before)), dict(zip(keys, after)), 10, 3, 5,
                           1.0)

    assert result((3, 5, 0.8), (2.5, 5.5, 0.7)).improved  # fewer clicks to 0.85
    assert not result((3, 5, 0.8), (3.5, 4, 0.9)).improved  # more, whatever else
    assert result((3, 5, 0.8), (3, 4, 0.7)).improved  # a tie: fewer to 0.90
    assert result((3, 5, 0.8), (3, 5, 0.81)).improved  # then the first click decides
    assert not result((3, 5, 0.8), (3, 5, 0.8)).improved  # the same: not kept


def test_finetune_saves_a_user_model_never_named_as_a_registered_one(trained, tiny_set, tmp_path):
    """Without --out the adapted model joins the user's models; a registered name is taken, so
    ``--name default`` gives ``default-2``, whose own card keeps the fitted threshold (the
    built-in model's is untouched)."""
    from napari_ritm.model.user_models import model_card, recorded_threshold, user_models

    assert main(["finetune", "--init", str(trained), "--data", str(tiny_set), "--name",
                 "default", "--steps", "1", "--keep-anyway", "--held-out", "0.05"]) == 0
    assert user_models() == ["default-2"]
    assert model_card("default-2")["source_model"] == str(trained)
    assert recorded_threshold("default-2") is not None and recorded_threshold("default") is None
    assert not (tmp_path / "user-models" / "registered").exists()


def test_lr_decay_at_sets_the_schedule_and_a_resumed_run_rescales_it(tiny_set, tmp_path):
    """By default the lr drops x0.1 at 87 % and 96 % of the run; ``--lr-decay-at`` with no
    fraction keeps it constant (a probe), and a longer ``--resume`` puts the decays at the
    fractions of its own length."""
    from napari_ritm.training.options import metrics_path, state_path

    def lr_after(out, *extra):
        assert main(["train", "--data", str(tiny_set), "--out", str(out), "--batch-size", "2",
                     "--crop", "64", "64", "--device", "cpu", "--no-progress", "--val-objects",
                     "0", "--lr", "1e-3", *extra]) == 0
        groups = torch.load(state_path(out), weights_only=True)["optimizer"]["param_groups"]
        return max(group["lr"] for group in groups)  # the head's (the backbone's is lower)

    assert lr_after(tmp_path / "a.pth", "--steps", "4") == pytest.approx(1e-5)
    assert lr_after(tmp_path / "b.pth", "--steps", "4", "--lr-decay-at") == pytest.approx(1e-3)
    assert lr_after(tmp_path / "c.pth", "--steps", "4", "--lr-decay-at", "0.5") == \
        pytest.approx(1e-4)
    assert lr_after(tmp_path / "b.pth", "--steps", "20", "--resume", "--epoch-len", "2") == \
        pytest.approx(1e-5)
    with open(metrics_path(tmp_path / "b.pth")) as rows:
        lrs = {int(row["step"]): float(row["lr"]) for row in csv.DictReader(rows)}
    assert lrs[12] == pytest.approx(1e-3) and lrs[18] == pytest.approx(1e-4)  # (17 and 19)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--steps", "0"], "--steps"),
        (["--steps", "1", "--crop", "16", "16"], "--crop"),
        (["--steps", "1", "--val-fraction", "1.5"], "--val-fraction"),
        (["--steps", "1", "--resume"], "--resume"),
        (["--steps", "1", "--batch-size", "1"], "--batch-size"),
        (["--steps", "1", "--scale-range", "2", "1"], "--scale-range"),
        (["--steps", "1", "--lr-decay-at", "1.5"], "--lr-decay-at"),
    ],
)
def test_bad_input_is_a_usage_error(tiny_set, tmp_path, capsys, extra, message):
    code = main(["train", "--data", str(tiny_set), "--out", str(tmp_path / "m.pth"), *extra])
    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("blend", ["0", "1.5"])
def test_finetune_blend_outside_0_1_is_a_usage_error(tiny_set, tmp_path, capsys, blend):
    code = main(["finetune", "--data", str(tiny_set), "--out", str(tmp_path / "m.pth"),
                 "--blend", blend])
    assert code == 2
    assert "--blend" in capsys.readouterr().err


def test_missing_data_folder_is_a_usage_error(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--data",
                str(tmp_path / "nope"),
                "--out",
                str(tmp_path / "m.pth"),
                "--steps",
                "1",
            ]
        )
        == 2
    )
    assert "not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert (
        main(
            [
                "finetune",
                "--init",
                str(tmp_path / "none.pth"),
                "--data",
                str(tmp_path / "empty"),
                "--out",
                str(tmp_path / "m.pth"),
            ]
        )
        == 2
    )


def test_ddp_gloo_two_processes(tiny_set, tmp_path):
    out = tmp_path / "ddp.pth"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "napari_ritm.cli",
        "train",
        "--data",
        str(tiny_set),
        "--out",
        str(out),
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--crop",
        "48",
        "48",
        "--device",
        "cpu",
        "--no-progress",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    summary = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
    assert summary["world_size"] == 2 and summary["steps"] == 2
    from napari_ritm.model.checkpoint import load_checkpoint

    assert load_checkpoint(out).variant.small


def test_scale_range_and_noise_reach_the_augmenter(tiny_set, tmp_path, monkeypatch, capsys):
    from napari_ritm.training import trainer

    seen = []

    class Recording(trainer.Augmenter):
        def __init__(self, crop_size, **kwargs):
            seen.append((kwargs["scale_range"], kwargs["noise_prob"]))
            super().__init__(crop_size, **kwargs)

    monkeypatch.setattr(trainer, "Augmenter", Recording)
    args = ["train", "--data", str(tiny_set), "--out", str(tmp_path / "m.pth"), "--steps", "1",
            "--batch-size", "2", "--crop", "64", "64", "--scale-range", "1.5", "2.25",
            "--device", "cpu", "--no-progress", "--val-objects", "0"]
    assert main([*args, "--noise-prob", "0.3"]) == 0 and seen == [((1.5, 2.25), 0.3)]
    assert main([*args, "--noise-prob", "1.5"]) == 2
    assert "--noise-prob must be between 0 and 1" in capsys.readouterr().err


def test_tighten_options_reach_the_dataset(tiny_set, tmp_path, monkeypatch, capsys):
    from napari_ritm.training import trainer

    seen = []

    class Recording(trainer.ClickDataset):
        def __init__(self, samples, sampler, **kwargs):
            if kwargs["augmenter"] is not None:
                seen.append((kwargs["tighten_prob"], kwargs["tighten_sets"]))
            super().__init__(samples, sampler, **kwargs)

    monkeypatch.setattr(trainer, "ClickDataset", Recording)
    args = ["train", "--data", str(tiny_set), "--out", str(tmp_path / "m.pth"), "--steps", "1",
            "--batch-size", "2", "--crop", "64", "64", "--device", "cpu", "--no-progress",
            "--val-objects", "0", "--tighten-prob", "0.5"]
    assert main([*args, "--tighten-set", "tinyblobs"]) == 0
    assert main(args) == 0
    assert seen == [(0.5, ("tinyblobs",)), (0.5, None)]
    assert main([*args, "--tighten-prob", "-0.1"]) == 2
    assert "--tighten-prob must be between 0 and 1" in capsys.readouterr().err
    assert main([*args, "--tighten-set", "dsb"]) == 2
    assert "--tighten-set dsb: no such training set (the sets are tinyblobs)" in (
        capsys.readouterr().err
    )


def test_validation_runs_the_window_mode_without_mirror_averaging(monkeypatch):
    """In-training val is the window mode unmirrored: half the cost, comparable across runs."""
    import numpy as np

    from napari_ritm.model.ritm_net import RITMNet
    from napari_ritm.training import validate
    from napari_ritm.training.data import LabeledImage

    make_predictor, built = validate.make_predictor, []

    def recording(net, mode, **overrides):
        built.append(make_predictor(net, mode, **overrides))
        return built[-1]

    monkeypatch.setattr(validate, "make_predictor", recording)
    labels = np.zeros((48, 48), np.int32)
    labels[10:30, 12:34] = 1
    image = np.where(labels[..., None] > 0, 200, 30).astype(np.uint8).repeat(3, axis=2)
    net = RITMNet(width=18, ocr_width=48, small=True)
    result = validate.validation_noc(net, [LabeledImage(image, labels, "a", "toy")], [(0, 1)],
                                     max_clicks=2)
    assert [(type(p).__name__, p.flip) for p in built] == [("WindowPredictor", False)]
    assert 0 <= result["val_iou1"] <= 1
