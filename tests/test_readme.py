"""The README's Python example runs as written, and its links point at files that exist."""
from __future__ import annotations

import re

import numpy as np

from conftest import REPO

README = (REPO / "README.md").read_text()


def test_the_python_example_runs(tmp_path, monkeypatch):
    block = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    labels, probs = namespace["labels"], namespace["probs"]
    assert probs.shape == (256, 256) and labels[120, 105] == 1
    assert (tmp_path / "cells.ritm.json").is_file()
    from napari_ritm import replay

    again = replay(tmp_path / "cells.ritm.json", namespace["image"])
    assert again.exact and np.array_equal(again.labels, labels)


def test_readme_links_and_length():
    for target in re.findall(r"\]\(((?:docs|src)/[^)#]+)\)", README):
        assert (REPO / target).exists(), target
    assert len(README.splitlines()) <= 200
