"""The window predictor: first-click window, growth at the window border, zoom-in on later
clicks, windows shifted inside the image, lazy reads of only the window, undo state."""
from __future__ import annotations

import numpy as np
import pytest

from _fakes import FloodNet
from napari_ritm.inference.clicks import Click
from napari_ritm.inference.second_look import looks_like_blob
from napari_ritm.inference.window import (
    LocalProbs,
    WindowPredictor,
    grow_window,
    square_window,
    touches_inner_border,
)


def disk_image(shape, centre, radius):
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    disk = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2
    image = np.zeros(shape, dtype=np.uint8)
    image[disk] = 200
    return image, disk


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


class CountingArray:
    """An array-like that records the size of every read (like a lazy zarr/dask plane)."""

    def __init__(self, data):
        self.data, self.shape, self.dtype = data, data.shape, data.dtype
        self.reads: list[tuple[int, int]] = []

    def __getitem__(self, index):
        block = self.data[index]
        self.reads.append(block.shape[:2])
        return block


def test_square_window_is_centred_and_shifted_inside_the_image():
    assert square_window(100, 100, 128, (1000, 1000)) == (36, 163, 36, 163)
    assert square_window(3, 995, 128, (1000, 1000)) == (0, 127, 872, 999)
    assert square_window(10, 10, 128, (60, 500)) == (0, 59, 0, 127)


def test_grow_window_doubles_about_the_centre_and_stays_inside():
    assert grow_window((100, 227, 100, 227), 2.0, (1000, 1000)) == (36, 291, 36, 291)
    assert grow_window((0, 127, 0, 127), 2.0, (1000, 1000)) == (0, 255, 0, 255)
    assert grow_window((0, 127, 0, 127), 2.0, (200, 200)) == (0, 199, 0, 199)


def test_touching_the_image_edge_is_not_touching_the_window_border():
    probs = np.zeros((128, 128), np.float32)
    probs[10:50, :5] = 1.0  # mask on the left side of the window
    assert not touches_inner_border(LocalProbs((0, 127, 0, 127), probs, (500, 500)), 0.5)
    assert touches_inner_border(LocalProbs((0, 127, 10, 137), probs, (500, 500)), 0.5)


def test_first_click_on_a_small_object_of_a_large_image_costs_one_small_window():
    image, disk = disk_image((2048, 2048), (1500, 700), 12)
    net = FloodNet()
    predictor = WindowPredictor(net, net_size=256, first_window=128)
    predictor.set_image(image)
    local = predictor.predict_local([Click(1500, 700, True)])
    assert predictor.passes == 1
    assert local.roi == (1436, 1563, 636, 763)
    assert net.calls == [(256, 256)]  # the 128 px window, enlarged 2x
    assert iou(local.full() > 0.49, disk) > 0.95


def test_same_mask_as_on_a_crop_around_the_object():
    image, _ = disk_image((2048, 2048), (1500, 700), 12)
    crop = image[1500 - 256 : 1500 + 256, 700 - 256 : 700 + 256]
    big, small = WindowPredictor(FloodNet()), WindowPredictor(FloodNet())
    big.set_image(image)
    small.set_image(crop)
    got = big.predict(
        [Click(1500, 700, True)])[1500 - 256 : 1500 + 256, 700 - 256 : 700 + 256]
    want = small.predict([Click(256, 256, True)])
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_window_grows_while_the_mask_reaches_its_border():
    image = np.zeros((2000, 2000), np.uint8)
    image[800:1100, 900:1250] = 255  # a 300 x 350 object: needs a 512 window
    predictor = WindowPredictor(FloodNet(), first_window=128, max_window=1024)
    predictor.set_image(image)
    local = predictor.predict_local([Click(950, 1000, True)])
    assert predictor.passes == 3  # 128 -> 256 -> 512
    assert local.roi[1] - local.roi[0] + 1 == 512
    assert iou(local.full() > 0.49, image > 0) > 0.97


def test_growth_stops_at_the_largest_window():
    image = np.full((3000, 3000), 255, np.uint8)  # the "object" is everywhere
    predictor = WindowPredictor(FloodNet(), first_window=128, max_window=512)
    predictor.set_image(image)
    local = predictor.predict_local([Click(1500, 1500, True)])
    assert predictor.passes == 3
    assert local.probs.shape == (512, 512)


def test_click_near_the_image_edge_uses_a_window_inside_the_image():
    image, disk = disk_image((1024, 1024), (4, 1020), 6)
    predictor = WindowPredictor(FloodNet())
    predictor.set_image(image)
    local = predictor.predict_local([Click(2, 1021, True)])
    assert local.roi == (0, 127, 896, 1023)
    assert predictor.passes == 1
    assert iou(local.full() > 0.49, disk) > 0.9


def test_later_clicks_zoom_in_on_the_object_and_keep_the_window():
    image, _ = disk_image((1024, 1024), (500, 500), 40)
    predictor = WindowPredictor(FloodNet(), net_size=256, first_window=128, min_crop_size=128)
    predictor.set_image(image)
    predictor.predict([Click(500, 470, True)])  # off-centre: the object reaches the window side
    assert predictor.passes == 2 and predictor.roi == (372, 627, 342, 597)
    clicks = [Click(500, 470, True), Click(400, 400, False)]
    predictor.predict(clicks)
    # ZoomIn: the mask's 81 px box x 1.4 is under the 128 px minimum, centred on the object
    assert predictor.roi == (436, 564, 436, 564)
    predictor.predict([*clicks, Click(520, 520, True)])
    assert predictor.roi == (436, 564, 436, 564)  # clicks inside, box unchanged: kept


def test_only_the_window_is_read_from_a_lazy_image():
    image, _ = disk_image((8192, 8192), (4000, 4000), 10)
    lazy = CountingArray(image)
    predictor = WindowPredictor(FloodNet(), max_window=1024)
    predictor.set_image(lazy)
    assert lazy.reads == []
    predictor.predict_local([Click(4000, 4000, True)])
    predictor.predict_local([Click(4000, 4000, True), Click(4030, 4030, False)])
    assert lazy.reads and max(max(r) for r in lazy.reads) <= 256


def test_state_round_trip_restores_the_previous_prediction():
    image, _ = disk_image((600, 600), (300, 300), 20)
    predictor = WindowPredictor(FloodNet())
    predictor.set_image(image)
    first = predictor.predict([Click(300, 300, True)])
    state = predictor.get_state()
    predictor.predict([Click(300, 300, True), Click(300, 310, False)])
    predictor.set_state(state)
    assert predictor.clicks == (Click(300, 300, True),)
    np.testing.assert_array_equal(predictor.get_state().probs.full(), first)


def test_refine_starts_from_the_given_mask_window():
    image, disk = disk_image((1500, 1500), (700, 700), 80)
    predictor = WindowPredictor(FloodNet(), first_window=128)
    predictor.set_image(image)
    predictor.predict([Click(700, 700, True)], prev_mask=disk.astype(np.float32))
    assert predictor.passes == 1  # the existing mask's box sets the window: no growth needed
    roi = predictor.roi
    assert roi[0] <= 620 and roi[1] >= 780


@pytest.mark.parametrize("bad", [np.zeros((5, 5, 2), np.uint8), np.zeros((5, 5), np.uint16)])
def test_bad_images_are_refused(bad):
    with pytest.raises(ValueError):
        WindowPredictor(FloodNet()).set_image(bad)


def test_clicks_outside_the_image_are_refused():
    predictor = WindowPredictor(FloodNet())
    predictor.set_image(np.zeros((50, 50), np.uint8))
    with pytest.raises(ValueError, match="outside"):
        predictor.predict([Click(60, 10, True)])


class BlobNet(FloodNet):
    """FloodNet, except that a window wholly inside the object gets an unsure small disk at the
    click (probability 0.6, a ninth of the window): what some checkpoints return inside a large
    particle."""

    def __call__(self, image, points, prev_mask=None):
        out = super().__call__(image, points, prev_mask)
        logits = out["instances"].numpy()
        h, w = image.shape[2:]
        rows, cols = np.ogrid[:h, :w]
        for b in range(image.shape[0]):
            if (logits[b, 0] > 0).mean() > 0.9:
                y, x = points[b, 0, :2].tolist()
                disk = (rows - y) ** 2 + (cols - x) ** 2 <= (h / 6) ** 2
                logits[b, 0] = np.where(disk, 0.4, -8.0)
        return out


def test_a_first_click_inside_a_large_object_gets_a_second_look():
    image = np.zeros((2000, 2000), np.uint8)
    image[850:1150, 850:1150] = 255  # 300 px: the 96 px first window lies inside it
    plain = WindowPredictor(BlobNet(), first_window=96)
    plain.set_image(image)
    blob = plain.predict_local([Click(1000, 1000, True)]).full() > 0.49
    assert plain.passes == 1 and iou(blob, image > 0) < 0.1
    looking = WindowPredictor(BlobNet(), first_window=96, second_look=4)
    looking.set_image(image)
    local = looking.predict_local([Click(1000, 1000, True)])
    assert looking.passes == 1 + 1  # the blob, then the 384 px window that holds the object
    assert local.roi[1] - local.roi[0] + 1 == 384
    assert iou(local.full() > 0.49, image > 0) > 0.97


def test_no_second_look_for_a_sure_mask_or_an_object_inside_the_first_window():
    image, disk = disk_image((2000, 2000), (1000, 1000), 20)
    net = BlobNet()
    predictor = WindowPredictor(net, first_window=96, second_look=4)
    predictor.set_image(image)
    local = predictor.predict_local([Click(1000, 1000, True)])
    assert predictor.passes == 1 and len(net.calls) == 1
    assert iou(local.full() > 0.49, disk) > 0.95


def test_only_a_blob_of_some_size_without_an_edge_counts():
    hw = (96, 96)
    rows, cols = np.ogrid[:96, :96]
    flat = np.full((96, 96, 3), 0.5, np.float32)

    def blob(radius: float, prob: float = 0.6) -> LocalProbs:
        disk = (rows - 48) ** 2 + (cols - 48) ** 2 <= radius ** 2
        return LocalProbs((0, 95, 0, 95), np.where(disk, prob, 0.0).astype(np.float32), hw)

    assert looks_like_blob(blob(16), flat, 0.49)  # 9 % of the window, unsure, no edge
    assert not looks_like_blob(blob(9), flat, 0.49)  # under 5 %: a small object, seen whole
    assert not looks_like_blob(blob(16, prob=0.9), flat, 0.49)  # the network is sure
    edged = flat.copy()
    edged[(rows - 48) ** 2 + (cols - 48) ** 2 <= 16 ** 2] = 1.0
    assert not looks_like_blob(blob(16), edged, 0.49)  # the image has an edge there


def test_the_blob_is_kept_when_the_wider_window_shows_no_larger_object():
    image = np.zeros((3000, 3000), np.uint8)
    image[500:2500, 500:2500] = 255  # larger than the wider window too: blob again there
    predictor = WindowPredictor(BlobNet(), first_window=96, second_look=4)
    predictor.set_image(image)
    local = predictor.predict_local([Click(1500, 1500, True)])
    assert predictor.passes == 2  # the first window and the wider look, which is not kept
    assert local.roi[1] - local.roi[0] + 1 == 96
