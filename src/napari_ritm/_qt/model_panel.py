"""The model half of the dock widget: loading models in the background and building predictors.

:class:`ModelPanel` is one of :class:`napari_ritm._qt.widget.RITMWidget`'s panels
(``widget.models``); it uses the widget's controls (``model_combo``, ``mode_combo``,
``zoom_check``, ``flip_check``, ``threshold_slider``) and calls its ``say`` / ``set_busy`` /
``_pump``.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from qtpy.QtCore import QSignalBlocker, Qt
from qtpy.QtWidgets import QFileDialog

from napari_ritm._qt.controls import CHOOSE_FILE, DEFAULT_THRESHOLD
from napari_ritm._qt.workers import network_worker
from napari_ritm.inference.modes import mode_settings

__all__ = ["ModelPanel", "load_networks", "model_key"]


def model_key(source: str) -> str:
    """One key per model file for the threshold memory: a user model chosen by name and the
    same file chosen as a path share it; registered models keep their name."""
    from napari_ritm.model.user_models import user_model_path

    path = user_model_path(source) or (Path(source) if source.endswith(".pth") else None)
    return str(path.resolve()) if path is not None else source


def load_networks(source: str) -> tuple[Any, dict[str, Any], str | None]:
    """The network, its inference copy for each mode and its file's SHA-256 (for the record),
    built in the background (the exact mode's copy runs a probe), so that switching mode,
    mirror averaging or zoom-in is instant."""
    from napari_ritm.inference.modes import NETWORKS
    from napari_ritm.model.fuse import optimize
    from napari_ritm.model.zoo import load_model, model_file_hash

    net = load_model(source)
    copies = {kind: optimize(net, kind).model for kind in set(NETWORKS.values())}
    networks = {mode: copies[kind] for mode, kind in NETWORKS.items()}
    return net, networks, model_file_hash(source)


class ModelPanel:
    """The dock's Model, Look at and Extra accuracy controls and what they choose: the model in
    use, loaded in the background, and the predictor built from it. ``host``: the dock widget
    (its controls, status line, busy bar, session and click queue).

    ``net``: the model in use (None until one is loaded), ``model_name`` its registered name or
    path, ``predictor`` and ``predictor_info`` (how to build it again, for the record),
    ``model_thresholds``: each model's threshold when the user left it."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self.net: Any = None
        self.predictor: Any = None
        self.predictor_info: dict | None = None
        self.model_name: str | None = None
        self.model_thresholds: dict[str, float] = {}
        self._model_hash: str | None = None
        self._networks: dict[str, Any] = {}  # mode -> inference copy of net
        self._model_worker: Any = None
        host.model_combo.activated.connect(self._on_model_chosen)
        host.mode_combo.currentIndexChanged.connect(self._on_mode)
        host.zoom_check.toggled.connect(lambda _: self._build_predictor())
        host.flip_check.toggled.connect(lambda _: self._build_predictor())

    @property
    def loading(self) -> bool:
        """A model is being loaded."""
        return self._model_worker is not None

    def _on_model_chosen(self, index: int) -> None:
        source = self.host.model_combo.itemData(index)
        if source == CHOOSE_FILE:
            source, _ = QFileDialog.getOpenFileName(self.host, "RITM checkpoint", "",
                                                    "RITM model (*.pth)")
            if not source:
                self._show_model(self.model_name)
                return
        self.load_model(source)

    def model_label(self, source: str | None) -> str:
        """How the model box names ``source`` (a registered name, a user model or a file)."""
        index = self.host.model_combo.findData(source)
        if index >= 0:
            return self.host.model_combo.itemText(index)
        return Path(source).name if source else ""

    def _show_model(self, source: str | None) -> None:
        """Show ``source`` (a name or a .pth path) in the model box, adding files by name."""
        if source is None:
            return
        index = self.host.model_combo.findData(source)
        if index < 0:  # a file: listed by its name, the path as its data
            index = self.host.model_combo.count() - 1
            self.host.model_combo.insertItem(index, Path(source).name, source)
            self.host.model_combo.setItemData(index, source, Qt.ItemDataRole.ToolTipRole)
        with QSignalBlocker(self.host.model_combo):
            self.host.model_combo.setCurrentIndex(index)

    def load_model(self, source: str | Path, *, message: str | None = None,
                   on_loaded: Callable[[str], None] | None = None) -> None:
        """Load a registered model name or a .pth path in the background; once it is in use
        (not when loading fails or another model is chosen meanwhile) say ``message`` (by
        default: how to click) and where the threshold went, and call ``on_loaded`` with
        what was said."""
        source = str(source)
        self._show_model(source)
        self.host.say(f"Loading model {self.model_label(source)}...")
        self.host.set_busy("model", True)
        worker = network_worker(
            load_networks, source,
            returned=lambda loaded: self._model_loaded(worker, source, *loaded, message=message,
                                                       on_loaded=on_loaded),
            errored=lambda error: self._model_failed(worker, source, error),
            finished=lambda: self._model_worker_finished(worker))
        self._model_worker = worker
        worker.start()

    def _model_loaded(self, worker: Any, source: str, net: Any, networks: dict,
                      digest: str | None, *, message: str | None,
                      on_loaded: Callable[[str], None] | None) -> None:
        if worker is self._model_worker and self.host._alive:  # another model may have been chosen
            previous, self.model_name = self.model_name, source
            self.net, self._networks, self._model_hash = net, networks, digest
            self._build_predictor()
            said = (message or f"Model {self.model_label(source)} ready: left click on the "
                    "image adds to the object, right click (or Ctrl+click) removes")
            said += self._threshold_for(source, previous)
            note = self.host.intensity_note() if message is None else ""
            said += f". {note}" if note else ""
            self.host.say(said)
            if on_loaded is not None:
                on_loaded(said)

    def _threshold_for(self, source: str, previous: str | None) -> str:
        """Put the slider at ``source``'s threshold, ``previous``'s staying with it while the
        dock is open: the value ``source`` had earlier, else the one fitted to the user's labels
        that its card keeps, else :data:`DEFAULT_THRESHOLD` (a first model without a card
        leaves the slider where it is). Returns what to add to the status line: nothing when
        the slider stays (unless a card put it there)."""
        from napari_ritm.model.user_models import recorded_threshold

        if previous is not None:
            self.model_thresholds[model_key(previous)] = self.host.threshold_slider.value() / 100
        before = self.host.threshold_slider.value()
        if model_key(source) in self.model_thresholds:
            threshold, why = self.model_thresholds[model_key(source)], "this model's earlier"
        elif (threshold := recorded_threshold(source, self._model_hash)) is not None:
            why = "fitted to your labels with this model"
        elif previous is not None:
            threshold, why = DEFAULT_THRESHOLD, "the models' default"
        else:
            return ""
        self.host.threshold_slider.setValue(round(threshold * 100))
        from_card = why.startswith("fitted")
        if self.host.threshold_slider.value() == before and not from_card:
            return ""
        return f". Threshold {threshold:.2f}: {why}"

    def _model_failed(self, worker: Any, source: str, error: BaseException) -> None:
        if worker is not self._model_worker or not self.host._alive:
            return
        from napari_ritm.model.zoo import describe_load_error

        self._show_model(self.model_name)  # back on the model that still predicts
        still = f" Still using {self.model_label(self.model_name)}." if self.model_name else ""
        self.host.warn(describe_load_error(source, error) + still)

    def _model_worker_finished(self, worker: Any) -> None:
        if worker is self._model_worker:
            self._model_worker = None
            if self.host._alive:
                self.host.set_busy("model", False)
                self.host._pump()

    @property
    def mode(self) -> str:
        """The predictor mode chosen in the "Look at" box."""
        return self.host.mode_combo.currentData()

    def set_mode(self, mode: str) -> None:
        """Choose predictor ``mode`` in the "Look at" box (as the user would)."""
        self.host.mode_combo.setCurrentIndex(self.host.mode_combo.findData(mode))

    def _on_mode(self, _index: int = 0) -> None:
        """A mode brings its own mirror-averaging default; one new predictor for both changes.
        Zoom-in is a choice of the paper's predictor only (the window mode always zooms in)."""
        mode = self.mode
        with QSignalBlocker(self.host.flip_check):
            self.host.flip_check.setChecked(mode_settings(mode)["flip"])
        self.host.zoom_check.setEnabled(mode != "window")
        self._build_predictor()

    def _build_predictor(self) -> None:
        if self.net is None:
            return
        from napari_ritm.inference.modes import set_interactive_threads

        set_interactive_threads()
        predictor, info = self.new_predictor()
        self.set_predictor(predictor, info)

    def new_predictor(self) -> tuple[Any, dict]:
        """A predictor of its own for the model, mode and boxes chosen (the model must be
        loaded), and the ``info`` that says how to build it again."""
        from napari_ritm.inference.modes import make_predictor

        # The paper's modes get the official demo's additions (zoomed in from the first click,
        # never more than 800 px through the network); the checkboxes override zoom-in and flip.
        mode = self.mode
        overrides = {"flip": self.host.flip_check.isChecked()}
        if mode != "window":
            overrides["zoom_in"] = self.host.zoom_check.isChecked()
        info = {"model": self.model_name, "sha256": self._model_hash, "mode": mode,
                "interactive": True, "settings": overrides}
        return make_predictor(self._networks[mode], mode, interactive=True, **overrides), info

    def set_predictor(self, predictor: Any, info: dict | None = None) -> None:
        """Predict with ``predictor`` (a window predictor, a ``Predictor`` or anything with
        their interface); ``info`` says how to build it again (for the session's record)."""
        self.predictor, self.predictor_info = predictor, info
        if self.host.session is not None:
            self.host.session.set_predictor(predictor, info)
            self.host._pump()
