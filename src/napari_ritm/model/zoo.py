"""Registered models, the per-user download cache, and :func:`load_model`.

A model is either the ``default`` one shipped inside the package (``napari_ritm/weights/``) or one
of the official RITM releases, downloaded on first use into a per-user cache:

- ``NAPARI_RITM_CACHE``: the cache folder (default: the platform's user cache folder,
  e.g. ``~/.cache/napari-ritm`` on Linux, from :func:`pooch.os_cache`);
- ``NAPARI_RITM_BASE_URL``: a mirror; a file is then fetched from ``<base>/<filename>``.

A download goes to a temporary file next to its target and only replaces the target once it has
been checked (exact size and SHA-256 where the registry knows them; in every case the file must load
as a release-format RITM checkpoint of the expected variant), so an interrupted or corrupt download
is never left in the cache. This module imports neither torch nor pooch at import time.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from napari_ritm.model.files import atomic_write
from napari_ritm.model.user_folder import user_model_path

if TYPE_CHECKING:
    from napari_ritm.model.ritm_net import RITMNet

CACHE_ENV = "NAPARI_RITM_CACHE"
BASE_URL_ENV = "NAPARI_RITM_BASE_URL"
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
_RELEASE = "https://github.com/saic-vul/ritm_interactive_segmentation/releases/download/v1.0/"
_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A model could not be downloaded (network failure or corrupt file); nothing was cached.

    ``url`` is the address that failed and ``path`` the file a manual download must be saved as.
    """

    def __init__(self, message: str, *, url: str, path: Path) -> None:
        super().__init__(message)
        self.url = url
        self.path = path


class ModelNotBundledError(FileNotFoundError):
    """The ``default`` model is registered but its file is not shipped in this installation."""


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    ``url`` is None for a model shipped inside the package (file ``WEIGHTS_DIR/filename``).
    ``size`` is in bytes: the exact byte count when ``size_exact`` (then downloads are checked
    against it), otherwise the approximate published figure (for display), or None when unknown.
    ``label``: how the widget names it, in a microscopist's words (what it was trained on).
    ``sha256``, when known, is checked on download. ``variant`` names the architecture the file must
    hold, as ``RITMVariant.name`` spells it (e.g. ``h18s_itermask``, ``h18_baseline``).
    """

    name: str
    variant: str
    description: str
    filename: str
    url: str | None = None
    size: int | None = None
    size_exact: bool = False
    sha256: str | None = None
    label: str = ""


def _release(name: str, variant: str, size_mib: float, description: str,
             label: str) -> ModelEntry:
    size = round(size_mib * 2**20)
    return ModelEntry(name, variant, description, f"{name}.pth", _RELEASE + f"{name}.pth", size,
                      label=label)


# Sizes of the official files are the release page's rounded figures (16.5 / 38.8 / 119 MB, in
# MiB), not exact byte counts; the official SHA-256 sums are not published either. Official
# downloads are therefore checked by loading them as the expected variant (see fetch).
_OFFICIAL = (  # name, variant, size in MiB, description, label in the widget's Model box
    ("coco_lvis_h18s_itermask", "h18s_itermask", 16.5,
     "official HRNet18s IT-M, COCO+LVIS: small and fast",
     "Photos of everyday objects: small, fast (RITM, download)"),
    ("coco_lvis_h18_itermask", "h18_itermask", 38.8,
     "official HRNet18 IT-M, COCO+LVIS: best speed/quality balance",
     "Photos of everyday objects: balanced (RITM, download)"),
    ("coco_lvis_h32_itermask", "h32_itermask", 119,
     "official HRNet32 IT-M, COCO+LVIS: most accurate, slowest",
     "Photos of everyday objects: most accurate, slow (RITM, download)"),
    ("sbd_h18_itermask", "h18_itermask", 38.8,
     "official HRNet18 IT-M, SBD (PASCAL objects only)",
     "Photos, 20 kinds of objects (RITM on PASCAL, download)"),
    ("coco_lvis_h18_baseline", "h18_baseline", 38.8,
     "official HRNet18, COCO+LVIS, without previous-mask input",
     "Photos, without the mask input (RITM baseline, download)"),
)

REGISTRY: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry(
            "default", "h18s_itermask",
            "napari-ritm's own model, trained on microscopy and photos; shipped in the package",
            "default.pth", label="Microscopy: nuclei, cells, EM (built in)",
        ),
        *(_release(*official) for official in _OFFICIAL),
    )
}


def get_entry(name: str) -> ModelEntry:
    """The registry entry called ``name``; ValueError listing the known names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown model name {name!r}.{hint} Known names: {', '.join(REGISTRY)}; "
            "or pass the path of an official-format .pth file."
        ) from None


def cache_dir() -> Path:
    """Folder of downloaded models: ``$NAPARI_RITM_CACHE`` or the per-user cache folder."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    import pooch

    return Path(pooch.os_cache("napari-ritm"))


def local_path(name: str) -> Path:
    """Where the file of model ``name`` lives (bundled) or goes once downloaded (cache)."""
    entry = get_entry(name)
    if entry.url is None:
        return WEIGHTS_DIR / entry.filename
    return cache_dir() / entry.filename


def source_url(name: str) -> str | None:
    """The download address of ``name`` (honouring ``$NAPARI_RITM_BASE_URL``); None if bundled."""
    entry = get_entry(name)
    if entry.url is None:
        return None
    base = os.environ.get(BASE_URL_ENV)
    return f"{base.rstrip('/')}/{entry.filename}" if base else entry.url


def fetch(name: str, *, progress: bool = True, force: bool = False) -> Path:
    """The local checkpoint file of registered model ``name``, downloading it if needed.

    A cached file is returned without touching the network (``force=True`` downloads it again and
    replaces the cached copy only once the new file has passed the checks). ``progress`` shows a
    tqdm progress bar on stderr. Raises ValueError for an unknown name, ModelNotBundledError when
    ``default`` is not shipped, and DownloadError (naming the URL and the path to save the file at
    by hand) when the download fails or the file is corrupt.
    """
    entry = get_entry(name)
    target = local_path(name)
    if entry.url is None:
        if not target.is_file():
            raise ModelNotBundledError(_not_bundled_message(target))
        return target
    if target.is_file() and not force:
        return target
    url = source_url(name)
    def download(tmp: Path) -> None:  # beside the target, with the user's usual permissions
        _download(url, tmp, progress=progress, target=target)
        problem = _check(tmp, entry)
        if problem:
            raise DownloadError(
                f"the file downloaded for model {name!r} from {url} is unusable and was not "
                f"cached: {problem}\n{_manual_hint(url, target)}",
                url=url, path=target,
            )

    return atomic_write(target, download)


def _download(url: str, tmp: Path, *, progress: bool, target: Path) -> None:
    import pooch

    downloader = pooch.HTTPDownloader(progressbar=progress, chunk_size=_CHUNK)
    try:
        downloader(url, str(tmp), None)
    except OSError as err:  # requests' errors (connection, HTTP status, cut-off body) are OSErrors
        message = f"could not download {url}\n  ({err})\n{_manual_hint(url, target)}"
        raise DownloadError(message, url=url, path=target) from err


def _check(path: Path, entry: ModelEntry) -> str | None:
    """What is wrong with a downloaded file (size, hash, not loadable, other variant), or None."""
    size = path.stat().st_size
    if entry.size_exact and size != entry.size:
        return f"{size:,} bytes instead of {entry.size:,}"
    if entry.sha256:
        import pooch

        digest = pooch.file_hash(str(path), alg="sha256")
        if digest != entry.sha256.lower():
            return f"SHA-256 {digest} instead of {entry.sha256}"
    from napari_ritm.model.checkpoint import load_checkpoint

    try:
        net = load_checkpoint(path)
    except (ValueError, RuntimeError) as err:
        return f"not a loadable RITM checkpoint: {err}"
    if net.variant.name != entry.variant:
        return f"it holds a {net.variant.name} model, expected {entry.variant}"
    return None


def _manual_hint(url: str, target: Path) -> str:
    return (
        f"To install it by hand, download\n  {url}\n"
        f"(e.g. in a browser) and save it as\n  {target}\n"
        f"(set {CACHE_ENV} to use another cache folder, "
        f"or {BASE_URL_ENV} to download from a mirror)"
    )


def _not_bundled_message(target: Path) -> str:
    names = ", ".join(n for n, e in REGISTRY.items() if e.url is not None)
    return (
        "the default model is not bundled with this installation of napari-ritm "
        f"(no file at {target}); reinstall napari-ritm to get it back. "
        "Or use an official RITM model: run `napari-ritm download coco_lvis_h18s_itermask` "
        "(about 16.5 MiB, needs the internet once), then use the name coco_lvis_h18s_itermask "
        "(load_model('coco_lvis_h18s_itermask'), or --model coco_lvis_h18s_itermask); "
        f"or pass the path of an official-format .pth file. Downloadable models: {names}."
    )


def load_model(source: str | os.PathLike, device: str = "cpu") -> RITMNet:
    """A ready RITMNet (eval mode, float32) from a checkpoint path or a registered model name.

    ``source``: a path (str or Path) to an official-format ``.pth`` file (``state_dict`` +
    ``config``), or a name from :data:`REGISTRY` (downloaded into the cache on first use).
    Raises ValueError for an unknown name, FileNotFoundError for a missing file (including
    :class:`ModelNotBundledError`), :class:`DownloadError` when a download fails, and the loader's
    ValueError/RuntimeError for an unusable file. ``net.source`` keeps ``source``.
    """
    net = _load(source, device)
    net.source = str(source)  # where it came from: a predictor's record names it
    return net


def _load(source: str | os.PathLike, device: str) -> RITMNet:
    from napari_ritm.model.checkpoint import load_checkpoint

    if isinstance(source, str) and source in REGISTRY:
        path = fetch(source)
        try:
            return load_checkpoint(path, device=device)
        except (ValueError, RuntimeError) as err:
            if REGISTRY[source].url is None:
                raise
            cls = ValueError if isinstance(err, ValueError) else RuntimeError
            raise cls(
                f"{err}\nThe cached copy of {source!r} is unusable: run "
                f"`napari-ritm download --force {source}` (or delete {path})."
            ) from err
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be a model name or a path, not {type(source).__name__}")
    if isinstance(source, str) and (own := user_model_path(source)) is not None:
        return load_checkpoint(own, device=device)  # one of the user's models, by name
    path = Path(source)
    if not path.is_file():
        if isinstance(source, str) and not path.suffix and len(path.parts) == 1:
            get_entry(source)  # a bare word that is no file: report it as an unknown model name
        raise FileNotFoundError(f"no checkpoint file at {path}")
    return load_checkpoint(path, device=device)


def describe_load_error(source: str | os.PathLike, error: BaseException) -> str:
    """One or two lines for a user about why ``load_model(source)`` failed and what to do."""
    name = Path(source).name if Path(str(source)).suffix else str(source)
    if isinstance(error, DownloadError):
        return (f"Could not download model {name!r}. Save {error.url} as {error.path} "
                "(e.g. with a browser), then choose it again.")
    if isinstance(error, ModelNotBundledError):
        return "The default model is missing from this installation: reinstall napari-ritm."
    if isinstance(error, FileNotFoundError):
        return f"No model file at {source}."
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if len(first) > 200:
        first = first[:197] + "..."
    return f"Cannot use model {name!r}: {first}"


def model_file(source: str | os.PathLike) -> Path:
    """The checkpoint file ``load_model(source)`` reads (a registered name's cached or shipped
    file, else the path itself), without downloading anything."""
    if isinstance(source, str) and source in REGISTRY:
        return local_path(source)
    if isinstance(source, str) and (own := user_model_path(source)) is not None:
        return own
    return Path(source)


def model_file_hash(source: str | os.PathLike) -> str | None:
    """SHA-256 of the checkpoint file of ``source`` (None when there is no such file yet)."""
    path = model_file(source)
    if not path.is_file():
        return None
    import pooch

    return pooch.file_hash(str(path), alg="sha256")
