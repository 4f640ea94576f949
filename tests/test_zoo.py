"""Model registry, per-user cache and downloads, against a throwaway HTTP server on 127.0.0.1.

The server serves the shared fake h18s checkpoint (release format, random weights) in several
ways: whole (``/ok/``), cut off mid-way after announcing the full length (``/cut/``), as a
complete response of only the first half of the file (``/short/``), or not at all (404).
No test touches the real network.
"""
from __future__ import annotations

import hashlib
import http.server
import socket
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from napari_ritm.cli import main
from napari_ritm.model import zoo

H18S = "coco_lvis_h18s_itermask"


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET /<mode>/<file>: mode ok | cut | short; unknown files get 404."""

    files: dict[str, bytes] = {}
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.seen.append(self.path)
        _, mode, name = self.path.split("/", 2)
        data = self.files.get(name)
        if data is None or mode not in ("ok", "cut", "short"):
            self.send_error(404)
            return
        body = data[: len(data) // 2] if mode in ("cut", "short") else data
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) if mode == "cut" else len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def fake_bytes(ref_dir) -> bytes:
    """The shared fake h18s checkpoint (release format, random weights)."""
    fake = ref_dir / "checkpoints" / "fake_coco_lvis_h18s_itermask.pth"
    if not fake.is_file():
        pytest.skip(f"fake checkpoint not found at {fake}")
    return fake.read_bytes()


@pytest.fixture(scope="module")
def server(fake_bytes):
    """Base address of a local server that serves the fake checkpoint under several names."""
    _Handler.files = {f"{H18S}.pth": fake_bytes, "coco_lvis_h18_baseline.pth": fake_bytes}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A fresh cache folder per test, no mirror, no proxies, an empty request log."""
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(zoo.BASE_URL_ENV, raising=False)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    _Handler.seen = []
    return tmp_path / "cache"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_registry_lists_default_and_the_five_releases():
    assert list(zoo.REGISTRY) == [
        "default", "coco_lvis_h18s_itermask", "coco_lvis_h18_itermask", "coco_lvis_h32_itermask",
        "sbd_h18_itermask", "coco_lvis_h18_baseline",
    ]
    for name, entry in zoo.REGISTRY.items():
        assert entry.name == name
        if name == "default":
            assert entry.url is None and entry.filename == "default.pth"
            continue
        assert entry.url == (
            "https://github.com/saic-vul/ritm_interactive_segmentation/releases/download/v1.0/"
            f"{name}.pth"
        )
        assert entry.filename == f"{name}.pth"
        assert entry.sha256 is None and not entry.size_exact
    sizes_mib = {n: e.size / 2**20 for n, e in zoo.REGISTRY.items() if e.size}
    assert sizes_mib == pytest.approx({
        "coco_lvis_h18s_itermask": 16.5, "coco_lvis_h18_itermask": 38.8,
        "coco_lvis_h32_itermask": 119, "sbd_h18_itermask": 38.8, "coco_lvis_h18_baseline": 38.8,
    })
    assert zoo.REGISTRY["coco_lvis_h18_baseline"].variant == "h18_baseline"


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown model name 'coco_lvis_h18'") as info:
        zoo.fetch("coco_lvis_h18")
    assert all(name in str(info.value) for name in zoo.REGISTRY)
    assert "Did you mean" in str(info.value)
    with pytest.raises(ValueError, match="Known names: default, coco_lvis_h18s_itermask"):
        zoo.load_model("h18")


def test_missing_path_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        zoo.load_model(tmp_path / "nothing.pth")
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        zoo.load_model("nothing.pth")


def test_cache_folder_defaults_to_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(zoo.CACHE_ENV)
    assert zoo.cache_dir().name == "napari-ritm"
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert zoo.local_path(H18S) == tmp_path / "elsewhere" / f"{H18S}.pth"


def test_first_fetch_downloads_then_the_cache_is_used(
    server, isolated, monkeypatch, fake_bytes, capsys
):
    monkeypatch.setenv(zoo.BASE_URL_ENV, f"{server}/ok/")
    assert zoo.source_url(H18S) == f"{server}/ok/{H18S}.pth"
    path = zoo.fetch(H18S)
    assert path == isolated / f"{H18S}.pth"
    assert path.read_bytes() == fake_bytes
    assert _Handler.seen == [f"/ok/{H18S}.pth"]
    assert "100%" in capsys.readouterr().err  # the tqdm progress bar
    assert zoo.fetch(H18S) == path
    assert _Handler.seen == [f"/ok/{H18S}.pth"]  # no second request
    assert _cache_files(isolated) == [f"{H18S}.pth"]  # no temporary files left


def test_connection_cut_mid_way_caches_nothing(server, isolated, monkeypatch):
    monkeypatch.setenv(zoo.BASE_URL_ENV, f"{server}/cut")
    with pytest.raises(zoo.DownloadError) as info:
        zoo.fetch(H18S, progress=False)
    assert info.value.url == f"{server}/cut/{H18S}.pth"
    assert info.value.path == isolated / f"{H18S}.pth"
    assert _cache_files(isolated) == []


def test_truncated_file_caches_nothing(server, isolated, monkeypatch):
    monkeypatch.setenv(zoo.BASE_URL_ENV, f"{server}/short")
    with pytest.raises(zoo.DownloadError, match="not a loadable RITM checkpoint"):
        zoo.fetch(H18S, progress=False)
    assert _cache_files(isolated) == []


@pytest.mark.parametrize("change", ["size", "sha256"])
def test_wrong_size_or_hash_caches_nothing(server, isolated, monkeypatch, fake_bytes, change):
    entry = replace(zoo.REGISTRY[H18S], url=f"{server}/ok/{H18S}.pth", size=len(fake_bytes),
                    size_exact=True, sha256=hashlib.sha256(fake_bytes).hexdigest())
    if change == "size":
        entry = replace(entry, size=len(fake_bytes) + 1)
        expected = "bytes instead of"
    else:
        entry = replace(entry, sha256="0" * 64)
        expected = "SHA-256"
    monkeypatch.setitem(zoo.REGISTRY, H18S, entry)
    with pytest.raises(zoo.DownloadError, match=expected):
        zoo.fetch(H18S, progress=False)
    assert _cache_files(isolated) == []


def test_exact_size_and_hash_accept_the_right_file(server, isolated, monkeypatch, fake_bytes):
    entry = replace(zoo.REGISTRY[H18S], url=f"{server}/ok/{H18S}.pth", size=len(fake_bytes),
                    size_exact=True, sha256=hashlib.sha256(fake_bytes).hexdigest())
    monkeypatch.setitem(zoo.REGISTRY, H18S, entry)
    assert zoo.fetch(H18S, progress=False).stat().st_size == len(fake_bytes)


def test_file_of_another_variant_is_refused(server, isolated, monkeypatch):
    monkeypatch.setenv(zoo.BASE_URL_ENV, f"{server}/ok")  # serves the h18s file as the baseline
    expected = "h18s_itermask model, expected h18_baseline"
    with pytest.raises(zoo.DownloadError, match=expected):
        zoo.fetch("coco_lvis_h18_baseline", progress=False)
    assert _cache_files(isolated) == []


def test_server_down_names_url_and_target(isolated, monkeypatch):
    url_base = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv(zoo.BASE_URL_ENV, url_base)
    with pytest.raises(zoo.DownloadError) as info:
        zoo.fetch(H18S, progress=False)
    message = str(info.value)
    assert f"{url_base}/{H18S}.pth" in message
    assert f"save it as\n  {isolated / f'{H18S}.pth'}\n" in message
    assert isinstance(info.value, RuntimeError)
    assert _cache_files(isolated) == []


def test_http_error_is_a_download_error(server, isolated, monkeypatch):
    gone = replace(zoo.REGISTRY[H18S], url=f"{server}/ok/gone.pth")
    monkeypatch.setitem(zoo.REGISTRY, H18S, gone)
    with pytest.raises(zoo.DownloadError, match="404"):
        zoo.fetch(H18S, progress=False)
    assert _cache_files(isolated) == []


def test_forced_download_that_fails_keeps_the_cached_copy(
    server, isolated, monkeypatch, fake_bytes
):
    monkeypatch.setenv(zoo.BASE_URL_ENV, f"{server}/ok")
    path = zoo.fetch(H18S, progress=False)
    monkeypatch.setenv(zoo.BASE_URL_ENV, f"{server}/cut")
    with pytest.raises(zoo.DownloadError):
        zoo.fetch(H18S, progress=False, force=True)
    assert path.read_bytes() == fake_bytes
    assert _cache_files(isolated) == [f"{H18S}.pth"]


def test_default_missing_says_so_and_how_to_get_another(monkeypatch, tmp_path):
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", tmp_path / "weights")
    for call in (zoo.fetch, zoo.load_model):
        with pytest.raises(zoo.ModelNotBundledError, match="default model is not bundled") as info:
            call("default")
        assert "napari-ritm download coco_lvis_h18s_itermask" in str(info.value)
    assert main(["download", "default"]) == 2


def test_default_bundled_is_used_without_network(monkeypatch, tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "default.pth").write_bytes(b"not checked by fetch")
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", weights)
    monkeypatch.setenv(zoo.BASE_URL_ENV, f"http://127.0.0.1:{_closed_port()}")
    assert zoo.fetch("default") == weights / "default.pth"


def test_load_model_by_name_and_by_path(server, isolated, monkeypatch):
    import napari_ritm

    monkeypatch.setenv(zoo.BASE_URL_ENV, f"{server}/ok")
    net = napari_ritm.load_model(H18S)
    assert not net.training
    assert net.variant.name == "h18s_itermask"
    assert next(net.parameters()).dtype.is_floating_point
    for source in (isolated / f"{H18S}.pth", str(isolated / f"{H18S}.pth")):
        assert zoo.load_model(source).variant == net.variant
    assert _Handler.seen == [f"/ok/{H18S}.pth"]


def test_unusable_cached_copy_says_how_to_repair(isolated):
    isolated.mkdir(parents=True)
    (isolated / f"{H18S}.pth").write_bytes(b"not a checkpoint")
    with pytest.raises((ValueError, RuntimeError), match=f"download --force {H18S}"):
        zoo.load_model(H18S)


def _table_rows(text: str) -> dict[str, list[str]]:
    rows = [line.split() for line in text.splitlines()]
    return {row[0]: row[1:] for row in rows if row and row[0] in zoo.REGISTRY}


def test_cli_download_and_list(server, isolated, monkeypatch, capsys, fake_bytes):
    monkeypatch.setenv(zoo.BASE_URL_ENV, f"{server}/ok")
    assert main(["download", "--list"]) == 0
    out = capsys.readouterr().out
    rows = _table_rows(out)
    assert rows[H18S] == ["h18s_itermask", "~16.5", "MiB", "not", "cached",
                          str(isolated / f"{H18S}.pth")]
    assert rows["coco_lvis_h32_itermask"][1:3] == ["~119.0", "MiB"]
    assert f"cache folder: {isolated}" in out
    assert main(["download", "-q", H18S]) == 0
    assert f"{H18S}: {isolated / f'{H18S}.pth'} (downloaded)" in capsys.readouterr().out
    assert main(["download", H18S]) == 0
    assert "(already cached)" in capsys.readouterr().out
    assert main(["download", "--list"]) == 0
    rows = _table_rows(capsys.readouterr().out)
    assert rows[H18S][1:4] == [f"{len(fake_bytes) / 2**20:.1f}", "MiB", "cached"]
    assert rows["coco_lvis_h18_itermask"][3:5] == ["not", "cached"]
    assert len(_Handler.seen) == 1


def test_cli_failures_exit_2(isolated, monkeypatch, capsys):
    assert main(["download"]) == 2
    assert "--list" in capsys.readouterr().err
    assert main(["download", "nope"]) == 2
    assert "unknown model name 'nope'" in capsys.readouterr().err
    monkeypatch.setenv(zoo.BASE_URL_ENV, f"http://127.0.0.1:{_closed_port()}")
    assert main(["download", "-q", H18S]) == 2
    err = capsys.readouterr().err
    assert "could not download http://127.0.0.1:" in err and str(isolated / f"{H18S}.pth") in err
    assert "Traceback" not in err


def test_download_command_does_not_import_torch():
    code = "import sys, napari_ritm.commands.download; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
