"""The dock widget's controls: Qt widgets, their layout and tooltips, no behaviour.

:class:`RITMControls` builds the panel in the order a user reads it, top to bottom: Data (image,
channel, labels), Model (model, mode, options), Object (the state of the object in progress and
its buttons), Existing labels (refine), Stack (propagate, stop), then a busy bar and a message
line. :class:`napari_ritm._qt.widget.RITMWidget` subclasses it and connects it to the session.
"""
from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_ritm._qt.keys import key_text
from napari_ritm.inference.clicks import DEFAULT_THRESHOLD
from napari_ritm.inference.modes import MODES, WIDGET_MODE, mode_settings

__all__ = ["CHOOSE_FILE", "DEFAULT_THRESHOLD", "MARKER_SIZE", "MODE_LABELS", "MODE_TIPS",
           "RITMControls"]

CHOOSE_FILE = "Choose a .pth file..."
#: the threshold the slider starts at (the evaluation protocol's)
#: the click markers' default size on the screen (px): a ring this small leaves a 9 px nucleus
#: visible at the zoom napari opens the sample image with
MARKER_SIZE = 7
#: what "Adapt model to my labels" learns from: every object of the layer, or this session's
ADAPT_SCOPES = ("all objects of the layer", "objects made in this session")

#: what the "Look at" box offers, by predictor mode
MODE_LABELS = {
    "window": "around my clicks (recommended)",
    "exact": "the whole image (the RITM paper's way)",
    "fast": "the whole image, smaller (faster)",
}

MODE_TIPS = {
    "window": "Around my clicks (recommended): the model looks only at a window around your "
    "clicks, so a click costs the same on any image size (about 0.1 s on a laptop)",
    "exact": "The whole image: the predictor of the RITM paper, to compare with its published "
    "results (slower, and slower still on large images)",
    "fast": "The whole image, smaller: the paper's predictor on a smaller view, without the "
    "extra accuracy",
}


def _check(text: str, checked: bool, tip: str) -> QCheckBox:
    check = QCheckBox(text)
    check.setChecked(checked)
    check.setToolTip(tip)
    return check


def _button(text: str, tip: str, action: str | None = None,
            keys: dict | None = None) -> QPushButton:
    key = key_text(action, keys) if action else ""
    button = QPushButton(f"{text} [{key}]" if key else text)
    button.setToolTip(tip + (f" (shortcut: {key})" if key else ""))
    return button


def _combo(tip: str) -> QComboBox:
    combo = QComboBox()
    combo.setToolTip(tip)
    return combo


class RITMControls(QWidget):
    """The panel. Data: ``image_combo``, ``channel_combo``, ``labels_combo``. Model:
    ``model_combo`` (the registered models by what they were trained on, the user's own, then
    ``CHOOSE_FILE``; each item's data is the model's name or file), ``mode_combo`` ("Look at";
    each item's data is the predictor mode), ``zoom_check``,
    ``flip_check``, ``threshold_slider`` (1..99 = 0.01..0.99), ``marker_spin`` (click marker
    size in screen pixels), ``overwrite_check``, ``adapt_scope_combo`` (which objects "Learn
    from"), ``fit_button`` and ``adapt_button``. Object: ``state_label`` and the finish, undo and
    reset buttons. Existing labels: the two refine buttons. Stack: propagate up/down and stop.
    Then ``progress`` (a busy bar) and ``status`` (the latest message)."""

    def __init__(self, keys: dict[str, list[str]] | None = None) -> None:
        super().__init__()
        from napari_ritm.model.zoo import REGISTRY

        def button(text: str, tip: str, action: str | None = None) -> QPushButton:
            return _button(text, tip, action, keys)

        self.image_combo = _combo("The image to segment (any napari Image layer)")
        self.channel_combo = _combo(
            "Which channel of a multichannel image the model sees; remembered per image")
        self.labels_combo = _combo(
            "The Labels layer that receives finished objects; a new one is made if you choose "
            "<new labels layer>")
        self.model_combo = _combo("The network that turns clicks into masks: what it was trained "
                                  "on. The built-in one works offline; the others download once")
        for name, entry in REGISTRY.items():
            self.model_combo.addItem(entry.label or name, name)
            self.model_combo.setItemData(self.model_combo.count() - 1,
                                         f"{entry.description} (model name: {name})",
                                         Qt.ItemDataRole.ToolTipRole)
        from napari_ritm.model.user_models import model_card, user_models

        for name in user_models():  # the user's own, e.g. adapted to their labels
            card = model_card(name) or {}
            self.model_combo.addItem(name, name)
            self.model_combo.setItemData(
                self.model_combo.count() - 1,
                f"your model, adapted from {card.get('source_model', '?')} on "
                f"{card.get('train_objects', '?')} objects ({card.get('date', '')})",
                Qt.ItemDataRole.ToolTipRole)
        self.model_combo.addItem(CHOOSE_FILE, CHOOSE_FILE)
        self.mode_combo = _combo("What the model looks at for each click:\n"
                                 + "\n".join(MODE_TIPS[mode] for mode in MODES))
        for mode in MODES:
            self.mode_combo.addItem(MODE_LABELS[mode], mode)
        self.mode_combo.setCurrentIndex(self.mode_combo.findData(WIDGET_MODE))
        self.zoom_check = _check("Zoom in on the object", True,
                                 "Whole-image modes only: after the first click, look at a "
                                 "zoomed-in view of the object (looking around your clicks "
                                 "always does)")
        self.zoom_check.setEnabled(WIDGET_MODE != "window")
        self.flip_check = _check("Extra accuracy (2× slower)", mode_settings(WIDGET_MODE)["flip"],
                                 "Also predict on the mirrored image and average the two: "
                                 "fewer clicks per object, twice the work per click (untick "
                                 "for speed)")
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(1, 99)
        self.threshold_slider.setValue(round(DEFAULT_THRESHOLD * 100))
        self.threshold_slider.setToolTip("How sure the model must be that a pixel belongs to the "
                                         "object: higher gives smaller masks (updates at once)")
        self.threshold_label = QLabel(f"{DEFAULT_THRESHOLD:.2f}")
        self.threshold_label.setToolTip(self.threshold_slider.toolTip())
        self.marker_spin = QSpinBox()
        self.marker_spin.setRange(4, 40)
        self.marker_spin.setValue(MARKER_SIZE)
        self.marker_spin.setSuffix(" px")
        self.marker_spin.setToolTip("Size of the click markers on the screen (they keep it at "
                                    "any zoom)")
        self.overwrite_check = _check("Objects may cover other labels", False,
                                      "Off: a new object only takes unlabelled pixels, so "
                                      "nothing you painted is lost. On: it takes every pixel "
                                      "of its mask")
        self.state_label = QLabel("No object yet: left click on the image to start one")
        self.state_label.setWordWrap(True)
        self.state_label.setToolTip("The object in progress: its label id, clicks and slice")
        self.finish_button = button("Finish object", "Write the object into the labels layer "
                                     "and start a new one", "finish")
        self.undo_button = button("Undo click", "Take back the last click (with no click "
                                   "left: undo the last change to the labels layer)", "undo")
        self.reset_button = button("Reset object", "Discard the clicks and mask of the object "
                                    "in progress; nothing is written", "reset")
        self.refine_cursor_button = button("Refine label under cursor", "Continue an existing "
                                            "label (e.g. from Cellpose or a threshold): put the "
                                            "cursor on it, press the key, then click to correct "
                                            "it", "refine")
        self.refine_selected_button = button("Refine selected label", "Continue the label "
                                              "selected in the labels layer's controls")
        self.up_button = button("Propagate ↑", "Carry the object to the next slices, up the "
                                 "stack, until it ends", "propagate_up")
        self.down_button = button("Propagate ↓", "Carry the object to the previous slices, "
                                   "down the stack, until it ends", "propagate_down")
        self.whole_button = button("Whole object ↕", "Finish the object on this slice and "
                                   "propagate it up, then down, to where it ends",
                                   "whole_object")
        self.stop_button = button("Stop", "Stop the running propagation (slices written so "
                                   "far are kept; each is one undo step)")
        self.stop_button.setEnabled(False)
        self.adapt_button = button("Adapt model to my labels...", "Fine-tune a copy of the "
                                   "model on the objects of the Labels layer (a few minutes, in "
                                   "the background; you can keep working). It is kept only if "
                                   "it needs fewer clicks on objects held back from it, and "
                                   "then the threshold is fitted to your labels with it")
        self.fit_button = button("Fit threshold to my labels", "Click once on each object "
                                 "of the Labels layer and move the threshold to where the "
                                 "masks match your outlines best (seconds; for labels drawn "
                                 "tighter or looser than the model's). The model keeps it "
                                 "for the next time it is chosen")
        self.adapt_scope_combo = _combo("Which objects the threshold fit and the adaptation "
                                        "learn from: every object of the Labels layer, or only "
                                        "those you made or corrected in this session (clicked "
                                        "or propagated)")
        self.adapt_scope_combo.addItems(ADAPT_SCOPES)
        self.record_button = button("Save record...", "Save what you did here (model, clicks, "
                                    "settings) as a small JSON file from which `napari-ritm "
                                    "replay` rebuilds these labels")
        self.progress = QProgressBar()
        self.progress.setToolTip("Busy: the model is loading or predicting")
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.progress.setVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setToolTip("The latest message")
        self._lay_out()

    def _lay_out(self) -> None:
        layout = QVBoxLayout(self)
        data = QFormLayout()
        data.addRow("Image", self.image_combo)
        data.addRow("Channel", self.channel_combo)
        data.addRow("Labels", self.labels_combo)
        data.addRow("", self.record_button)
        model = QFormLayout()
        model.addRow("Model", self.model_combo)
        model.addRow("Look at", self.mode_combo)
        model.addRow("", _row(self.zoom_check, self.flip_check))
        model.addRow("Threshold", _row(self.threshold_slider, self.threshold_label))
        model.addRow("Markers", self.marker_spin)
        model.addRow("", self.overwrite_check)
        model.addRow("Learn from", self.adapt_scope_combo)
        model.addRow("", self.fit_button)
        model.addRow("", self.adapt_button)
        obj = QVBoxLayout()
        obj.addWidget(self.state_label)
        obj.addLayout(_row(self.finish_button, self.undo_button, self.reset_button))
        existing = QVBoxLayout()
        existing.addLayout(_row(self.refine_cursor_button, self.refine_selected_button))
        self.existing_layout = existing  # the proofreading rows join it
        stack = _row(self.up_button, self.down_button, self.whole_button, self.stop_button)
        for title, part in (("Data", data), ("Model", model), ("Object", obj),
                            ("Existing labels", existing), ("Stack", stack)):
            box = QGroupBox(title)
            box.setLayout(part)
            layout.addWidget(box)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)

    def controls(self) -> list[QWidget]:
        """Every control a user can operate (for checks that each explains itself)."""
        return [self.image_combo, self.channel_combo, self.labels_combo, self.model_combo,
                self.mode_combo, self.zoom_check, self.flip_check, self.threshold_slider,
                self.marker_spin, self.overwrite_check, self.finish_button, self.undo_button,
                self.reset_button, self.refine_cursor_button, self.refine_selected_button,
                self.up_button, self.down_button, self.whole_button, self.stop_button,
                self.record_button,
                self.adapt_scope_combo, self.fit_button, self.adapt_button]


def _row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    for widget in widgets:
        row.addWidget(widget)
    return row


