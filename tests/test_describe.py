"""The state and status lines' texts, headless: the object in progress, and which intensities
the model sees."""
from __future__ import annotations

import numpy as np

from _fakes import DiskPredictor
from napari_ritm.inference.planes import ImageSource
from napari_ritm.session import Session
from napari_ritm.session.describe import intensity_note, object_text


def test_object_text_follows_the_clicks_and_the_slice():
    image = np.zeros((3, 40, 40), np.uint16)
    image[:, 10:30, 10:30] = 1000
    session = Session(image, np.zeros((3, 40, 40), np.int32), predictor=DiskPredictor())
    assert object_text(session) == ("No object in progress: left click on the image to start "
                                     "one · slice 0")
    session.click(20, 20, True)
    session.click(5, 5, False)
    session.run_pending()
    assert object_text(session) == "New object · 2 click(s): 1 object, 1 background · slice 0"
    session.finish()
    session.run_pending()
    session.refine(1)
    assert object_text(session) == "Label 1: click to correct it · slice 0"


def test_intensity_note_says_which_range_the_model_sees():
    image = np.full((40, 40), 100, np.uint16)
    image[10:30, 10:30] = 2000
    image[0, 0] = 65535  # one hot pixel: the robust range leaves it out
    labels = np.zeros((40, 40), np.int32)
    note = intensity_note(Session(image, labels))
    assert note.startswith("The model sees intensities 100 to 2000 (the robust range")
    limited = Session(ImageSource(image, contrast_limits=(0.0, 5000.0)), labels)
    assert intensity_note(limited) == ("The model sees intensities 0 to 5000: the image's "
                                       "contrast limits")
    assert intensity_note(Session(image.astype(np.uint8), labels)) == ""
    assert intensity_note(Session(np.zeros((40, 40, 3), np.uint8), labels)) == ""
