"""Shared test fixtures: where the read-only reference data lives."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: set to 1 (CI does) to make missing shared data an error instead of skipped tests
REQUIRE_SHARED = os.environ.get("NAPARI_RITM_REQUIRE_SHARED") == "1"


def _find_shared() -> Path:
    """The shared folder (``ref/`` and ``data/``): ``$NAPARI_RITM_SHARED``, else ``shared``
    beside this checkout, else beside the checkout this one was cloned from (a fresh clone in
    a temporary folder still finds the data of the working copy it came from)."""
    if "NAPARI_RITM_SHARED" in os.environ:
        return Path(os.environ["NAPARI_RITM_SHARED"])
    candidates, checkout = [REPO.parent / "shared"], REPO
    for _ in range(3):  # a clone of a clone of the working copy, at most
        origin = _local_origin(checkout)
        if origin is None:
            break
        candidates.append(origin.parent / "shared")
        checkout = origin
    return next((c for c in candidates if (c / "data").is_dir()), candidates[0])


def _local_origin(checkout: Path) -> Path | None:
    """The folder ``checkout`` was cloned from, when that is a local path."""
    try:
        url = subprocess.run(["git", "-C", str(checkout), "config", "--get",
                              "remote.origin.url"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not url or "://" in url or ":" in url.split("/")[0]:
        return None
    path = (checkout / url).resolve() if not Path(url).is_absolute() else Path(url).resolve()
    return path if path.is_dir() else None


SHARED = _find_shared()
REF = SHARED / "ref"
DATA = SHARED / "data"
MISSING = ("the shared reference outputs and datasets are not at {path}: the tests that need "
           "them are skipped. Put the project's shared/ folder (ref/ and data/) beside the "
           "checkout, or set NAPARI_RITM_SHARED=/path/to/shared")


def pytest_report_header(config) -> str:
    if REF.is_dir() and DATA.is_dir():
        return f"napari-ritm shared data: {SHARED}"
    return "napari-ritm: " + MISSING.format(path=SHARED)


def _needs(folder: Path, what: str) -> Path:
    if not folder.is_dir():
        if REQUIRE_SHARED:
            pytest.fail(f"{what} not found at {folder} (NAPARI_RITM_REQUIRE_SHARED=1)")
        pytest.skip(f"{what} not found at {folder}: see the note at the top of the test run")
    return folder


@pytest.fixture(scope="session")
def ref_dir() -> Path:
    """The folder of reference outputs of the official RITM code (skips when absent)."""
    return _needs(REF, "reference data")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder of shared datasets (skips when absent)."""
    return _needs(DATA, "shared datasets")


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
