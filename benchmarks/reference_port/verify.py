"""Checks the port against the official predictor runs in shared/ref (predictor_h18s*.npz)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from reference_port.nobrs import ReferencePredictor

# prefix -> the official settings of that run (see shared/ref/README.md); the runs with an
# external initial mask are not ported.
RUNS = {
    "predictor_h18s.npz": {
        "eval_horse": {},
        "eval_dsb": {},
        "demo_big": {"target_size": (400, 400), "skip_clicks": -1, "max_size": 800},
        "demo_nozoom_big": {"zoom_in": False, "max_size": 800},
    },
    "predictor_h18s_crop.npz": {
        "eval_crop": {},
        "demo_crop": {"target_size": (400, 400), "skip_clicks": -1, "max_size": 800},
    },
}


def verify(ref_dir: Path) -> dict[str, float]:
    """Max |p_port - p_official| over all steps of each run, keyed by run prefix.

    After each step the port's previous probabilities are replaced by the official ones (as
    tests/test_predictor_reference.py does): with random weights a 1e-6 change of the previous
    mask moves the next map by ~3e-5, so a free run would amplify float32 rounding.
    """
    from napari_ritm.model.checkpoint import load_checkpoint

    net = load_checkpoint(ref_dir / "checkpoints" / "fake_coco_lvis_h18s_itermask.pth")
    out = {}
    for file, runs in RUNS.items():
        data = np.load(ref_dir / file)
        for prefix, settings in runs.items():
            predictor = ReferencePredictor(net, **settings)
            predictor.set_input_image(data[f"{prefix}_image_u8"])
            clicks, worst = [], 0.0
            for step, (y, x, positive, _index) in enumerate(data[f"{prefix}_clicks"]):
                clicks.append((int(y), int(x), bool(positive)))
                probs = predictor.get_prediction(clicks)
                official = data[f"{prefix}_probs"][step]
                worst = max(worst, float(np.abs(probs - official).max()))
                predictor.sync_previous(official)
            out[prefix] = worst
    return out
