"""The package as users meet it: importable without torch, a valid manifest, a working CLI."""
from __future__ import annotations

import subprocess
import sys

import pytest

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
    assert [w.display_name for w in manifest.contributions.widgets] == ["RITM segmentation"]


def test_cli_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"napari-ritm {napari_ritm.__version__}"


def test_cli_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("predict", "evaluate", "train", "finetune", "download", "export"):
        assert command in out


def test_console_script_runs():
    exe = subprocess.run(
        [sys.executable, "-m", "napari_ritm.cli", "--version"], capture_output=True, text=True
    )
    assert exe.returncode == 0
    assert exe.stdout.startswith("napari-ritm ")
