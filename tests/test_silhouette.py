"""Silhouettes from colour images: background models scored on rendered studio scenes."""

import cv2
import numpy as np
import pytest

from core.silhouette import (
    CleanPlate,
    CleanupParams,
    Mog2Model,
    Mog2Params,
    PlateParams,
    clean_mask,
    make_background_model,
    mask_iou,
)
from core.sim.scene import SceneRenderer
from core.sim.studio import SimulatedStudio, StudioConfig

SEED = 5            # teal top, brown trousers: an ordinary outfit (see docs/SILHOUETTES.md)
PLATE_FRAMES = 15
TIMES = np.arange(0.0, 10.0, 1.0)  # the lighting drifts from 1.0 up to 1.15 and down to 0.91


@pytest.fixture(scope="module")
def scene():
    studio = SimulatedStudio(StudioConfig(seed=SEED))
    renderer = SceneRenderer(studio, seed=SEED)
    empties = [renderer.empty_frame(-(PLATE_FRAMES - i) / 10) for i in range(PLATE_FRAMES)]
    frames = [renderer.render(float(t)) for t in TIMES]
    return renderer, empties, frames


def _models(kind_or_params, empties, cameras):
    out = []
    for k in cameras:
        if isinstance(kind_or_params, str):
            m = make_background_model(kind_or_params)
        elif isinstance(kind_or_params, Mog2Params):
            m = Mog2Model(kind_or_params)
        else:
            m = CleanPlate(kind_or_params)
        m.capture([e[k] for e in empties])
        out.append(m)
    return out


def _run(kind_or_params, scene, cameras=range(8)):
    """IoU per (frame, camera) and the segmentations, segmenting the take in order."""
    _, empties, frames = scene
    cameras = list(cameras)
    models = _models(kind_or_params, empties, cameras)
    ious, details = [], []
    for fr in frames:
        for m, k in zip(models, cameras):
            d = m.segment_detail(fr.images[k])
            assert d.mask.dtype == np.uint8 and d.mask.shape == fr.masks[k].shape
            assert set(np.unique(d.mask)) <= {0, 1}
            ious.append(mask_iou(d.mask, fr.masks[k]))
            details.append((fr, k, d))
    return np.array(ious), details


@pytest.fixture(scope="module")
def plate_run(scene):
    return _run("plate", scene)


# -- the measurement ---------------------------------------------------------------
def test_clean_plate_reaches_iou_095_on_rendered_scenes(plate_run):
    ious, _ = plate_run
    # Measured: 0.987 mean, 0.973 worst over these 80 camera-frames.
    assert ious.mean() >= 0.95
    assert ious.min() >= 0.94


def test_shadow_robust_colour_space_ignores_the_floor_shadow(scene, plate_run):
    def shadow_false_positives(details):
        fp = total = 0
        for fr, k, d in details:
            far = cv2.dilate(fr.masks[k], np.ones((5, 5), np.uint8)) == 0
            region = (fr.shadows[k] > 0.15) & far
            fp += np.count_nonzero(region & (d.mask > 0))
            total += np.count_nonzero(region)
        return fp / total

    robust_iou, robust = plate_run
    rgb_iou, rgb = _run(PlateParams(colour_space="rgb"), scene)
    # Same thresholds, plain colour distance: the shadow joins the silhouette.
    # Measured: 0 % and 100 % of the shadow's pixels; IoU 0.987 and 0.585.
    assert shadow_false_positives(robust) < 0.01
    assert shadow_false_positives(rgb) > 0.9
    assert rgb_iou.mean() < robust_iou.mean() - 0.2


def test_mog2_through_the_same_interface(scene):
    ious, _ = _run("mog2", scene)
    # Measured: 0.938 mean, 0.820 worst (no edge refinement, OpenCV's shadow test).
    assert ious.mean() >= 0.92
    assert ious.min() >= 0.78


def test_lighting_step_of_15_percent_does_not_flood_the_mask(scene):
    """The plate was taken at the dim end of the drift (gain 0.95), the first
    frame after it at the bright peak (1.15): a 21 % step in one frame."""
    renderer, empties, _ = scene
    t = 4.0  # a quarter period of the drift: the gain peaks
    assert renderer.gain(t) == pytest.approx(1.15)
    frame = renderer.render(t)
    cams = [0, 3, 6]
    with_gain = _models("plate", empties, cams)
    without = _models(PlateParams(compensate_gain=False), empties, cams)
    for m, n, k in zip(with_gain, without, cams):
        d = m.segment_detail(frame.images[k])  # the very first frame after the capture
        assert d.gain == pytest.approx(1.15 / renderer.gain(-0.8), abs=0.03)
        assert mask_iou(d.mask, frame.masks[k]) >= 0.95  # measured 0.984-0.996
        flooded = n.segment(frame.images[k])  # measured: 33-85 times the silhouette
        assert np.count_nonzero(flooded) > 10 * np.count_nonzero(frame.masks[k])


def test_speckles_are_removed(scene, rng):
    renderer, empties, frames = scene
    k = int(rng.integers(8))
    fr = frames[int(rng.integers(len(frames)))]
    model, clean_ref = _models("plate", empties, [k, k])
    baseline = mask_iou(clean_ref.segment(fr.images[k]), fr.masks[k])
    noisy = fr.images[k].copy()
    h, w = noisy.shape[:2]
    n = h * w // 300  # single pixels of random colour
    noisy[rng.integers(h, size=n), rng.integers(w, size=n)] = rng.integers(256, size=(n, 3))
    for _ in range(40):  # and 2 x 2 blobs
        y, x = rng.integers(h - 2), rng.integers(w - 2)
        noisy[y:y + 2, x:x + 2] = rng.integers(256, size=3)
    d = model.segment_detail(noisy)
    far = cv2.dilate(fr.masks[k], np.ones((9, 9), np.uint8)) == 0
    assert np.count_nonzero(d.raw.astype(bool) & far) > 100  # the specks are in the raw decision ...
    assert np.count_nonzero(d.mask.astype(bool) & far) == 0  # ... and gone from the mask
    assert mask_iou(d.mask, fr.masks[k]) >= min(baseline - 0.02, 0.95)


def test_performer_split_by_a_thin_pole_keeps_both_parts(scene):
    _, empties, frames = scene
    fr = frames[2]
    k = int(np.argmax([np.ptp(np.nonzero(m)[1]) for m in fr.masks]))  # the widest view
    truth = fr.masks[k]
    cols = np.cumsum(truth.sum(0)) / truth.sum()
    x0 = int(np.searchsorted(cols, 0.35))
    pole = np.zeros_like(truth)
    pole[:, x0:x0 + 6] = 1  # a 6-pixel pole in front of everything, from top to bottom

    def with_pole(img):
        img = img.copy()
        img[pole > 0] = (60, 70, 200)
        return img

    occluded = [[with_pole(e[k])] for e in empties]
    target = truth & (1 - pole)
    left, right = target.copy(), target.copy()
    left[:, x0:] = 0
    right[:, :x0] = 0
    assert left.sum() > 0.2 * target.sum() and right.sum() > 0.2 * target.sum()
    for params, keeps_both in ((PlateParams(), True),
                               (PlateParams(cleanup=CleanupParams(keep_fraction=1.0)), False)):
        m = CleanPlate(params)
        m.capture([o[0] for o in occluded])
        mask = m.segment(with_pole(fr.images[k]))
        n_parts = cv2.connectedComponents(mask)[0] - 1
        kept = [np.count_nonzero(mask & part) / part.sum() for part in (left, right)]
        if keeps_both:
            assert n_parts >= 2
            assert min(kept) > 0.9
            assert mask_iou(mask, target) >= 0.93
        else:  # only the largest component: one side is lost
            assert min(kept) < 0.1


def test_plate_follows_a_slow_local_change(scene):
    """A region brightening 0.6 % a frame (a lamp warming up: not a global gain)
    is followed by the plate update (lag: 0.6 % / rate = 6 %); a frozen plate
    calls it performer once it is 24 % brighter."""
    _, empties, frames = scene
    k = 1
    fr = frames[0]
    patch = np.zeros(fr.masks[k].shape, bool)
    patch[20:60, 30:90] = True
    assert not (patch & (fr.masks[k] > 0)).any()
    results = {}
    for rate in (0.1, 0.0):
        m = CleanPlate(PlateParams(update_rate=rate))
        m.capture([e[k] for e in empties])
        for i in range(1, 41):
            img = fr.images[k].astype(np.float32)
            img[patch] *= 1 + 0.006 * i
            mask = m.segment(np.clip(img, 0, 255).astype(np.uint8))
        results[rate] = np.count_nonzero(mask.astype(bool) & patch) / patch.sum()
    assert results[0.1] < 0.02
    assert results[0.0] > 0.5


def test_a_plate_from_two_frames_is_enough(scene):
    """Two frames 1.4 s apart, the light 8 % brighter in the second: each is
    brought to their common lighting, and the plate's own noise (the mean of
    2 frames: half the sensor's variance) widens the thresholds and is taken
    out of the texture test. Measured: 0.977 worst."""
    _, empties, frames = scene
    ious = []
    for k in (2, 5):
        m = CleanPlate()
        m.capture([empties[0][k], empties[-1][k]])
        ious += [mask_iou(m.segment(fr.images[k]), fr.masks[k]) for fr in frames[:4]]
    assert min(ious) >= 0.93


# -- clean-up ------------------------------------------------------------------------
def test_clean_mask_keeps_the_performer_and_drops_the_rest(rng):
    h, w = 270, 480
    raw = np.zeros((h, w), np.uint8)
    cx, cy = int(rng.integers(100, 250)), int(rng.integers(80, 190))
    cv2.ellipse(raw, (cx, cy), (30, 60), 0, 0, 360, 1, -1)            # the body, ~5650 px
    cv2.circle(raw, (cx + 70, cy), 12, 1, -1)                          # a separate part, ~450 px
    raw[cy - 40:cy - 37, cx - 5:cx - 2] = 0                            # a 9-px hole: filled
    cv2.circle(raw, (cx, cy + 20), 10, 0, -1)                          # a 300-px hole: kept
    raw[5:7, 5:7] = 1                                                  # a speck
    raw[h - 20:h - 15, w - 20:w - 15] = 1                              # a 25-px blob
    m = clean_mask(raw)
    assert m[5:7, 5:7].sum() == 0 and m[h - 20:h - 15, w - 20:w - 15].sum() == 0
    assert m[cy - 40:cy - 37, cx - 5:cx - 2].all()
    assert m[cy + 20, cx] == 0
    assert m[cy, cx + 70] == 1
    assert m.dtype == np.uint8
    assert clean_mask(np.zeros((h, w), np.uint8)).sum() == 0


# -- bad input -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["plate", "mog2"])
def test_bad_input_is_refused_with_a_clear_message(kind, rng):
    empty = [rng.integers(0, 256, (60, 80, 3), dtype=np.uint8) for _ in range(5)]
    m = make_background_model(kind)
    with pytest.raises(RuntimeError, match="capture"):
        m.segment(empty[0])
    with pytest.raises(ValueError, match="at least one frame"):
        m.capture([])
    if kind == "plate":  # the noise needs two frames at least
        with pytest.raises(ValueError, match="at least 2 frames"):
            m.capture(empty[:1])
    with pytest.raises(ValueError, match="80x60 but the background is 80x70"):
        m.capture([empty[0], np.zeros((70, 80, 3), np.uint8)][::-1])
    m.capture(empty)
    assert m.ready and m.shape == (60, 80)
    with pytest.raises(ValueError, match="uint8"):
        m.segment(empty[0].astype(np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        m.segment(empty[0][..., 0])
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        m.segment(np.zeros((60, 80, 4), np.uint8))
    with pytest.raises(ValueError, match="160x120 but the background is 80x60"):
        m.segment(np.zeros((120, 160, 3), np.uint8))
    assert m.segment(empty[1]).shape == (60, 80)
    m.reset()
    with pytest.raises(RuntimeError):
        m.segment(empty[0])


def test_factory_and_parameters_are_checked():
    assert isinstance(make_background_model(), CleanPlate)
    assert isinstance(make_background_model("mog2", Mog2Params(learning_rate=0.01)), Mog2Model)
    with pytest.raises(ValueError, match="unknown background model 'knn'"):
        make_background_model("knn")
    with pytest.raises(ValueError, match="takes PlateParams"):
        make_background_model("plate", Mog2Params())
    with pytest.raises(ValueError, match="colour_space"):
        PlateParams(colour_space="hsv")
    with pytest.raises(ValueError, match="update_rate"):
        PlateParams(update_rate=1.5)


# -- the rendered scene itself ---------------------------------------------------------
def test_scene_images_agree_with_the_true_masks_and_shadows(scene):
    renderer, _, frames = scene
    fr = frames[3]
    again = renderer.render(fr.t_s)
    assert all(np.array_equal(a, b) for a, b in zip(fr.images, again.images))  # reproducible
    empty = renderer.empty_frame(fr.t_s)
    for k in range(8):
        img, bg = fr.images[k].astype(float), empty[k].astype(float)
        mask, shadow = fr.masks[k] > 0, fr.shadows[k]
        edge = cv2.dilate(fr.masks[k], np.ones((3, 3), np.uint8)) > 0
        plain = ~edge & (shadow == 0)
        diff = (img - bg)[plain]
        # Two independent noise draws of sigma 3: their difference has sigma 3 sqrt(2).
        assert diff.std() == pytest.approx(3 * np.sqrt(2), rel=0.15)
        assert np.abs(diff.mean()) < 0.5
        core = (shadow > 0.3) & ~edge
        if core.sum() > 20:
            ratio = img[core].sum() / bg[core].sum()
            expected = 1 - shadow[core].mean()
            assert ratio == pytest.approx(expected, abs=0.05)
            assert 0.5 <= expected <= 0.8  # shadows darken the floor by 20-50 %
        assert np.abs(img - bg)[mask].mean() > 20
