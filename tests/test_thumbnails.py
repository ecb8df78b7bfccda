"""Tests of thumbnails: contrast stretch, power spectra, crops in x, y, z, modes and batches made from real files."""

import os
import sys
import warnings
from contextlib import contextmanager

import mrcfile
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from embedscope.errors import InputError, ParameterError
from embedscope.formats.images import open_image, read_image
from embedscope.progress import Reporter
from embedscope.sources.thumbnails import MODES, crop, make_thumbnails, power_spectrum, thumbnail, to_uint8

_OPENED: list[str] | None = None


def _observe_opens(event, args):
    """Record the paths that this process opens while `opens()` is active (the audit hook cannot be removed)."""
    if event == "open" and _OPENED is not None and isinstance(args[0], str | bytes | os.PathLike):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_observe_opens)


@contextmanager
def opens():
    """The list of paths opened inside the block, as Python's audit events report them."""
    global _OPENED
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None


def write_mrc(path, data):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.asarray(data, np.float32))
    return path


def noise(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def assert_one_line(error, *fragments):
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


# --- to_uint8 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0.0, -3.5, 1e9])
def test_constant_image_is_mid_grey(value):
    result = to_uint8(np.full((5, 7), value, np.float32))
    assert result.dtype == np.uint8
    assert (result == 128).all()


def test_hot_pixel_does_not_darken_the_rest():
    image = np.tile(np.linspace(0, 1, 100, dtype=np.float32), (100, 1))
    image[50, 50] = 1e6
    result = to_uint8(image)
    assert result[50, 50] == 255
    assert result[:, 95].mean() > 230 and result[:, 5].mean() < 25


def test_mostly_constant_image_keeps_its_few_features():
    image = np.zeros((100, 100), np.float32)
    image[10, 10] = 1
    result = to_uint8(image)
    assert result[10, 10] == 255 and result[0, 0] == 0


def test_rgb_is_stretched_jointly():
    image = np.zeros((10, 10, 3), np.float32)
    image[..., 0] = np.linspace(50, 100, 100).reshape(10, 10)
    image[..., 2] = np.linspace(0, 10, 100).reshape(10, 10)
    result = to_uint8(image)
    assert result[..., 0].min() > result[..., 2].max()


def test_nan_and_inf_give_defined_values():
    image = noise((8, 8))
    image[0, 0], image[0, 1], image[0, 2] = np.nan, np.inf, -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = to_uint8(image)
    assert (result[0, 0], result[0, 1], result[0, 2]) == (0, 255, 0)
    assert (to_uint8(np.full((3, 3), np.nan)) == 128).all()


@pytest.mark.parametrize(("low", "high"), [(50, 50), (-1, 99), (1, 101)])
def test_bad_percentiles_are_refused(low, high):
    with pytest.raises(ParameterError) as error:
        to_uint8(noise((4, 4)), low, high)
    assert_one_line(error, "0 <= low < high <= 100")


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 9), st.integers(1, 9), st.sampled_from([1, 3]))))
def test_any_image_gives_uint8_of_its_shape(image):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = to_uint8(image)
    assert result.dtype == np.uint8 and result.shape == image.shape


# --- power spectrum ----------------------------------------------------------------------------


def test_sinusoid_peaks_at_its_frequency():
    x = np.arange(256)
    image = np.cos(2 * np.pi * 10 * x / 256)[None, :] + np.zeros((256, 1))
    spectrum = power_spectrum(image)
    assert spectrum.shape == (256, 256) and spectrum.dtype == np.float32
    peaks = np.argsort(spectrum.ravel())[-2:]
    assert set(zip(*np.unravel_index(peaks, spectrum.shape))) == {(128, 118), (128, 138)}


def test_large_image_is_averaged_over_tiles_and_keeps_the_frequency():
    y = np.arange(1000)[:, None]
    image = np.cos(2 * np.pi * y / 8) + np.zeros((1, 1200)) + noise((1000, 1200))
    spectrum = power_spectrum(image, tile=256)
    assert spectrum.shape == (256, 256)
    row, column = np.unravel_index(np.argmax(spectrum), spectrum.shape)
    assert column == 128 and abs(int(row) - 128) == 32  # 1/8 cycle a pixel is 32 of 256 bins


def test_rings_are_round_on_a_non_square_image():
    # Thon rings are the same everywhere in a micrograph: noise passed through a ring at 0.1 cycles per pixel
    frequencies = np.hypot(*np.meshgrid(np.fft.fftfreq(300), np.fft.fftfreq(500), indexing="ij"))
    ring = np.exp(-(((frequencies - 0.1) / 0.01) ** 2))
    image = np.fft.ifft2(np.fft.fft2(noise((300, 500)) - 0.5) * ring).real
    spectrum = power_spectrum(image)
    assert spectrum.shape == (300, 300)
    across, down = spectrum[145:156, 150:].mean(axis=0), spectrum[150:, 145:156].mean(axis=1)
    assert abs(np.argmax(across) - 30) <= 1 and abs(np.argmax(down) - 30) <= 1  # 0.1 of 300 bins either way


def test_power_spectrum_needs_a_plane():
    with pytest.raises(ParameterError) as error:
        power_spectrum(noise((3, 8, 8)))
    assert_one_line(error, "2-D image")


# --- crop --------------------------------------------------------------------------------------


def test_crop_puts_the_point_at_the_centre():
    image = np.zeros((20, 30), np.float32)
    image[3, 17] = 1  # y = 3, x = 17
    result = crop(image, (17, 3), 7)
    assert result.shape == (7, 7)
    assert result[3, 3] == 1 and result.sum() == 1


def test_crop_at_the_edge_is_zero_padded_and_centred():
    image = noise((20, 30)) + 1
    result = crop(image, (0, 19), 5)
    assert result[2, 2] == image[19, 0]
    assert (result[:, :2] == 0).all() and (result[3:, :] == 0).all()
    np.testing.assert_array_equal(result[:3, 2:], image[17:20, 0:3])


def test_volume_crop_takes_x_y_z_and_returns_z_y_x():
    volume = np.zeros((10, 12, 14), np.float32)
    volume[8, 1, 13] = 1  # z = 8, y = 1, x = 13
    result = crop(volume, (13, 1, 8), 5)
    assert result.shape == (5, 5, 5)
    assert result[2, 2, 2] == 1 and result.sum() == 1
    assert (result[:, :1, :] == 0).all() and (result[:, :, 3:] == 0).all() and (result[4:] == 0).all()


def test_crop_of_a_memory_mapped_tomogram_in_x_y_z(tmp_path):
    volume = noise((9, 11, 13))
    volume[2, 5, 7] = 10  # z = 2, y = 5, x = 7
    mapped = open_image(write_mrc(tmp_path / "tomo.rec", volume))
    result = crop(mapped, (7, 5, 2), 3)
    np.testing.assert_array_equal(result, volume[1:4, 4:7, 6:9])
    assert result[1, 1, 1] == 10


def test_box_per_axis_is_in_x_y_z_order():
    volume = noise((10, 12, 14))
    result = crop(volume, (6, 5, 4), (5, 3, 1))
    assert result.shape == (1, 3, 5)
    np.testing.assert_array_equal(result, volume[4:5, 4:7, 4:9])


def test_even_box_puts_the_point_at_half_the_box():
    image = np.zeros((20, 20), np.float32)
    image[10, 10] = 1
    assert crop(image, (10, 10), 4)[2, 2] == 1


@pytest.mark.parametrize(("x", "column"), [(9.4, 9), (9.5, 10), (9.6, 10)])
def test_fractional_centre_rounds_half_up(x, column):
    image = np.tile(np.arange(20, dtype=np.float32), (20, 1))
    assert crop(image, (x, 5), 3)[1, 1] == column


def test_crop_outside_the_image_is_all_zeros():
    assert (crop(noise((10, 10)) + 1, (50, -20), 4) == 0).all()


def test_rgb_crop_keeps_its_channels():
    image = noise((10, 10, 3))
    result = crop(image, (5, 5), 4)
    assert result.shape == (4, 4, 3)
    np.testing.assert_array_equal(result, image[3:7, 3:7])


@pytest.mark.parametrize(
    ("shape", "centre", "box", "fragment"),
    [
        ((8, 8, 8), (1, 2), 3, "add the z coordinate"),
        ((8, 8), (1, 2, 3), 3, "(d, h, w) volume"),
        ((8, 8), (1,), 3, "2 or 3 finite numbers"),
        ((8, 8), (1, np.nan), 3, "2 or 3 finite numbers"),
        ((8, 8), (1, 2), 0, "positive integer"),
        ((8, 8), (1, 2), (3, 3, 3), "positive integer"),
        ((8, 8), (1, 2), 2.5, "positive integer"),
    ],
)
def test_bad_crop_requests_are_refused(shape, centre, box, fragment):
    with pytest.raises(ParameterError) as error:
        crop(noise(shape), centre, box)
    assert_one_line(error, fragment)


# --- thumbnail ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [16, 64, 65])
def test_every_mode_gives_a_square_uint8_of_a_volume(mode, size):
    result = thumbnail(noise((20, 40, 30)), size, mode)
    assert result.shape == (size, size) and result.dtype == np.uint8


@pytest.mark.parametrize("mode", ["image", "ps"])
@pytest.mark.parametrize(("shape", "expected"), [((50, 70), (32, 32)), ((50, 70, 3), (32, 32, 3))])
def test_plane_modes_give_a_square_uint8_of_an_image(mode, shape, expected):
    result = thumbnail(noise(shape), 32, mode)
    assert result.dtype == np.uint8
    assert result.shape == (expected if mode == "image" else (32, 32))


def test_aspect_ratio_is_kept_and_padded_black():
    result = thumbnail(noise((20, 40)) + 1, 64)
    assert (result[:16] == 0).all() and (result[48:] == 0).all()
    assert result[16:48].std() > 10


def test_same_size_image_is_only_stretched():
    image = noise((32, 32))
    np.testing.assert_array_equal(thumbnail(image, 32), to_uint8(image))


def test_volume_image_mode_shows_the_central_z_slice():
    volume = np.zeros((9, 16, 16), np.float32)
    volume[4] = np.indices((16, 16))[1]
    result = thumbnail(volume, 16)
    np.testing.assert_array_equal(result, to_uint8(volume[4]))


def test_bright_voxel_lands_at_the_thumbnail_centre(tmp_path):
    volume = noise((30, 40, 50)) * 0.1
    volume[25, 3, 47] = 50  # x = 47, y = 3, z = 25: near the edges, so the crop is padded
    mapped = open_image(write_mrc(tmp_path / "tomo.mrc", volume))
    for size in (9, 63):
        result = thumbnail(crop(mapped, (47, 3, 25), 9), size)
        brightest = np.argwhere(result == result.max())
        assert result[size // 2, size // 2] == 255
        np.testing.assert_array_equal(brightest.mean(axis=0), (size // 2, size // 2))


def test_ps_mode_is_the_power_spectrum_of_the_central_slice():
    volume = noise((5, 64, 64))
    np.testing.assert_array_equal(thumbnail(volume, 64, "ps"), to_uint8(power_spectrum(volume[2])))


def test_slices_layout_is_xy_zy_xz_with_a_black_corner():
    volume = np.broadcast_to(np.arange(32, dtype=np.float32)[:, None, None], (32, 32, 32))  # value = z
    result = thumbnail(volume, 64, "slices").astype(int)
    xy, zy, xz, corner = result[:32, :32], result[:32, 32:], result[32:, :32], result[32:, 32:]
    assert xy.std() == 0 and 100 < xy[0, 0] < 160  # the central z slice
    assert (np.diff(zy, axis=1) >= 0).all() and zy[:, -1].mean() - zy[:, 0].mean() > 200  # z grows across
    assert (np.diff(xz, axis=0) >= 0).all() and xz[-1].mean() - xz[0].mean() > 200  # z grows down
    assert (corner == 0).all()


def test_thin_tomogram_slices_keep_one_scale():
    result = thumbnail(noise((8, 120, 120)) + 1, 64, "slices")
    assert (result[60:, 60:] == 0).all()  # 120 px on 60 px, so the 8 z slices take 4 px
    assert (result[:60, :60] > 0).mean() > 0.9 and (result[:60, 60:] > 0).mean() > 0.9


def test_slices_of_an_image_is_refused():
    with pytest.raises(ParameterError) as error:
        thumbnail(noise((10, 10)), 16, "slices")
    assert_one_line(error, "'slices' needs a (d, h, w) volume", "use mode 'image'")


def test_bad_mode_names_the_modes():
    with pytest.raises(ParameterError) as error:
        thumbnail(noise((10, 10)), 16, "fft")
    assert_one_line(error, "'fft'", "image, ps, slices")


# --- make_thumbnails ---------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path):
    """Two tomograms and a PNG, with the arrays written to them."""
    volumes = [noise((12, 20, 24), seed) for seed in (1, 2)]
    paths = [str(write_mrc(tmp_path / f"t{i}.mrc", volume)) for i, volume in enumerate(volumes)]
    picture = (noise((20, 30)) * 255).astype(np.uint8)
    Image.fromarray(picture).save(tmp_path / "p.png")
    return paths + [str(tmp_path / "p.png")]


def test_batches_equal_thumbnails_of_per_row_crops_in_input_order(files):
    rng = np.random.default_rng(0)
    paths = [files[i] for i in rng.integers(0, 2, 23)]
    centres = rng.uniform(-3, 25, (23, 3))
    batches = list(make_thumbnails(paths, 16, "slices", centres=centres, box=10, batch=10))
    assert [batch.shape for batch in batches] == [(10, 16, 16), (10, 16, 16), (3, 16, 16)]
    expected = [thumbnail(crop(read_image(path), centre, 10), 16, "slices") for path, centre in zip(paths, centres)]
    np.testing.assert_array_equal(np.concatenate(batches), np.stack(expected))


def test_default_box_is_the_thumbnail_size(files):
    centres = np.array([[3.0, 4.0, 5.0]])
    (batch,) = make_thumbnails(files[:1], 16, centres=centres)
    np.testing.assert_array_equal(batch[0], thumbnail(crop(read_image(files[0]), centres[0], 16), 16))


def test_two_column_centres_crop_images(files):
    (batch,) = make_thumbnails([files[2]] * 2, 8, centres=np.array([[0.0, 0.0], [29.0, 19.0]]), box=8)
    np.testing.assert_array_equal(batch[1], thumbnail(crop(read_image(files[2]), (29, 19), 8), 8))


def test_whole_files_without_centres(files):
    (batch,) = make_thumbnails([files[0], files[2], files[0]], 32, "ps")
    np.testing.assert_array_equal(batch[0], thumbnail(read_image(files[0]), 32, "ps"))
    np.testing.assert_array_equal(batch[1], thumbnail(read_image(files[2]), 32, "ps"))
    np.testing.assert_array_equal(batch[2], batch[0])


def test_each_file_is_opened_once_per_batch(files):
    with opens() as opened:
        open_image(files[0])
    once = opened.count(files[0])
    assert once >= 1
    centres = np.random.default_rng(0).uniform(0, 12, (300, 3))
    with opens() as opened:
        batches = list(make_thumbnails([files[0], files[1]] * 150, 8, centres=centres, box=6, batch=100))
    assert len(batches) == 3
    assert opened.count(files[0]) == opened.count(files[1]) == 3 * once


def test_colour_in_the_first_batch_makes_every_batch_colour(tmp_path, files):
    colour = (noise((10, 10, 3)) * 255).astype(np.uint8)
    Image.fromarray(colour).save(tmp_path / "c.png")
    batches = list(make_thumbnails([files[2], str(tmp_path / "c.png"), files[2]], 16, batch=2))
    assert batches[0].shape == (2, 16, 16, 3) and batches[1].shape == (1, 16, 16, 3)
    grey = thumbnail(read_image(files[2]), 16)
    for channel in range(3):
        np.testing.assert_array_equal(batches[0][0, ..., channel], grey)
        np.testing.assert_array_equal(batches[1][0, ..., channel], grey)
    np.testing.assert_array_equal(batches[0][1], thumbnail(read_image(tmp_path / "c.png"), 16))


def test_grey_first_batch_turns_later_colour_into_luminance(tmp_path, files):
    colour = np.zeros((16, 16, 3), np.uint8)
    colour[:8, ..., 0] = 255  # red top half, blue bottom half: both come out as grey of their own luminance
    colour[8:, ..., 2] = 255
    Image.fromarray(colour).save(tmp_path / "c.png")
    batches = list(make_thumbnails([files[2], str(tmp_path / "c.png")], 16, batch=1))
    assert [batch.shape for batch in batches] == [(1, 16, 16), (1, 16, 16)]
    assert (batches[1][0, :8] == 76).all() and (batches[1][0, 8:] == 29).all()


def test_progress_is_reported_per_batch(files):
    class Recorder(Reporter):
        def __init__(self):
            self.phases, self.done = [], []

        @contextmanager
        def phase(self, description, total):
            self.phases.append((description, total))
            yield self.done.append

    recorder = Recorder()
    list(make_thumbnails(files * 3, 8, reporter=recorder, batch=4))
    assert recorder.phases == [("thumbnails", 9)] and recorder.done == [4, 4, 1]


def test_batches_stream_before_a_later_row_fails(files, tmp_path):
    paths = [files[2]] * 4 + [str(tmp_path / "gone.png")]
    batches = make_thumbnails(paths, 8, batch=2)
    assert next(batches).shape == (2, 8, 8) and next(batches).shape == (2, 8, 8)
    with pytest.raises(InputError) as error:
        next(batches)
    assert_one_line(error, "row 4: ", str(tmp_path / "gone.png"), "no such file")


def test_a_failing_row_names_its_row_and_file(files):
    with pytest.raises(ParameterError) as error:
        list(make_thumbnails([files[0], files[2]], 8, "slices"))
    assert_one_line(error, "row 1: ", files[2], "'slices' needs a (d, h, w) volume")


def test_two_dimensional_centres_in_a_volume_name_the_row(files):
    with pytest.raises(ParameterError) as error:
        list(make_thumbnails([files[2], files[0]], 8, centres=np.zeros((2, 2))))
    assert_one_line(error, "row 1: ", files[0], "add the z coordinate")


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"centres": np.zeros((2, 3))}, "shape (3, 2) or (3, 3)"),
        ({"centres": np.zeros((3, 4))}, "shape (3, 2) or (3, 3)"),
        ({"centres": np.array([[0, 0], [np.nan, 1], [0, 0]])}, "rows [1]"),
        ({"box": 8}, "pass centres or leave box out"),
        ({"centres": np.zeros((3, 2)), "box": -1}, "positive integer"),
        ({"mode": "fft"}, "image, ps, slices"),
        ({"size": 0}, "size 0"),
        ({"batch": 0}, "batch 0"),
    ],
)
def test_bad_arguments_are_refused_before_any_file_is_read(files, arguments, fragment):
    with opens() as opened, pytest.raises(ParameterError) as error:
        make_thumbnails(files, **arguments)
    assert_one_line(error, fragment)
    assert not set(opened) & set(files)
