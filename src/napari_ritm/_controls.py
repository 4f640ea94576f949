"""The dock widget's controls: Qt widgets and their layout, no behaviour.

:class:`RITMControls` only builds and lays out the combos, checkboxes, slider, buttons, progress
bar and status line; :class:`napari_ritm._widget.RITMWidget` subclasses it and connects them to
the session.
"""
from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from napari_ritm.inference.modes import MODES, WIDGET_MODE, mode_settings

MODE_TIPS = {
    "window": "window (default): looks only around your clicks, so any image size costs the "
    "same (about 0.1 s per click)",
    "exact": "exact: the published RITM predictor, zoomed to 400 px with mirror averaging "
    "(slower, for comparisons with the paper)",
    "fast": "fast: the published predictor at 256 px without mirror averaging",
}

CHOOSE_FILE = "Choose a .pth file..."


def _check(text: str, checked: bool) -> QCheckBox:
    check = QCheckBox(text)
    check.setChecked(checked)
    return check


class RITMControls(QWidget):
    """The widget's panel: image/labels/model combos, speed mode with zoom-in and flip, the
    probability threshold (slider 1..99 = 0.01..0.99), click radius, overwrite policy, the
    object buttons (finish, undo, reset, refine, propagate, stop), a progress bar and a status
    line. Model names come from the registry, then ``CHOOSE_FILE``."""

    def __init__(self) -> None:
        super().__init__()
        from napari_ritm.model.zoo import REGISTRY

        self.image_combo, self.labels_combo = QComboBox(), QComboBox()
        self.model_combo = QComboBox()
        for name, entry in REGISTRY.items():
            self.model_combo.addItem(name)
            self.model_combo.setItemData(self.model_combo.count() - 1, entry.description,
                                         Qt.ItemDataRole.ToolTipRole)
        self.model_combo.addItem(CHOOSE_FILE)
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(MODES)
        self.mode_combo.setCurrentText(WIDGET_MODE)
        self.mode_combo.setToolTip("\n".join(MODE_TIPS[mode] for mode in MODES))
        self.zoom_check = _check("Zoom-in", True)
        self.zoom_check.setEnabled(WIDGET_MODE != "window")
        self.flip_check = _check("Flip TTA", mode_settings(WIDGET_MODE)["flip"])
        self.overwrite_check = _check("Overwrite other labels", False)
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(1, 99)
        self.threshold_slider.setValue(49)
        self.threshold_label = QLabel("0.49")
        self.radius_spin = QDoubleSpinBox()
        self.radius_spin.setRange(1, 100)
        self.radius_spin.setValue(5)
        self.finish_button = QPushButton("Finish object [Space]")
        self.undo_button = QPushButton("Undo click [Ctrl+Z]")
        self.reset_button = QPushButton("Reset object [Esc]")
        self.refine_cursor_button = QPushButton("Refine label under cursor [R]")
        self.refine_selected_button = QPushButton("Refine selected label")
        self.up_button = QPushButton("Propagate ↑")
        self.down_button = QPushButton("Propagate ↓")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self._lay_out()

    def _lay_out(self) -> None:
        form = QFormLayout()
        for label, *widgets in (("Image", self.image_combo), ("Labels", self.labels_combo),
                                ("Model", self.model_combo),
                                ("Speed", self.mode_combo, self.zoom_check, self.flip_check),
                                ("Threshold", self.threshold_slider, self.threshold_label),
                                ("Click radius", self.radius_spin), ("", self.overwrite_check)):
            row = QHBoxLayout()
            for widget in widgets:
                row.addWidget(widget)
            form.addRow(label, row)
        buttons = QGridLayout()
        for i, button in enumerate((self.finish_button, self.undo_button, self.reset_button,
                                    self.refine_cursor_button, self.refine_selected_button,
                                    self.up_button, self.down_button, self.stop_button)):
            buttons.addWidget(button, i // 2, i % 2)
        layout = QVBoxLayout(self)
        for part in (form, buttons):
            layout.addLayout(part)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)
