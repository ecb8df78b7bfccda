"""prismPYP's files (data_for_export.parquet, selections, embeddings.pth) and its `intersect` command."""

from __future__ import annotations

import os
import string
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.preprocessing import normalize

from embedscope.atlas import Atlas
from embedscope.errors import InputError, ParameterError
from embedscope.formats.prismpyp import (
    micrograph_name,
    read_embeddings_pth,
    read_export_parquet,
    write_export_parquet,
)
from embedscope.pipeline.exporting import export_rows
from embedscope.pipeline.prismpyp_intersect import intersect_selections
from embedscope.progress import Reporter

from conftest import save_as_if_on_gpu

METADATA_HEADER = "micrograph_name,rel_ice_thickness,ctf_fit,est_resolution,avg_motion,num_particles,mean_defocus\n"
EXPORT_COLUMNS = ["cluster_id", "umap_fit_x", "umap_fit_y", "image_thumbnails", "micrograph_name"]
NAMES = st.lists(st.text(string.ascii_letters + string.digits + "_-.", min_size=1, max_size=10),
                 min_size=1, max_size=12, unique=True).map(lambda stems: [f"mg_{stem}" for stem in stems])


class NoteTaker(Reporter):
    """Keeps the notes a step gives."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)


def metadata_csv(path, names, rng):
    """`micrograph_metadata.csv` as prismPYP's metadata commands write it, one row per name."""
    rows = [f"{name},{rng.uniform(0.9, 1.2):.4f},{rng.uniform(2, 9):.3f},{rng.uniform(2, 6):.2f},"
            f"{rng.uniform(0, 3):.3f},{rng.integers(0, 500)},{rng.uniform(8000, 25000):.1f}\n" for name in names]
    path.write_text(METADATA_HEADER + "".join(rows))
    return path


def read_metadata(path):
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types={"micrograph_name": pa.string()}))


def prismpyp_export(path, cluster_id, umap_fit, names, metadata_path, embeddings):
    """eval2d's export, line for line: the dict of columns, the inner merge, then the normalised embeddings."""
    data_for_export = {"cluster_id": cluster_id, "umap_fit_x": umap_fit[:, 0], "umap_fit_y": umap_fit[:, 1],
                       "image_thumbnails": [], "micrograph_name": []}
    for name in names:
        data_for_export["image_thumbnails"].append(name)
        data_for_export["micrograph_name"].append(os.path.basename(name))
    frame = pd.DataFrame(data_for_export).merge(pd.read_csv(metadata_path), on="micrograph_name", how="inner")
    frame["embeddings"] = normalize(embeddings, axis=1).tolist()
    frame.to_parquet(path, compression="gzip")


def export_inputs(count, dim, seed):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 4, count).astype(np.int64), rng.normal(size=(count, 2)).astype(np.float32),
            rng.normal(size=(count, dim)).astype(np.float32))


# ----------------------------------------------------------------------------- data_for_export.parquet
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=NAMES, dim=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_export_reads_in_pandas_exactly_as_prismpyps_own(tmp_path, names, dim, seed):
    labels, umap_fit, embeddings = export_inputs(len(names), dim, seed)
    rng = np.random.default_rng(seed)
    listed = list(rng.permutation(names + ["mg_not_in_the_list"]))  # metadata in its own order, with extra rows
    metadata = metadata_csv(tmp_path / "micrograph_metadata.csv", listed, rng)
    ours, theirs = tmp_path / "ours.parquet", tmp_path / "theirs.parquet"
    write_export_parquet(ours, cluster_id=labels, umap_xy=umap_fit, thumbnails=names, names=names,
                         metadata=read_metadata(metadata), embeddings=embeddings)
    prismpyp_export(theirs, labels, umap_fit, names, metadata, embeddings)
    expected, written = pd.read_parquet(theirs), pd.read_parquet(ours)
    pd.testing.assert_frame_equal(written, expected, check_exact=True)
    assert list(written.columns) == EXPORT_COLUMNS + METADATA_HEADER.strip().split(",")[1:] + ["embeddings"]
    assert list(written["micrograph_name"]) == names
    assert written["cluster_id"].dtype == np.int64 and written["umap_fit_x"].dtype == np.float32


def test_export_is_gzip_with_embeddings_as_lists_of_unit_length(tmp_path):
    labels, umap_fit, embeddings = export_inputs(3, 5, seed=1)
    embeddings[1] = 0  # a zero vector stays zero, as sklearn's normalize leaves it
    path = write_export_parquet(tmp_path / "data_for_export.parquet", cluster_id=labels, umap_xy=umap_fit,
                                thumbnails=["a", "b", "c"], names=["a", "b", "c"], metadata=None,
                                embeddings=embeddings)
    row_group = pq.ParquetFile(path).metadata.row_group(0)
    assert {row_group.column(index).compression for index in range(row_group.num_columns)} == {"GZIP"}
    frame = pd.read_parquet(path)
    assert list(frame.columns) == EXPORT_COLUMNS + ["embeddings"]
    vectors = np.stack(frame["embeddings"].to_list())
    assert vectors.dtype == np.float64 and vectors.shape == (3, 5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), [1, 0, 1], rtol=1e-6)
    assert not list(tmp_path.glob(".*"))


def test_micrographs_without_metadata_are_left_out_with_their_own_embeddings(tmp_path):
    labels, umap_fit, embeddings = export_inputs(4, 3, seed=2)
    names = ["m0", "m1", "m2", "m3"]
    metadata = read_metadata(metadata_csv(tmp_path / "meta.csv", ["m3", "m1"], np.random.default_rng(0)))
    path = write_export_parquet(tmp_path / "out.parquet", cluster_id=labels, umap_xy=umap_fit, thumbnails=names,
                                names=names, metadata=metadata, embeddings=embeddings)
    frame = pd.read_parquet(path)
    assert list(frame["micrograph_name"]) == ["m1", "m3"]
    np.testing.assert_array_equal(frame["cluster_id"], labels[[1, 3]])
    np.testing.assert_array_equal(np.stack(frame["embeddings"].to_list()), normalize(embeddings)[[1, 3]])


@pytest.mark.parametrize("change, message", [
    (dict(names=["a", "b"]), "one row per micrograph"),
    (dict(cluster_id=np.array([0.5, 1, 2])), "integer labels"),
    (dict(embeddings=np.full((3, 2), np.nan)), "NaN or infinite"),
    (dict(metadata=pa.table({"name": ["a"]})), "no micrograph_name column"),
    (dict(metadata=pa.table({"micrograph_name": ["a", "a"], "x": [1, 2]})), "several rows for micrograph(s) a"),
    (dict(metadata=pa.table({"micrograph_name": ["a"], "cluster_id": [1]})), "clash"),
])
def test_export_refuses_inconsistent_inputs_and_writes_nothing(tmp_path, change, message):
    labels, umap_fit, embeddings = export_inputs(3, 2, seed=3)
    arguments = dict(cluster_id=labels, umap_xy=umap_fit, thumbnails=["a", "b", "c"], names=["a", "b", "c"],
                     metadata=None, embeddings=embeddings) | change
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        write_export_parquet(tmp_path / "out.parquet", **arguments)
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- reading selections
def test_a_file_prismpyp_wrote_reads_with_its_names_and_clusters(tmp_path):
    labels, umap_fit, embeddings = export_inputs(5, 4, seed=4)
    names = [f"mg_{index}" for index in range(5)]
    metadata = metadata_csv(tmp_path / "meta.csv", names, np.random.default_rng(1))
    prismpyp_export(tmp_path / "data_for_export.parquet", labels, umap_fit, names, metadata, embeddings)
    table = read_export_parquet(tmp_path / "data_for_export.parquet")
    assert table.names == names and table.cluster_column == "cluster_id"
    np.testing.assert_array_equal(table.cluster_id, labels)
    assert table.table.column_names[:5] == EXPORT_COLUMNS and table.table.column_names[-1] == "embeddings"


def test_a_filtered_pandas_frame_with_its_index_column_reads(tmp_path):
    frame = pd.DataFrame({"cluster_id": [3, 1, 3, 2], "micrograph_name": ["a", "b", "c", "d"]})
    good = frame[frame["cluster_id"] != 1]  # a selection keeps the original index: __index_level_0__ [0, 2, 3]
    good.to_parquet(tmp_path / "good.parquet", compression="gzip")
    assert "__index_level_0__" in pq.read_schema(tmp_path / "good.parquet").names
    table = read_export_parquet(tmp_path / "good.parquet")
    assert table.names == ["a", "c", "d"] and table.table.column_names == ["cluster_id", "micrograph_name"]
    np.testing.assert_array_equal(table.cluster_id, [3, 3, 2])


@pytest.mark.parametrize("column, values, names, clusters", [
    ("url", ["http://localhost:5004/webp/mg_1.mrc.combined.jpg", "http://h/x/mg_2.combined.jpg",
             "http://h/webp/mg_3.webp", "http://h/webp/mg_4_ctffit.webp", "mg_5"],
     ["mg_1", "mg_2", "mg_3", "mg_4", "mg_5"], [0, 1, 2, 3, 4]),
    # eval3d: one row per patch; the first row of each micrograph stays
    ("micrograph_id", ["/data/mg_1.mrc", "/data/mg_1.mrc", "/data/TS_56_6.80Apx.tif", "mg_3.webp", "/d/mg_1.mrc"],
     ["mg_1", "TS_56_6.80Apx", "mg_3"], [0, 2, 3]),
])
def test_names_are_derived_from_urls_and_micrograph_ids(tmp_path, column, values, names, clusters):
    pq.write_table(pa.table({"cluster_id": range(len(values)), column: values}), tmp_path / "selection.parquet")
    table = read_export_parquet(tmp_path / "selection.parquet")
    assert table.names == names
    assert table.table.column_names == ["cluster_id", column, "micrograph_name"]  # appended, as prismPYP does
    np.testing.assert_array_equal(table.cluster_id, clusters)


@given(folder=st.sampled_from(["", "/data/", "http://localhost:5004/webp/", "relative/dir/"]),
       stem=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,15}", fullmatch=True).filter(
           lambda stem: micrograph_name(stem) == stem),
       suffix=st.sampled_from(["", ".mrc", ".webp", "_ctffit.webp", ".mrc.combined.jpg", ".combined.jpg", ".tif"]))
def test_a_derived_name_is_the_stem_whatever_the_folder_and_suffix(folder, stem, suffix):
    assert micrograph_name(f"{folder}{stem}{suffix}") == stem


def viewer_atlas(path, names, layers):
    atlas = Atlas.create(path, 3)
    vectors = np.random.default_rng(0).normal(size=(len(names), 3)).astype(np.float32)
    atlas.append(vectors, pa.array(names), pa.table({"source": [f"/mrc/{name}.mrc" for name in names]}))
    for layer, labels in layers.items():
        atlas.add_layer(layer, {"cluster": np.asarray(labels, np.int32)})
    return atlas


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_viewer_selection_names_micrographs_by_id_and_clusters_by_its_layer(tmp_path, fmt):
    names = ["0001", "mg_b", "mg_c", "mg_d"]  # a numeric-looking id stays text
    atlas = viewer_atlas(tmp_path / "mg.atlas", names, {"kmeans": [2, 0, 2, 1]})
    output = tmp_path / f"selection.{fmt}"
    export_rows(atlas, [0, 2, 3], fmt, output)
    table = read_export_parquet(output)
    assert table.names == ["0001", "mg_c", "mg_d"] and table.cluster_column == "kmeans_cluster"
    np.testing.assert_array_equal(table.cluster_id, [2, 2, 1])


def test_a_viewer_selection_with_several_cluster_layers_asks_for_one(tmp_path):
    atlas = viewer_atlas(tmp_path / "mg.atlas", ["a", "b"], {"kmeans": [0, 1], "leiden": [3, 3]})
    export_rows(atlas, [0, 1], "csv", tmp_path / "selection.csv")
    with pytest.raises(InputError, match="several cluster columns .kmeans_cluster, leiden_cluster."):
        read_export_parquet(tmp_path / "selection.csv")


@pytest.mark.parametrize("name, content, message", [
    ("random.parquet", b"\x00\x01not parquet at all", "neither a Parquet file nor a .csv"),
    ("truncated.parquet", b"PAR1" + b"\x00" * 40, "cannot be read as Parquet"),
    ("bad.csv", b"a,b\n1,2,3\n", "cannot be read as CSV"),
    ("columns.csv", b"cluster_id,image\n1,x.png\n", "(it has cluster_id, image)"),
    ("nulls.csv", b"micrograph_name,cluster_id\na,1\n,2\n", "1 row(s) have no micrograph_name"),
    ("nulls.parquet", pa.table({"id": ["a", None]}), "1 row(s) have no id"),
    ("folder.parquet", pa.table({"url": ["http://h/webp/"]}), "url 'http://h/webp/' names no micrograph"),
    ("labels.csv", b"micrograph_name,cluster_id\na,good\n", "must hold integer cluster labels"),
])
def test_unreadable_selections_are_one_line_input_errors(tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, pa.Table):
        pq.write_table(content, path)
    else:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        read_export_parquet(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_selection_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_export_parquet(tmp_path / "absent.parquet")


# ----------------------------------------------------------------------------- embeddings.pth
def test_embeddings_saved_on_cpu_and_on_cuda_load_without_a_gpu(tmp_path):
    tensor = torch.randn(5, 8)
    torch.save(tensor, tmp_path / "cpu.pth")
    save_as_if_on_gpu(tensor.numpy(), tmp_path / "embeddings.pth")
    with pytest.raises(RuntimeError):
        torch.load(tmp_path / "embeddings.pth")  # what prismPYP's users hit without map_location
    for name in ("cpu.pth", "embeddings.pth"):
        vectors = read_embeddings_pth(tmp_path / name)
        assert vectors.dtype == np.float32 and vectors.shape == (5, 8)
        np.testing.assert_array_equal(vectors, tensor.numpy())


def test_embeddings_in_a_dict_of_one_tensor_load(tmp_path):
    tensor = torch.randn(3, 4, dtype=torch.float64)
    torch.save({"embeddings": tensor, "epoch": 7}, tmp_path / "e.pth")
    np.testing.assert_array_equal(read_embeddings_pth(tmp_path / "e.pth"), tensor.numpy().astype(np.float32))


@pytest.mark.parametrize("saved, message", [
    ({"a": torch.zeros(2, 2), "b": torch.zeros(2, 2)}, "holds 2 tensors .a, b."),
    (torch.zeros(4), "one .N, D. float tensor"),
    (torch.zeros(2, 3, dtype=torch.int64), "one .N, D. float tensor"),
    (torch.zeros(0, 3), "no embeddings"),
    (torch.tensor([[0.0, float("nan")]]), "NaN or infinite values in 1 row"),
])
def test_embeddings_files_of_the_wrong_shape_are_refused(tmp_path, saved, message):
    torch.save(saved, tmp_path / "e.pth")
    with pytest.raises(InputError, match=message):
        read_embeddings_pth(tmp_path / "e.pth")


# ----------------------------------------------------------------------------- intersect
REAL_NAMES = ["mg_a", "mg_b", "mg_c", "mg_d", "mg_e", "mg_f"]
REAL_CLUSTERS = [0, 1, 0, 2, 0, 1]
FFT_NAMES = ["mg_f", "mg_e", "mg_d", "mg_c", "mg_b", "mg_x"]  # another order, one micrograph the real lacks
FFT_CLUSTERS = [5, 5, 6, 5, 5, 5]


@pytest.fixture
def domains(tmp_path):
    """The real and Fourier data_for_export files and a webp folder that lacks mg_c.webp."""
    webp = tmp_path / "webp"
    webp.mkdir()
    for name in set(REAL_NAMES + FFT_NAMES) - {"mg_c"}:
        (webp / f"{name}.webp").write_bytes(name.encode())
        (webp / f"{name}_ctffit.webp").write_bytes(b"spectrum")
    paths = []
    for domain, names, clusters in (("real", REAL_NAMES, REAL_CLUSTERS), ("fft", FFT_NAMES, FFT_CLUSTERS)):
        _, umap_fit, embeddings = export_inputs(len(names), 4, seed=len(domain))
        folder = tmp_path / domain
        folder.mkdir()
        metadata = read_metadata(metadata_csv(folder / "meta.csv", names, np.random.default_rng(5)))
        paths.append(write_export_parquet(folder / "data_for_export.parquet", cluster_id=np.array(clusters),
                                          umap_xy=umap_fit, thumbnails=names, names=names, metadata=metadata,
                                          embeddings=embeddings))
    return paths[0], paths[1], webp


def prismpyp_intersection(real, fft, good_real, good_fft):
    """prismPYP's intersect on pandas frames: filter each side by class, then the inner merge on micrograph_name."""
    first, second = pd.read_parquet(real), pd.read_parquet(fft)
    first, second = first[first["cluster_id"].isin(good_real)], second[second["cluster_id"].isin(good_fft)]
    return pd.merge(first, second, how="inner", on=["micrograph_name"])


@pytest.mark.parametrize("link_type", ["hard", "soft"])
def test_intersect_writes_prismpyps_three_outputs(tmp_path, domains, link_type):
    real, fft, webp = domains
    notes = NoteTaker()
    report = intersect_selections(real, fft, good_real=[0, 1], good_fft=[5], output=tmp_path / "out",
                                  link_type=link_type, webp_path=webp, reporter=notes)
    kept = ["mg_b", "mg_c", "mg_e", "mg_f"]  # real order; mg_a is not in the FFT file, mg_d is FFT class 6
    assert (report.kept, report.real_rows, report.fft_rows, report.linked, report.missing_webp) == (4, 6, 6, 3, 1)
    assert (tmp_path / "out" / "files_in_common.txt").read_text() == "".join(f"{name}.webp\n" for name in kept)
    written = pd.read_parquet(tmp_path / "out" / "intersection.parquet")
    pd.testing.assert_frame_equal(written, prismpyp_intersection(real, fft, [0, 1], [5]), check_exact=True)
    assert {"cluster_id_x", "cluster_id_y", "micrograph_name", "embeddings_x"} <= set(written.columns)
    links = tmp_path / "out" / "files"
    assert sorted(path.name for path in links.iterdir()) == ["mg_b.webp", "mg_e.webp", "mg_f.webp"]
    for link in links.iterdir():
        assert link.is_symlink() == (link_type == "soft")
        assert os.path.samefile(link, webp / link.name)
    assert len(notes.notes) == 1 and "mg_c.webp" in notes.notes[0]
    assert not [path for path in (tmp_path / "out").iterdir() if path.name.startswith(".")]


def test_a_second_run_replaces_the_links_of_the_first(tmp_path, domains):
    real, fft, webp = domains
    output = tmp_path / "out"
    intersect_selections(real, fft, good_real=[1], good_fft=None, output=output, link_type="soft", webp_path=webp)
    assert sorted(path.name for path in (output / "files").iterdir()) == ["mg_b.webp", "mg_f.webp"]
    report = intersect_selections(real, fft, good_real=[2], good_fft=None, output=output, webp_path=webp)
    assert report.kept == 1 and sorted(path.name for path in (output / "files").iterdir()) == ["mg_d.webp"]
    assert not (output / "files" / "mg_d.webp").is_symlink()


def test_a_selection_without_clusters_counts_as_all_good(tmp_path, domains):
    real, _, webp = domains
    atlas = viewer_atlas(tmp_path / "fft.atlas", ["mg_a", "mg_e", "mg_z"], {})
    export_rows(atlas, [0, 1, 2], "parquet", tmp_path / "fft_selection.parquet")
    report = intersect_selections(real, tmp_path / "fft_selection.parquet", good_real=[0], good_fft=None,
                                  output=tmp_path / "out", webp_path=webp)
    assert report.kept == 2
    assert (tmp_path / "out" / "files_in_common.txt").read_text() == "mg_a.webp\nmg_e.webp\n"
    with pytest.raises(ParameterError, match="has no cluster column"):
        intersect_selections(real, tmp_path / "fft_selection.parquet", good_real=None, good_fft=[0],
                             output=tmp_path / "other", webp_path=webp)


@pytest.mark.parametrize("good_real, good_fft, message", [
    ([], [5], "no good real classes given"),
    ([0], [], "no good Fourier classes given"),
    ([0, 7, 9], [5], "no real class 7, 9 in .* its classes are 0, 1, 2"),
    ([0], [4], "no Fourier class 4 in .* its classes are 5, 6"),
])
def test_bad_class_lists_are_refused_before_anything_is_written(tmp_path, domains, good_real, good_fft, message):
    real, fft, webp = domains
    with pytest.raises(ParameterError, match=message):
        intersect_selections(real, fft, good_real=good_real, good_fft=good_fft, output=tmp_path / "out",
                             webp_path=webp)
    assert not (tmp_path / "out").exists()


def test_an_empty_intersection_still_writes_valid_empty_outputs(tmp_path, domains):
    real, fft, webp = domains
    report = intersect_selections(real, fft, good_real=[2], good_fft=[5], output=tmp_path / "out", webp_path=webp)
    assert (report.kept, report.linked, report.missing_webp) == (0, 0, 0)
    written = pd.read_parquet(tmp_path / "out" / "intersection.parquet")
    assert len(written) == 0 and list(written.columns) == list(prismpyp_intersection(real, fft, [2], [5]).columns)
    assert (tmp_path / "out" / "files_in_common.txt").read_text() == ""
    assert list((tmp_path / "out" / "files").iterdir()) == []


def test_hard_links_across_filesystems_fall_back_to_copies_with_one_note(tmp_path, domains):
    real, fft, webp = domains
    shared_memory = "/dev/shm"
    if not os.path.isdir(shared_memory) or os.stat(shared_memory).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs a second filesystem at /dev/shm")
    notes = NoteTaker()
    with tempfile.TemporaryDirectory(dir=shared_memory) as elsewhere:
        report = intersect_selections(real, fft, good_real=None, good_fft=None, output=Path(elsewhere),
                                      link_type="hard", webp_path=webp, reporter=notes)
        copies = [path for path in (Path(elsewhere) / "files").iterdir() if path.stat().st_nlink == 1]
    assert report.linked == len(copies) == 4  # mg_b, mg_d, mg_e, mg_f; mg_c has no webp
    assert sum("copying" in note for note in notes.notes) == 1


def test_unknown_link_types_and_missing_webp_folders_are_refused(tmp_path, domains):
    real, fft, webp = domains
    with pytest.raises(ParameterError, match="unknown link type 'copy'"):
        intersect_selections(real, fft, good_real=None, good_fft=None, output=tmp_path / "o", link_type="copy")
    with pytest.raises(ParameterError, match="does not exist"):
        intersect_selections(real, fft, good_real=None, good_fft=None, output=tmp_path / "o",
                             webp_path=tmp_path / "nowhere")


def test_a_phoenix_export_named_by_url_intersects_as_prismpyp_merges_it(tmp_path, domains):
    real, _, webp = domains
    phoenix = pd.DataFrame({"cluster_id": [4, 4, 3], "prediction_id": ["p1", "p2", "p3"],
                            "url": [f"http://localhost:5004/webp/{name}.webp" for name in ("mg_e", "mg_a", "mg_b")]})
    phoenix.to_parquet(tmp_path / "fft_good_export.parquet")
    report = intersect_selections(real, tmp_path / "fft_good_export.parquet", good_real=None, good_fft=[4],
                                  output=tmp_path / "out", webp_path=webp)
    expected = phoenix[phoenix["cluster_id"] == 4].copy()
    expected["micrograph_name"] = expected["url"].str.split("/").str[-1].str.replace(r"\.webp$", "", regex=True)
    pd.merge(pd.read_parquet(real), expected, how="inner", on=["micrograph_name"]).to_parquet(tmp_path / "p.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / "intersection.parquet"),
                                  pd.read_parquet(tmp_path / "p.parquet"))  # prismPYP's file, as a reader sees it
    assert report.kept == 2 and (tmp_path / "out" / "files_in_common.txt").read_text() == "mg_a.webp\nmg_e.webp\n"
