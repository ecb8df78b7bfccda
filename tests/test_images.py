"""Tests of reading images, micrographs and volumes from files written here with Pillow, tifffile and mrcfile."""

import struct
import tempfile
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from embedscope.errors import InputError
from embedscope.formats.images import open_image, read_image

QUICK = settings(max_examples=40, deadline=None)
MRC_SUFFIXES = [".mrc", ".mrcs", ".rec", ".st", ".map"]
SUFFIXES = [".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", *MRC_SUFFIXES]


def pixels(shape, dtype=np.uint8, seed=0):
    """Seeded random pixels spanning the dtype's range (or [0, 1) for floats)."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.random(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def smooth(shape):
    """A smooth uint8 gradient that lossy codecs keep close."""
    rows, cols = np.indices(shape[:2])
    grey = ((rows * 3 + cols * 2) % 256).astype(np.uint8)
    return np.stack([grey, 255 - grey, grey // 2], axis=-1) if len(shape) == 3 else grey


def write_mrc(path, data):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
    return path


def write_sample(path):
    """A small valid file of the kind its suffix names."""
    if path.suffix in MRC_SUFFIXES:
        write_mrc(path, pixels((3, 6, 8), np.float32))
    elif path.suffix in (".tif", ".tiff"):
        tifffile.imwrite(path, pixels((6, 8), np.uint16))
    else:
        Image.fromarray(smooth((6, 8, 3))).save(path)
    return path


def assert_one_line(error, path, *fragments):
    message = str(error.value)
    assert "\n" not in message
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message


# --- Pillow formats ----------------------------------------------------------------------------


def test_grey_png_round_trips(tmp_path):
    image = pixels((20, 30))
    Image.fromarray(image).save(tmp_path / "a.png")
    result = read_image(tmp_path / "a.png")
    assert result.dtype == np.float32 and result.shape == (20, 30)
    np.testing.assert_array_equal(result, image)


def test_sixteen_bit_png_keeps_its_values(tmp_path):
    image = pixels((12, 10), np.uint16)
    Image.fromarray(image).save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), image)


def test_rgb_png_round_trips(tmp_path):
    image = pixels((9, 7, 3))
    Image.fromarray(image).save(tmp_path / "a.png")
    result = read_image(tmp_path / "a.png")
    assert result.shape == (9, 7, 3)
    np.testing.assert_array_equal(result, image)


def test_rgba_drops_alpha(tmp_path):
    image = pixels((9, 7, 4))
    Image.fromarray(image, "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), image[..., :3])


def test_grey_with_alpha_reads_as_grey(tmp_path):
    image = pixels((9, 7, 2))
    Image.fromarray(image, "LA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), image[..., 0])


@pytest.mark.parametrize("name", ["a.png", "a.tif"])
def test_palette_images_expand_to_their_colours(tmp_path, name):
    palette = pixels((256, 3), seed=1)
    indices = pixels((8, 5), seed=2)
    image = Image.fromarray(indices)
    image.putpalette(palette.ravel().tolist())
    image.save(tmp_path / name)
    np.testing.assert_array_equal(read_image(tmp_path / name), palette[indices])


def test_lossless_webp_round_trips(tmp_path):
    image = pixels((16, 12, 3))
    Image.fromarray(image).save(tmp_path / "a.webp", lossless=True)
    np.testing.assert_array_equal(read_image(tmp_path / "a.webp"), image)


@pytest.mark.parametrize("shape", [(32, 48), (32, 48, 3)])
@pytest.mark.parametrize("suffix", [".jpg", ".jpeg"])
def test_jpeg_reads_close_to_what_was_written(tmp_path, shape, suffix):
    image = smooth(shape)
    Image.fromarray(image).save(tmp_path / f"a{suffix}", quality=95)
    result = read_image(tmp_path / f"a{suffix}")
    assert result.shape == shape
    assert np.abs(result - image).mean() < 6


# --- TIFF --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64])
def test_tiff_keeps_its_dtype_and_values(tmp_path, dtype):
    image = pixels((10, 14), dtype)
    tifffile.imwrite(tmp_path / "a.tif", image)
    assert open_image(tmp_path / "a.tif").dtype == dtype
    result = read_image(tmp_path / "a.tif")
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, image.astype(np.float32))


def test_tiff_stack_is_a_memory_mapped_volume(tmp_path):
    stack = pixels((5, 10, 14), np.float32)
    tifffile.imwrite(tmp_path / "a.tiff", stack)
    mapped = open_image(tmp_path / "a.tiff")
    assert isinstance(mapped, np.memmap) and mapped.shape == (5, 10, 14)
    np.testing.assert_array_equal(read_image(tmp_path / "a.tiff"), stack)


def test_compressed_tiff_stack_is_decoded(tmp_path):
    stack = pixels((4, 10, 14), np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", stack, compression="zlib", photometric="minisblack")
    np.testing.assert_array_equal(read_image(tmp_path / "a.tif"), stack)


def test_pages_written_one_by_one_form_a_stack(tmp_path):
    pages = [Image.fromarray(pixels((6, 9), seed=seed)) for seed in range(3)]
    pages[0].save(tmp_path / "a.tif", save_all=True, append_images=pages[1:])
    np.testing.assert_array_equal(read_image(tmp_path / "a.tif"), np.stack([np.asarray(page) for page in pages]))


@pytest.mark.parametrize("planar", ["contig", "separate"])
def test_rgb_tiff_is_height_width_channels(tmp_path, planar):
    image = pixels((10, 14, 3))
    stored = image if planar == "contig" else np.moveaxis(image, -1, 0)
    tifffile.imwrite(tmp_path / "a.tif", stored, photometric="rgb", planarconfig=planar)
    np.testing.assert_array_equal(read_image(tmp_path / "a.tif"), image)


def test_rgba_tiff_drops_alpha(tmp_path):
    image = pixels((10, 14, 4))
    tifffile.imwrite(tmp_path / "a.tif", image, photometric="rgb", extrasamples=["unassalpha"])
    np.testing.assert_array_equal(read_image(tmp_path / "a.tif"), image[..., :3])


def test_tiff_in_a_codec_tifffile_lacks_is_read_by_pillow(tmp_path):
    image = pixels((10, 14))
    Image.fromarray(image).save(tmp_path / "a.tif", compression="tiff_lzw")
    np.testing.assert_array_equal(read_image(tmp_path / "a.tif"), image)


def test_tiff_declaring_more_pixels_than_it_can_hold_is_refused_before_allocating(tmp_path):
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, np.zeros((64, 64), np.uint8), compression="zlib")
    with tifffile.TiffFile(path) as tiff:
        offsets = [tiff.pages[0].tags[name].valueoffset for name in ("ImageWidth", "ImageLength")]
    content = bytearray(path.read_bytes())
    for offset in offsets:
        struct.pack_into("<I", content, offset, 60_000)  # 3.6 GB of pixels in a file of a few hundred bytes
    path.write_bytes(bytes(content))
    with pytest.raises(InputError) as error:
        read_image(path)
    assert_one_line(error, path, "declares 60000x60000 pixels")


@pytest.mark.parametrize("shape", [(2, 3, 6, 8), (2, 6, 8, 3)])
def test_tiff_with_too_many_axes_is_refused(tmp_path, shape):
    photometric = "rgb" if shape[-1] == 3 else "minisblack"
    tifffile.imwrite(tmp_path / "a.tif", pixels(shape), photometric=photometric)
    with pytest.raises(InputError) as error:
        read_image(tmp_path / "a.tif")
    assert_one_line(error, tmp_path / "a.tif", "one image or stack")


# --- MRC ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", MRC_SUFFIXES)
def test_mrc_volume_is_memory_mapped_in_z_y_x_order(tmp_path, suffix):
    volume = pixels((4, 6, 8), np.float32)
    path = write_mrc(tmp_path / f"v{suffix}", volume)
    mapped = open_image(path)
    assert isinstance(mapped, np.memmap) and mapped.shape == (4, 6, 8)
    assert mapped[2, 3, 5] == volume[2, 3, 5]  # z, y, x
    np.testing.assert_array_equal(read_image(path), volume)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.uint16, np.float16, np.float32])
def test_mrc_modes_keep_their_values(tmp_path, dtype):
    volume = pixels((3, 5, 7), dtype)
    path = write_mrc(tmp_path / "v.mrc", volume)
    assert open_image(path).dtype == dtype
    np.testing.assert_array_equal(read_image(path), volume.astype(np.float32))


@pytest.mark.parametrize("shape", [(6, 8), (1, 6, 8)])
def test_single_section_mrc_is_two_dimensional(tmp_path, shape):
    image = pixels(shape, np.float32)
    result = read_image(write_mrc(tmp_path / "a.mrc", image))
    assert result.shape == (6, 8)
    np.testing.assert_array_equal(result, image.reshape(6, 8))


def test_mrc_header_of_an_older_tool_is_tolerated(tmp_path):
    volume = pixels((3, 5, 7), np.float32)
    path = write_mrc(tmp_path / "v.mrc", volume)
    content = bytearray(path.read_bytes())
    content[208:212] = b"\x00\x00\x00\x00"  # no "MAP " id, as some old programs write
    path.write_bytes(bytes(content))
    np.testing.assert_array_equal(read_image(path), volume)


def test_truncated_mrc_is_refused(tmp_path):
    path = write_mrc(tmp_path / "v.mrc", pixels((3, 5, 7), np.float32))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(InputError) as error:
        open_image(path)
    assert_one_line(error, path, "cannot be read as an MRC file")


def test_complex_mrc_is_refused(tmp_path):
    path = write_mrc(tmp_path / "v.mrc", pixels((3, 5, 7), np.float32).astype(np.complex64))
    with pytest.raises(InputError) as error:
        read_image(path)
    assert_one_line(error, path, "complex")


def test_stack_of_volumes_is_refused(tmp_path):
    path = write_mrc(tmp_path / "v.mrc", pixels((2, 3, 5, 7), np.float32))
    with pytest.raises(InputError) as error:
        read_image(path)
    assert_one_line(error, path, "stack of 2 volumes")


# --- errors ------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as error:
        read_image(tmp_path / "nothing.png")
    assert_one_line(error, tmp_path / "nothing.png", "no such file")


def test_folder(tmp_path):
    (tmp_path / "folder.mrc").mkdir()
    with pytest.raises(InputError) as error:
        read_image(tmp_path / "folder.mrc")
    assert_one_line(error, tmp_path / "folder.mrc", "directory")


def test_unsupported_suffix_lists_the_supported_ones(tmp_path):
    (tmp_path / "a.gif").write_bytes(b"GIF89a")
    with pytest.raises(InputError) as error:
        read_image(tmp_path / "a.gif")
    assert_one_line(error, tmp_path / "a.gif", "'.gif'", *SUFFIXES)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_empty_file_cannot_be_decoded(tmp_path, suffix):
    (tmp_path / f"a{suffix}").write_bytes(b"")
    with pytest.raises(InputError) as error:
        read_image(tmp_path / f"a{suffix}")
    assert_one_line(error, tmp_path / f"a{suffix}", "cannot be read")


def test_png_cut_short_cannot_be_decoded(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(pixels((64, 64))).save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError) as error:
        read_image(path)
    assert_one_line(error, path, "cannot be read")


# --- fuzzing: damaged or foreign bytes only ever raise InputError ---------------------------


MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"RIFF\x20\x00\x00\x00WEBPVP8L", b"II*\x00", b"MM\x00*"]


def read_or_refuse(path):
    """Read `path` whole; a refusal must be one line naming the file."""
    try:
        image = read_image(path)
    except InputError as error:
        assert str(path) in str(error) and "\n" not in str(error)
    else:
        assert image.dtype == np.float32 and image.ndim in (2, 3)


@QUICK
@given(head=st.sampled_from(MAGIC), body=st.binary(max_size=1200), suffix=st.sampled_from(SUFFIXES))
def test_arbitrary_bytes_raise_only_input_error(tmp_path_factory, head, body, suffix):
    path = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp())) / f"f{suffix}"
    path.write_bytes(head + body)
    read_or_refuse(path)


@settings(max_examples=150, deadline=None)
@given(suffix=st.sampled_from(SUFFIXES), data=st.data())
def test_damaged_files_raise_only_input_error(tmp_path_factory, suffix, data):
    path = write_sample(Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp())) / f"f{suffix}")
    content = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(0, 3))):
        content[data.draw(st.integers(0, len(content) - 1))] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(0, len(content)))
    path.write_bytes(bytes(content[:cut] if data.draw(st.booleans()) else content))
    read_or_refuse(path)
