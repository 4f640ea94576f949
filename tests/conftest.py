"""Shared test fixtures: where the read-only reference data lives."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NAPARI_RITM_SHARED", REPO.parent / "shared"))
REF = SHARED / "ref"
DATA = SHARED / "data"


@pytest.fixture(scope="session")
def ref_dir() -> Path:
    """The folder of reference outputs of the official RITM code (skips when absent)."""
    if not REF.is_dir():
        pytest.skip(f"reference data not found at {REF}")
    return REF


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder of shared datasets (skips when absent)."""
    if not DATA.is_dir():
        pytest.skip(f"shared datasets not found at {DATA}")
    return DATA


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Every test runs torch on one thread, as the widget and the commands do: on a 2-core
    machine with anything else busy, two threads make each network call many times slower."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def own_user_models(tmp_path, monkeypatch):
    """Every test has a user model folder of its own (the user's real one is never written,
    and a threshold one test fits never reaches another)."""
    monkeypatch.setenv("NAPARI_RITM_MODELS", str(tmp_path / "user-models"))
