"""Tests of micrograph sources on real files written here with mrcfile, tifffile and Pillow: reading, finding,
metadata, power spectra, the two views, prismPYP's webp pictures and the parallel stream."""

import bz2
import gzip
import tempfile
from pathlib import Path

import mrcfile
import numpy as np
import pyarrow as pa
import pytest
import tifffile
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from embedscope.errors import InputError, ParameterError
from embedscope.sources import (
    MICROGRAPH_SUFFIXES,
    MicrographViews,
    downsample,
    find_micrographs,
    micrograph_name,
    micrograph_views,
    power_spectrum,
    read_metadata,
    read_micrograph,
    read_name_list,
    read_pixel_size,
    robust_normalise,
    spectrum_frequency,
    stream_views,
    to_uint8,
    views_from_webp,
)

QUICK = settings(max_examples=40, deadline=None)


def pixels(shape, dtype=np.float32, seed=0):
    """Seeded random pixels spanning the dtype's range (or [0, 1) for floats)."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.random(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def write_mrc(path, data, exttyp=None, records=0):
    """An MRC file of `data`; with `exttyp` (b"FEI1" / b"FEI2") an FEI extended header of `records` records."""
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
        if exttyp is not None:
            mrc.set_extended_header(np.zeros(records, dtype=mrcfile.dtypes.get_ext_header_dtype(exttyp)))
            mrc.header.exttyp = exttyp
    return path


def assert_one_line(error, *fragments):
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert str(fragment) in message, message


def touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")
    return folder


def peak_radius(spectrum):
    """The distance of the spectrum's maximum from its centre pixel (side // 2, side // 2)."""
    row, column = np.unravel_index(np.argmax(spectrum), spectrum.shape)
    return np.hypot(row - spectrum.shape[0] // 2, column - spectrum.shape[1] // 2)


def plane_wave(shape, period, direction=(0.6, 0.8)):
    """cos of the given period (in pixels) travelling along `direction` (dy, dx)."""
    rows, columns = np.indices(shape)
    return np.cos(2 * np.pi * (rows * direction[0] + columns * direction[1]) / period)


def noise(shape, scale=1.0, seed=0):
    return np.random.default_rng(seed).normal(0, scale, shape)


# --- reading ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "mode"), [(np.int8, 0), (np.int16, 1), (np.float32, 2), (np.uint16, 6),
                                             (np.float16, 12)])
def test_every_mrc_mode_round_trips(tmp_path, dtype, mode):
    image = pixels((24, 40), dtype)
    path = write_mrc(tmp_path / "a.mrc", image)
    with mrcfile.open(path, header_only=True) as mrc:
        assert int(mrc.header.mode) == mode
    result = read_micrograph(path)
    assert result.dtype == np.float32 and result.shape == (24, 40)
    np.testing.assert_array_equal(result, image.astype(np.float32))


@pytest.mark.parametrize("exttyp", [b"FEI1", b"FEI2"])
def test_fei_extended_header_reads(tmp_path, exttyp):
    image = pixels((16, 20), np.uint16)
    path = write_mrc(tmp_path / "epu.mrc", image, exttyp, records=1)
    with mrcfile.open(path, header_only=True) as mrc:
        assert mrc.header.nsymbt > 0 and bytes(mrc.header.exttyp) == exttyp
    np.testing.assert_array_equal(read_micrograph(path), image.astype(np.float32))


@pytest.mark.parametrize(("suffix", "compress"), [(".mrc.gz", gzip.compress), (".mrc.bz2", bz2.compress),
                                                  (".mrcs.gz", gzip.compress), (".MRC.GZ", gzip.compress)])
def test_compressed_mrc_reads(tmp_path, suffix, compress):
    image = pixels((30, 50), np.uint16)
    content = write_mrc(tmp_path / "plain.mrc", image).read_bytes()
    path = tmp_path / f"a{suffix}"
    path.write_bytes(compress(content))
    np.testing.assert_array_equal(read_micrograph(path), image.astype(np.float32))


def test_compressed_names_drop_the_whole_suffix():
    assert [micrograph_name(name) for name in ("a.mrc.gz", "b.MRC.BZ2", "mics/c.tiff", "d.80Apx")] == [
        "a", "b", "c", "d.80Apx"]


def test_truncated_compressed_stream_is_refused(tmp_path):
    content = write_mrc(tmp_path / "plain.mrc", pixels((64, 64), np.float32)).read_bytes()
    path = tmp_path / "a.mrc.gz"
    path.write_bytes(gzip.compress(content)[:-40])
    with pytest.raises(InputError) as error:
        read_micrograph(path)
    assert_one_line(error, path, "cannot be decompressed", "cut short")


def test_truncated_mrc_names_the_byte_counts(tmp_path):
    path = write_mrc(tmp_path / "a.mrc", pixels((64, 80), np.uint16))
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(InputError) as error:
        read_micrograph(path)
    needed = 1024 + 64 * 80 * 2
    assert_one_line(error, path, "holds 5,000 bytes", "80x64 mode-6", f"needing {needed:,}")


def test_compressed_mrc_cut_short_before_compression_names_the_byte_counts(tmp_path):
    content = write_mrc(tmp_path / "plain.mrc", pixels((64, 80), np.uint16)).read_bytes()
    path = tmp_path / "a.mrc.bz2"
    path.write_bytes(bz2.compress(content[:3000]))
    with pytest.raises(InputError) as error:
        read_micrograph(path)
    assert_one_line(error, path, "holds 3,000 bytes once decompressed", "needing 11,264")


def test_tiff_movie_is_summed_over_its_frames(tmp_path):
    frames = pixels((5, 20, 30), np.uint16)
    tifffile.imwrite(tmp_path / "movie.tif", frames)
    np.testing.assert_allclose(read_micrograph(tmp_path / "movie.tif"), frames.astype(np.float64).sum(axis=0),
                               rtol=1e-6)


@pytest.mark.parametrize("shape", [(3, 12, 14), (4, 6, 3)])  # frames 3 px wide are frames, not colour
def test_mrc_stack_of_sections_is_summed(tmp_path, shape):
    frames = pixels(shape, np.int8)
    path = write_mrc(tmp_path / "movie.mrcs", frames)
    np.testing.assert_array_equal(read_micrograph(path), frames.astype(np.float32).sum(axis=0))


def test_png_jpeg_and_webp_read(tmp_path):
    rows, columns = np.indices((40, 60))
    grey = ((rows * 3 + columns * 2) % 256).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "a.png")
    Image.fromarray(grey).save(tmp_path / "b.webp", lossless=True)
    Image.fromarray(grey).save(tmp_path / "c.jpg", quality=95)
    np.testing.assert_array_equal(read_micrograph(tmp_path / "a.png"), grey)
    np.testing.assert_allclose(read_micrograph(tmp_path / "b.webp"), grey, atol=1e-3)
    assert np.abs(read_micrograph(tmp_path / "c.jpg") - grey).mean() < 3


def test_colour_becomes_its_luminance(tmp_path):
    colour = pixels((10, 12, 3), np.uint8)
    Image.fromarray(colour).save(tmp_path / "a.png")
    expected = colour.astype(np.float64) @ [0.299, 0.587, 0.114]
    np.testing.assert_allclose(read_micrograph(tmp_path / "a.png"), expected, rtol=1e-6)


def test_unsupported_suffix_is_refused(tmp_path):
    (tmp_path / "a.gif").write_bytes(b"GIF89a")
    with pytest.raises(InputError) as error:
        read_micrograph(tmp_path / "a.gif")
    assert_one_line(error, tmp_path / "a.gif", "'.gif'", ".mrc.gz")


@QUICK
@given(body=st.binary(max_size=3000), with_header=st.booleans(),
       suffix=st.sampled_from([".mrc", ".mrcs", ".mrc.gz", ".mrc.bz2"]), packed=st.booleans())
def test_random_bytes_as_mrc_raise_only_input_error(tmp_path_factory, body, with_header, suffix, packed):
    folder = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    header = write_mrc(folder / "h.mrc", np.zeros((8, 8), np.float32)).read_bytes()[:1024]  # then random data
    content = header + body if with_header else body
    if packed and suffix.endswith(".gz"):
        content = gzip.compress(content)
    elif packed and suffix.endswith(".bz2"):
        content = bz2.compress(content)
    path = folder / f"f{suffix}"
    path.write_bytes(content)
    try:
        image = read_micrograph(path)
    except InputError as error:
        assert str(path) in str(error) and "\n" not in str(error)
    else:
        assert image.dtype == np.float32 and image.ndim == 2


# --- finding micrographs ----------------------------------------------------------------------


def test_files_keep_their_order_and_names_drop_the_whole_suffix(tmp_path):
    touch(tmp_path, "b.tif", "a.mrc.gz", "TS_1_6.80Apx.mrc")
    found = find_micrographs([tmp_path / "b.tif", tmp_path / "a.mrc.gz", str(tmp_path / "TS_1_6.80Apx.mrc")])
    assert found.names == ["b", "a", "TS_1_6.80Apx"]
    assert found.paths == [tmp_path / "b.tif", tmp_path / "a.mrc.gz", tmp_path / "TS_1_6.80Apx.mrc"]
    assert found.missing == []


def test_folder_gives_its_micrographs_in_natural_order(tmp_path):
    touch(tmp_path, "mic_10.mrc", "mic_2.mrc", "mic_1.MRC", "notes.txt", "a.star", "gain.dm4")
    (tmp_path / "sub.mrc").mkdir()
    found = find_micrographs([tmp_path])
    assert found.names == ["mic_1", "mic_2", "mic_10"]
    assert found.paths[0] == tmp_path / "mic_1.MRC"


def test_glob_selects_its_files(tmp_path):
    touch(tmp_path / "data", "x_2.mrc", "x_1.mrc", "y.tif")
    touch(tmp_path / "data" / "more", "z.mrc")
    assert find_micrographs([str(tmp_path / "data" / "*.mrc")]).names == ["x_1", "x_2"]
    assert find_micrographs([str(tmp_path / "data" / "**" / "*.mrc")]).names == ["x_1", "x_2", "z"]


def test_list_file_keeps_its_order_and_finds_names_without_suffix(tmp_path):
    touch(tmp_path / "meta", "c.mrc")
    touch(tmp_path / "meta" / "mrc", "a.tif")
    touch(tmp_path / "elsewhere", "b.mrc.gz", "a.mrc")  # the search folders come before mrc/ beside the list
    listing = tmp_path / "meta" / "all_micrographs_list.micrographs"
    listing.write_text("\ufeff# micrographs, saved with a byte-order mark\nc\n\n  b  \na\nd\n")
    found = find_micrographs([listing], search=[tmp_path / "elsewhere"])
    assert found.names == ["c", "b", "a"]
    assert found.paths == [tmp_path / "meta" / "c.mrc", tmp_path / "elsewhere" / "b.mrc.gz",
                           tmp_path / "elsewhere" / "a.mrc"]
    assert found.missing == ["d"]


def test_list_in_a_metadata_folder_finds_the_project_micrographs_beside_it(tmp_path):
    project = tmp_path / "project"
    touch(project / "micrographs", "m2.mrc", "m1.mrc")
    (project / "metadata").mkdir()
    listing = project / "metadata" / "all_micrographs_list.micrographs"
    listing.write_text("m1\nm2\n")
    assert find_micrographs([listing]).paths == [project / "micrographs" / "m1.mrc", project / "micrographs" / "m2.mrc"]


def test_list_entries_with_suffix_or_folder_are_paths(tmp_path):
    touch(tmp_path / "mics", "a.tiff", "b.mrc")
    listing = tmp_path / "list.txt"
    listing.write_text(f"mics/b.mrc\n{tmp_path / 'mics' / 'a.tiff'}\nmics/b.tif\n")
    found = find_micrographs(listing)
    assert found.names == ["b", "a"] and found.missing == ["b"]
    assert read_name_list(listing) == ["b", "a", "b"]


def test_two_files_with_one_name_are_refused(tmp_path):
    touch(tmp_path, "a.mrc", "a.tif")
    with pytest.raises(InputError) as error:
        find_micrographs([tmp_path])
    assert_one_line(error, "'a'", tmp_path / "a.mrc", tmp_path / "a.tif")


def test_the_same_file_twice_is_refused(tmp_path):
    touch(tmp_path, "a.mrc")
    with pytest.raises(InputError) as error:
        find_micrographs([tmp_path / "a.mrc", tmp_path])
    assert_one_line(error, "'a'")


def test_empty_folder_is_one_line(tmp_path):
    touch(tmp_path / "empty", "readme.txt")
    with pytest.raises(InputError) as error:
        find_micrographs([tmp_path / "empty"])
    assert_one_line(error, tmp_path / "empty", "no micrograph files", ".mrc", ".tif")


@pytest.mark.parametrize("given", ["nothing_here", "nothing_*.mrc"])
def test_missing_input_or_empty_glob_is_one_line(tmp_path, given):
    with pytest.raises(InputError) as error:
        find_micrographs([tmp_path / given])
    assert_one_line(error, tmp_path / given)


def test_list_with_nothing_found_is_refused(tmp_path):
    (tmp_path / "list.txt").write_text("a\nb\n")
    with pytest.raises(InputError) as error:
        find_micrographs([tmp_path / "list.txt"])
    assert_one_line(error, tmp_path / "list.txt", "2 names")


NAMES = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,11}", fullmatch=True).filter(
    lambda name: micrograph_name(name) == name)  # a name ending in ".tif" would be a path


@QUICK
@given(names=st.lists(NAMES, min_size=1, max_size=12, unique=True), data=st.data())
def test_any_list_keeps_order_and_reports_the_rest(tmp_path_factory, names, data):
    folder = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    present = [data.draw(st.booleans()) for _ in names]
    assume(any(present))
    for name, here in zip(names, present):
        if here:
            (folder / f"{name}{data.draw(st.sampled_from(MICROGRAPH_SUFFIXES))}").write_bytes(b"")
    lines = []
    for name in names:
        lines += data.draw(st.lists(st.sampled_from(["", "   ", "# a comment", "#"]), max_size=2))
        lines.append(data.draw(st.sampled_from(["", " ", "\t"])) + name)
    listing = folder / "all.micrographs"
    listing.write_text("\n".join(lines))
    found = find_micrographs([listing])
    assert found.names == [name for name, here in zip(names, present) if here]
    assert found.missing == [name for name, here in zip(names, present) if not here]
    assert [micrograph_name(path) for path in found.paths] == found.names
    assert read_name_list(listing) == names


# --- metadata ---------------------------------------------------------------------------------


def write_prismpyp_metadata(folder):
    folder.mkdir()
    (folder / "micrograph_metadata.csv").write_text(
        "micrograph_name,rel_ice_thickness,ctf_fit,est_resolution,avg_motion,num_particles,mean_defocus\n"
        "m1,1.02,0.91,3.1,0.8,120,15000.5\n"
        "m2,1.10,0.45,6.2,1.9,80,21000.0\n"
        "m3,0.98,,4.0,1.1,95,18000.0\n")
    (folder / "pixel_size.txt").write_text("1.08\n")
    (folder / "all_micrographs_list.micrographs").write_text("m1\nm2\nm3\n")
    return folder


def test_prismpyp_metadata_folder_joins_in_the_requested_order(tmp_path):
    metadata = read_metadata(["m3", "mX", "m1"], write_prismpyp_metadata(tmp_path / "metadata"))
    table = metadata.table
    assert table.column_names == ["micrograph_name", "rel_ice_thickness", "ctf_fit", "est_resolution", "avg_motion",
                                  "num_particles", "mean_defocus"]
    assert table["micrograph_name"].to_pylist() == ["m3", "mX", "m1"]
    assert table["num_particles"].type == pa.int64() and table["ctf_fit"].type == pa.float64()
    assert table["num_particles"].to_pylist() == [95, None, 120]
    assert table["ctf_fit"].to_pylist() == [None, None, 0.91]
    assert metadata.missing == ["mX"] and metadata.unused == 1 and metadata.pixel_size == 1.08


def test_generic_csv_joins_on_another_key_after_stripping_folders_and_suffixes(tmp_path):
    csv = tmp_path / "ctf.csv"
    csv.write_text("rlnMicrographName,rlnDefocusU,rlnCtfMaxResolution,note\n"
                   "MotionCorr/job003/mics/001.mrc,12000,3.5,good\nMotionCorr/job003/mics/002.mrc,15000,4.5,ice\n")
    metadata = read_metadata(["002", "001"], csv)
    assert metadata.table["micrograph_name"].to_pylist() == ["002", "001"]
    assert metadata.table["rlnDefocusU"].to_pylist() == [15000, 12000]
    assert metadata.table["note"].to_pylist() == ["ice", "good"] and metadata.table["note"].type == pa.string()
    assert metadata.missing == [] and metadata.unused == 0 and metadata.pixel_size is None


def test_key_column_can_be_named(tmp_path):
    csv = tmp_path / "scores.csv"
    csv.write_text("micrograph_name,file,score\nwrong,a.tif,1.5\nalso_wrong,b.tif,2.5\n")
    metadata = read_metadata(["b", "a"], csv, on="file")
    assert metadata.table.column_names == ["micrograph_name", "score"]
    assert metadata.table["score"].to_pylist() == [2.5, 1.5]


def test_bad_key_column_names_the_columns_there_are(tmp_path):
    csv = tmp_path / "scores.csv"
    csv.write_text("file,score\na.tif,1.5\n")
    with pytest.raises(ParameterError) as error:
        read_metadata(["a"], csv, on="micrograph")
    assert_one_line(error, csv, "'micrograph'", "file, score")
    with pytest.raises(ParameterError) as error:
        read_metadata(["a"], csv)
    assert_one_line(error, csv, "file, score", "micrograph_name")


def test_duplicate_metadata_rows_are_refused(tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text("name,x\na.mrc,1\nmics/a.mrc,2\n")
    with pytest.raises(InputError) as error:
        read_metadata(["a"], csv)
    assert_one_line(error, csv, "rows 2 and 3", "'a'")


def test_no_source_gives_the_names_alone(tmp_path):
    metadata = read_metadata(["a", "b"], None)
    assert metadata.table.column_names == ["micrograph_name"] and metadata.missing == []


def test_pixel_size_file(tmp_path):
    assert read_pixel_size(tmp_path) is None
    (tmp_path / "pixel_size.txt").write_text(" 0.834 \n")
    assert read_pixel_size(tmp_path) == 0.834 == read_pixel_size(tmp_path / "pixel_size.txt")
    (tmp_path / "pixel_size.txt").write_text("angstrom\n")
    with pytest.raises(InputError) as error:
        read_pixel_size(tmp_path)
    assert_one_line(error, tmp_path / "pixel_size.txt", "'angstrom'")


# --- power spectrum ---------------------------------------------------------------------------


@pytest.mark.parametrize("period", [8.0, 12.8, 32.0])
@pytest.mark.parametrize("size", [None, 200, 700])
def test_unbanded_spectrum_peaks_at_side_over_period(period, size):
    image = plane_wave((1024, 1100), period) + noise((1024, 1100))
    spectrum = power_spectrum(image, size=size)
    side = size or 512
    assert spectrum.shape == (side, side) and spectrum.dtype == np.float32
    assert abs(peak_radius(spectrum) - side / period) <= 1
    assert spectrum_frequency(side / period, side) == pytest.approx(1 / period)


@pytest.mark.parametrize(("pixel_size", "period", "size"), [(1.0, 6.0, None), (0.83, 9.0, 512), (0.5, 5.0, 256),
                                                            (2.5, 8.0, None), (1.3, 20.0, 300), (1.0, 5.0, 200)])
def test_banded_spectrum_peaks_at_the_frequency_of_the_period(pixel_size, period, size):
    image = plane_wave((1500, 1200), period / pixel_size) + noise((1500, 1200))
    spectrum = power_spectrum(image, pixel_size=pixel_size, size=size)
    side = spectrum.shape[0]
    assert size is None or side == size
    step = spectrum_frequency(1, side, pixel_size)
    assert abs(spectrum_frequency(peak_radius(spectrum), side, pixel_size) - 1 / period) <= 1.5 * step
    assert spectrum_frequency(side / 2, side, pixel_size) == pytest.approx(min(1 / 4, 1 / (2 * pixel_size)))


def test_low_frequencies_are_flattened_so_the_band_sets_the_contrast():
    strong_ice_gradient = 20 * plane_wave((1024, 1024), 100.0)  # 100 Å at 1 Å per pixel: below the band
    image = strong_ice_gradient + plane_wave((1024, 1024), 7.0) + noise((1024, 1024))
    spectrum = power_spectrum(image, pixel_size=1.0)
    assert spectrum_frequency(peak_radius(spectrum), 512, 1.0) == pytest.approx(1 / 7, abs=0.002)
    inner = spectrum_frequency(np.hypot(*np.indices((512, 512)) - 256), 512, 1.0) < 0.99 / 30
    assert np.ptp(spectrum[inner]) == 0


@pytest.mark.parametrize("options", [{}, {"pixel_size": 0.83, "size": 512}, {"tile": 200}])
def test_spectrum_is_centro_symmetric(options):
    spectrum = power_spectrum(noise((900, 1000)) + plane_wave((900, 1000), 9.0), **options)
    inner = spectrum[1:, 1:]  # row and column 0 hold the Nyquist frequency, which has no mirror image
    np.testing.assert_allclose(inner, inner[::-1, ::-1], atol=1e-3)


def test_overlapping_tiles_give_a_smoother_spectrum_of_white_noise():
    white = noise((1024, 1024))
    smooth, rough = (power_spectrum(white, tile=128, overlap=overlap)[70:] for overlap in (0.5, 0.0))
    assert smooth.std() < 0.8 * rough.std()


@pytest.mark.parametrize("options", [{"overlap": 1.0}, {"tile": 0}, {"pixel_size": -1.0}, {"pixel_size": 1.0,
                         "band": (4.0, 30.0)}, {"pixel_size": 20.0}, {"size": 2.5}])
def test_impossible_spectrum_options_are_refused(options):
    with pytest.raises(ParameterError) as error:
        power_spectrum(noise((64, 64)), **options)
    assert_one_line(error)


def test_power_spectrum_needs_a_plane():
    with pytest.raises(ParameterError) as error:
        power_spectrum(noise((3, 8, 8)))
    assert_one_line(error, "2-D image")


# --- views ------------------------------------------------------------------------------------


def test_views_of_a_micrograph(tmp_path):
    image = 100 + plane_wave((1000, 700), 6.0) + noise((1000, 700), 2)
    views = micrograph_views(image.astype(np.float32), size=128, pixel_size=1.0)
    assert isinstance(views, MicrographViews) and views.shape == (1000, 700) and not views.flat
    for view in (views.image, views.spectrum):
        assert view.shape == (128, 128) and view.dtype == np.uint8 and view.min() == 0 and view.max() == 255
    radii = np.rint(np.hypot(*np.indices((128, 128)) - 64)).astype(int).ravel()
    profile = np.bincount(radii, views.spectrum.ravel()) / np.bincount(radii)  # the view saturates: average rings
    assert spectrum_frequency(np.argmax(profile[:64]), 128, 1.0) == pytest.approx(1 / 6, abs=0.006)


def test_zero_variance_micrograph_is_flat_and_mid_grey():
    views = micrograph_views(np.full((300, 400), 7, np.uint16), size=64, pixel_size=1.0)
    assert views.flat and views.shape == (300, 400)
    assert (views.image == 128).all() and (views.spectrum == 128).all()
    assert np.isfinite(power_spectrum(np.zeros((64, 64)))).all()


def test_dead_pixels_do_not_poison_the_views():
    image = noise((256, 256)).astype(np.float32)
    image[10:20, 30:40] = np.nan
    views = micrograph_views(image, size=64)
    assert not views.flat and views.image.std() > 0 and views.spectrum.std() > 0


def test_downsampling_keeps_the_aspect_and_pads_with_the_mean():
    image = np.zeros((200, 100), np.float32)
    image[:, 50:] = 1
    small = downsample(image, 50)
    assert small.shape == (50, 50) and small.dtype == np.float32
    assert np.allclose(small[:, :12], 0.5, atol=0.01) and np.allclose(small[:, 38:], 0.5, atol=0.01)  # the mean
    assert small[25, 14] < 0.05 and small[25, 36] > 0.95  # the content, 25 px wide, centred


def test_downsampling_is_anti_aliased():
    fine = plane_wave((1024, 1024), 1 / 0.45, direction=(0, 1)).astype(np.float32)  # 0.45 cycles per pixel
    assert downsample(fine, 128).std() < 0.2 * fine.std()  # plain decimation would keep it as a coarse wave


def test_robust_normalise_maps_percentiles_to_the_unit_range():
    image = np.arange(1000, dtype=np.float32)
    image[0], image[-1] = -1e6, 1e6  # a dead and a hot pixel
    result = robust_normalise(image)
    assert result.dtype == np.float32 and result.min() == 0 and result.max() == 1
    assert result[500] == pytest.approx(0.5, abs=0.01)
    assert (robust_normalise(np.ones((4, 4))) == 0.5).all()


# --- prismPYP webp pictures -------------------------------------------------------------------


def test_views_from_webp_mirror_the_top_half_of_the_ctf_fit(tmp_path):
    webp = tmp_path / "webp"
    webp.mkdir()
    rows, columns = np.indices((64, 64))
    Image.fromarray(((rows * 4 + columns) % 256).astype(np.uint8)).save(webp / "m1.webp", lossless=True)
    top = ((np.hypot(rows[:32] - 32, columns[:32] - 32) * 7) % 256).astype(np.uint8)
    fit = np.concatenate([top, pixels((32, 64), np.uint8)])  # the bottom half (the CTF model) is ignored
    Image.fromarray(fit).save(webp / "m1_ctffit.webp", lossless=True)
    views = views_from_webp(webp, "m1", size=64)
    expected = to_uint8(np.concatenate([top, top[::-1, ::-1]]).astype(np.float32))
    assert np.abs(views.spectrum.astype(int) - expected).max() <= 1
    np.testing.assert_array_equal(views.spectrum, views.spectrum[::-1, ::-1])
    assert views.shape == (64, 64) and views.image.shape == (64, 64) and not views.flat


def test_missing_webp_is_named(tmp_path):
    (tmp_path / "m1.webp").write_bytes(b"")
    with pytest.raises(InputError) as error:
        views_from_webp(tmp_path, "m1")
    assert_one_line(error, tmp_path / "m1_ctffit.webp")


# --- the parallel stream ----------------------------------------------------------------------


def test_stream_keeps_order_and_reports_a_corrupt_file_in_place(tmp_path):
    paths = []
    for index in range(5):
        path = tmp_path / f"m{index}.mrc"
        if index == 2:
            path.write_bytes(b"not an MRC file at all" * 10)
        else:
            write_mrc(path, (plane_wave((256, 256), 4 + index) + noise((256, 256), seed=index)).astype(np.float32))
        paths.append(path)
    streamed = list(stream_views(paths, size=64, pixel_size=1.0, workers=2))
    assert [index for index, _ in streamed] == [0, 1, 2, 3, 4]
    assert isinstance(streamed[2][1], InputError) and str(paths[2]) in str(streamed[2][1])
    for index, views in streamed[:2] + streamed[3:]:
        expected = micrograph_views(read_micrograph(paths[index]), size=64, pixel_size=1.0)
        np.testing.assert_array_equal(views.image, expected.image)
        np.testing.assert_array_equal(views.spectrum, expected.spectrum)
    in_process = list(stream_views(paths, size=64, pixel_size=1.0, workers=0))
    assert [type(views) for _, views in in_process] == [type(views) for _, views in streamed]


def test_stream_refuses_bad_workers():
    with pytest.raises(ParameterError) as error:
        stream_views([], workers=-1)
    assert_one_line(error, "workers")


def test_the_pixel_size_comes_from_an_mrc_header_when_set(tmp_path: Path) -> None:
    from embedscope.sources.micrographs import header_pixel_size

    with mrcfile.new(tmp_path / "set.mrc") as mrc:
        mrc.set_data(np.zeros((8, 8), np.float32))
        mrc.voxel_size = 1.34
    with mrcfile.new(tmp_path / "unset.mrc") as mrc:
        mrc.set_data(np.zeros((8, 8), np.float32))
    (tmp_path / "picture.png").write_bytes(b"")
    assert header_pixel_size(tmp_path / "set.mrc") == 1.34
    assert header_pixel_size(tmp_path / "unset.mrc") is None
    assert header_pixel_size(tmp_path / "picture.png") is None
    (tmp_path / "broken.mrc").write_bytes(b"\0" * 10)
    assert header_pixel_size(tmp_path / "broken.mrc") is None
