"""The package as users meet it: importable without torch, a valid manifest, a working CLI."""
from __future__ import annotations

import subprocess
import sys

import napari_ritm
from napari_ritm.cli import main


def test_import_is_light():
    code = "import sys, napari_ritm; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_manifest_is_valid():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-ritm")
    assert manifest.name == "napari-ritm"
    assert [w.display_name for w in manifest.contributions.widgets] == [
        "RITM segmentation", "Objects from points"]


def test_cli_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"napari-ritm {napari_ritm.__version__}"


def test_cli_help_lists_subcommands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("predict", "evaluate", "train", "finetune", "average", "download", "export"):
        assert command in out


def test_console_script_runs():
    exe = subprocess.run(
        [sys.executable, "-m", "napari_ritm.cli", "--version"], capture_output=True, text=True,
        check=False)
    assert exe.returncode == 0
    assert exe.stdout.startswith("napari-ritm ")


def test_public_api_is_lazy_and_complete():
    code = ("import sys, napari_ritm as r; names = sorted(r.__all__); "
            "print('torch' in sys.modules); [getattr(r, n) for n in names]; "
            "print('qtpy' in sys.modules or 'napari' in sys.modules or 'PyQt6' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"], out.stdout  # no torch first, never Qt
    from napari_ritm import Click, Predictor, Session, load_model, make_predictor, replay

    assert callable(load_model) and callable(make_predictor) and callable(replay)
    assert Click(1, 2, True).positive and Predictor.__name__ == "Predictor"
    assert Session.__module__ == "napari_ritm.session.session"


def test_a_fresh_clone_finds_the_shared_data(tmp_path, data_dir):
    """A clone of this checkout in a temporary folder runs the tests that need shared data (it
    finds them beside the working copy it came from), and says where they are."""
    import os

    from conftest import REPO

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k != "NAPARI_RITM_SHARED"}
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-p",
                          "no:cacheprovider", "tests/test_package.py"], cwd=clone, env=env,
                         capture_output=True, text=True, timeout=300, check=False)
    assert f"napari-ritm shared data: {data_dir.parent}" in run.stdout, run.stdout[-2000:]
