"""Adapting a model to the user's labels: held-back objects are hidden from training, the
comparison runs before and after, cancelling leaves the model untouched."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_ritm.training.adapt import (  # noqa: E402
    AdaptOptions,
    adapt,
    split_objects,
)
from napari_ritm.training.data import read_folder  # noqa: E402

FAST = AdaptOptions(steps=2, batch_size=2, crop_size=(64, 64), max_clicks=2, min_area=20)


@pytest.fixture(scope="module")
def blobs(data_dir):
    return read_folder(data_dir / "blobs")


@pytest.fixture(scope="module")
def small_net():
    from napari_ritm.model.ritm_net import RITMNet, RITMVariant
    from napari_ritm.training.optim import init_weights

    torch.manual_seed(0)
    return init_weights(RITMNet.from_variant(RITMVariant.named("h18s"))).eval()


def test_held_back_objects_are_hidden_from_training(blobs):
    train, held = split_objects(blobs, 0.25, min_held=3, min_train=5, min_area=20)
    ids = {k for _, k in held}
    n = len(np.unique(blobs[0].labels[blobs[0].labels > 0]))
    assert len(ids) >= 3 and len(ids) <= n - 5
    assert not np.isin(train[0].labels, list(ids)).any()
    assert (train[0].labels[np.isin(blobs[0].labels, list(ids))] == -1).all()
    with pytest.raises(ValueError, match="needs 8"):
        split_objects(blobs, 0.25, min_held=3, min_train=5, min_area=10**6)


def test_with_several_images_whole_images_are_held_back(blobs):
    """The comparison then runs on an image the model did not train on; when whole images
    would leave too few objects to train on, random objects are held back instead."""
    from dataclasses import replace

    images = [replace(blobs[0], name=f"b{k}") for k in range(4)]
    train, held = split_objects(images, 0.25, min_held=3, min_train=5, min_area=20)
    held_images = {i for i, _ in held}
    assert len(held_images) == 1
    (i,) = held_images
    _, areas = np.unique(blobs[0].labels[blobs[0].labels > 0], return_counts=True)
    n = int((areas >= 20).sum())
    assert len(held) == n and not np.isin(train[i].labels, [k for _, k in held]).any()
    assert all((t.labels > 0).any() for j, t in enumerate(train) if j != i)
    two = [replace(blobs[0], name="a"), replace(blobs[0], name="b")]
    _, held = split_objects(two, 0.25, min_held=3, min_train=2 * n - 3, min_area=20)
    assert len(held) == 3  # one whole image would leave too few: random objects


def test_adapt_compares_before_and_after_on_a_copy(blobs, small_net):
    before_weights = {k: v.clone() for k, v in small_net.state_dict().items()}
    seen = []
    result = adapt(small_net, blobs, FAST, on_progress=lambda s, t, loss: seen.append((s, t)))
    assert seen == [(1, 2), (2, 2)] and result.steps == 2
    assert set(result.before) == {"val_noc85", "val_noc90", "val_iou1", "val_objects"}
    assert result.after["val_objects"] == result.held_objects >= 3
    assert result.net is not small_net
    assert all(torch.equal(before_weights[k], v) for k, v in small_net.state_dict().items())
    card = result.card("default")
    assert card["source_model"] == "default" and card["steps"] == 2


@pytest.mark.parametrize("freeze", [True, False], ids=["frozen norms", "free norms"])
def test_frozen_norms_keep_the_models_statistics(blobs, small_net, freeze):
    """Adapting keeps the BatchNorm running statistics (so the model does not forget the images
    it was trained on) while the weights learn; without freeze_norm the statistics follow."""
    from dataclasses import replace

    result = adapt(small_net, blobs, replace(FAST, freeze_norm=freeze))
    old, new = small_net.state_dict(), result.net.state_dict()
    stats = [k for k in old if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(old[k], new[k]) for k in stats) == freeze
    trained = [k for k in old if k.endswith(".weight") and old[k].dim() == 4]
    assert any(not torch.equal(old[k], new[k]) for k in trained)
    norms = [m for m in result.net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(type(m) is torch.nn.BatchNorm2d for m in norms)  # the class is back


def test_blend_keeps_that_share_of_the_weight_change(blobs, small_net):
    import copy
    from dataclasses import replace

    from napari_ritm.training.adapt import _blend

    old = small_net.state_dict()
    unchanged = adapt(small_net, blobs, replace(FAST, blend=0.0)).net.state_dict()
    assert all(torch.equal(old[k], v) for k, v in unchanged.items())
    moved = copy.deepcopy(small_net)
    with torch.no_grad():
        for p in moved.parameters():
            p.add_(1.0)
    _blend(moved, small_net, 0.25)
    for name, tensor in moved.named_parameters():
        torch.testing.assert_close(tensor, old[name] + 0.25)


def test_norms_only_changes_just_the_batchnorm_scale_and_shift(blobs, small_net):
    from dataclasses import replace

    result = adapt(small_net, blobs, replace(FAST, layers="norms", lr=1e-2, blend=1.0))
    norm_params = {f"{name}.{p}" for name, m in small_net.named_modules()
                   if isinstance(m, torch.nn.BatchNorm2d) for p in ("weight", "bias")}
    old, new = dict(small_net.named_parameters()), dict(result.net.named_parameters())
    changed = {k for k in old if not torch.equal(old[k], new[k])}
    assert changed and changed <= norm_params
    assert all(p.requires_grad for p in result.net.parameters())
    with pytest.raises(ValueError, match="layers"):
        adapt(small_net, blobs, replace(FAST, layers="head"))


def test_scale_jitter_reaches_the_object_crops(blobs, small_net, monkeypatch):
    """The user's objects are shown at scales drawn from AdaptOptions.scale_jitter."""
    from dataclasses import replace

    from napari_ritm.training import trainer

    seen = []

    class Recording(trainer.ObjectCropper):
        def __init__(self, crop_size, **kwargs):
            seen.append(kwargs["jitter"])
            super().__init__(crop_size, **kwargs)

    monkeypatch.setattr(trainer, "ObjectCropper", Recording)
    adapt(small_net, blobs, replace(FAST, scale_jitter=(0.5, 2.0)))
    assert seen == [(0.5, 2.0)]


def test_rehearsal_images_fill_half_of_the_training_and_are_not_scored(blobs, small_net,
                                                                       monkeypatch):
    """By default the shipped rehearsal images share each batch with the user's objects (the
    sets are balanced); a given list replaces them; ``rehearsal=False`` trains on the user's
    objects alone. Rehearsal images are never held back or scored."""
    from dataclasses import replace

    from napari_ritm.training import trainer

    seen = []

    class Recording(trainer.Trainer):
        def __init__(self, net, train, val, options):
            seen.append((sorted({t.set_name for t in train}), len(train), options.balance_sets))
            super().__init__(net, train, val, options)

    monkeypatch.setattr(trainer, "Trainer", Recording)
    shipped = adapt(small_net, blobs, FAST)
    given = adapt(small_net, blobs, FAST, rehearsal=[replace(blobs[0], name="old")])
    alone = adapt(small_net, blobs, replace(FAST, rehearsal=False))
    assert seen == [(["rehearsal", "user"], len(blobs) + 8, True),
                    (["rehearsal", "user"], len(blobs) + 1, True), (["blobs"], len(blobs), False)]
    assert (shipped.rehearsal_images, given.rehearsal_images, alone.rehearsal_images) == (8, 1, 0)
    assert shipped.card("default")["rehearsal_images"] == 8
    assert shipped.train_objects == given.train_objects == alone.train_objects
    assert shipped.held_objects == given.held_objects == alone.held_objects


def test_shipped_rehearsal_images_are_labelled_rgb_nuclei():
    from napari_ritm.training.adapt import rehearsal_images

    images = rehearsal_images()
    assert len(images) == 8
    for sample in images:
        assert sample.image.dtype == np.uint8 and sample.image.shape[2] == 3
        assert sample.image.shape[:2] == sample.labels.shape and max(sample.labels.shape) <= 256
        assert sample.labels.max() >= 5 and sample.image.std() > 5


def test_cancel_stops_after_the_current_step(blobs, small_net):
    assert adapt(small_net, blobs, FAST, should_stop=lambda: True) is None


def test_objects_made_in_the_session_are_what_adaptation_learns_from():
    """committed_objects follows commits, propagated slices and napari undo/redo; with it,
    samples_from_planes keeps just those objects (other labels are background there)."""
    from napari.layers import Labels

    from _fakes import DiskPredictor
    from napari_ritm.inference.planes import ImageSource
    from napari_ritm.session import Session
    from napari_ritm.training.data import samples_from_planes

    image = np.full((8, 24, 24), 20, np.uint8)
    image[2:6, 6:18, 6:18] = 200  # one object on slices 2..5
    image[6, 0:3, 0:3] = 90
    painted = np.zeros((8, 24, 24), np.uint16)
    painted[3, 0:3, 0:3] = 7  # painted before the session: not the session's
    painted[6, 0:3, 0:3] = 7
    labels = Labels(painted.copy())
    session = Session(ImageSource(image), labels, predictor=DiskPredictor())
    session.set_slice((3,))
    session.click(12, 12, True)
    session.finish()
    session.run_pending()
    assert session.committed_objects() == {(3,): {8}}
    prop = session.stacks.propagate(1)
    for step in prop.steps():
        session.stacks.apply_step(step)
    session.stacks.end()
    assert session.committed_objects() == {(3,): {8}, (4,): {8}, (5,): {8}}
    labels.undo()  # napari's undo of the last propagated slice
    session.labels_undone()
    assert session.committed_objects() == {(3,): {8}, (4,): {8}}
    labels.redo()
    session.labels_redone()
    only = session.committed_objects()
    assert only == {(3,): {8}, (4,): {8}, (5,): {8}}
    samples = samples_from_planes(session.image, labels.data, name="lab", only=only)
    assert [s.name for s in samples] == ["lab@3", "lab@4", "lab@5"]
    for sample, z in zip(samples, (3, 4, 5)):
        np.testing.assert_array_equal(sample.labels, np.where(labels.data[z] == 8, 8, 0))
    every = samples_from_planes(session.image, labels.data, name="lab")
    assert [s.name for s in every] == ["lab@3", "lab@4", "lab@5", "lab@6"]
    assert (every[0].labels == 7).sum() == 9
