"""`embedscope import` and `embedscope info` end to end: round trips and every bad input."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from embedscope import Atlas

from conftest import assert_one_line_error, run_process, save_as_if_on_gpu, write_csv


def test_npy_with_metadata_joined_by_id(cli, tmp_path, vectors_file) -> None:
    path, array = vectors_file(n=40, dim=6)
    ids = [str(i) for i in range(40)]
    meta = write_csv(tmp_path / "meta.csv", {"name": ids[::-1], "label": [f"L{i % 4}" for i in range(40)][::-1]})
    result = cli("import", path, "--meta", meta, "--on", "name", "-o", tmp_path / "a.atlas")
    assert result.code == 0, result.err
    assert "imported 40 vectors (dim 6)" in result.out
    atlas = Atlas.open(tmp_path / "a.atlas")
    np.testing.assert_array_equal(atlas.vectors(), array)
    table = atlas.table()
    assert table.column("id").to_pylist() == ids
    assert table.column("label").to_pylist() == [f"L{i % 4}" for i in range(40)]  # joined by id, not order
    entry = atlas.provenance[-1]
    assert entry["step"] == "import" and entry["command"].startswith("embedscope import")


def test_unmatched_metadata_ids_are_reported(cli, tmp_path, vectors_file) -> None:
    path, _ = vectors_file(n=5)
    meta = write_csv(tmp_path / "meta.csv", {"id": ["0", "1", "2", "99"], "label": ["a", "b", "c", "z"]})
    result = cli("import", path, "--meta", meta, "--on", "id", "-o", tmp_path / "a.atlas")
    assert result.code == 0
    assert "2 item(s) had no row" in result.err and "'3'" in result.err
    assert "1 row(s) of" in result.err
    labels = Atlas.open(tmp_path / "a.atlas").table(["label"]).column("label").to_pylist()
    assert labels == ["a", "b", "c", None, None]


def test_frames_make_a_sequence_with_ids_repeated_per_frame(cli, tmp_path, vectors_file) -> None:
    paths = [vectors_file(n=10, dim=4, name=f"epoch{i}.npy", seed=i)[0] for i in range(3)]
    result = cli("import", *paths, "--frame", 0, "--frame", 1, "--frame", 2, "-o", tmp_path / "s.atlas")
    assert result.code == 0, result.err
    table = Atlas.open(tmp_path / "s.atlas").table()
    assert table.column("frame").type == pa.int64()
    assert table.column("frame").to_pylist() == [0] * 10 + [1] * 10 + [2] * 10
    assert table.column("id").to_pylist() == [str(i) for i in range(10)] * 3


def test_groups_and_append(cli, tmp_path, vectors_file) -> None:
    first, a = vectors_file(n=6, dim=3, name="gen0.npy", seed=1)
    second, b = vectors_file(n=4, dim=3, name="gen4.npy", seed=2)
    out = tmp_path / "g.atlas"
    assert cli("import", first, "--group", "gen0", "-o", out).code == 0
    result = cli("import", second, "--group", "gen4", "--append", "-o", out)
    assert result.code == 0, result.err
    atlas = Atlas.open(out)
    np.testing.assert_array_equal(atlas.vectors(), np.concatenate([a, b]))
    assert atlas.table(["group"]).column("group").to_pylist() == ["gen0"] * 6 + ["gen4"] * 4
    assert atlas.table(["id"]).column("id").to_pylist() == [str(i) for i in range(10)]
    assert [entry["step"] for entry in atlas.provenance] == ["import", "import"]


def test_force_replaces_and_existing_output_is_refused(cli, tmp_path, vectors_file) -> None:
    path, _ = vectors_file(n=5, dim=3)
    out = tmp_path / "a.atlas"
    assert cli("import", path, "-o", out).code == 0
    assert_one_line_error(cli("import", path, "-o", out), "already exists", "--append", "--force")
    other, array = vectors_file(n=7, dim=2, name="other.npy")
    assert cli("import", other, "-o", out, "--force").code == 0
    np.testing.assert_array_equal(Atlas.open(out).vectors(), array)


def test_other_formats_import_with_their_options(cli, tmp_path) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(12, 5)).astype(np.float32)
    with h5py.File(tmp_path / "TS_56_6.80Apx_embeds.h5", "w") as handle:
        handle["embeddings"] = vectors.T
    np.savez(tmp_path / "out.npz", pred=vectors, name=np.array([f"tomo{i}" for i in range(12)]))
    pq.write_table(
        pa.table({"key": [f"k{i}" for i in range(12)], "emb": pa.array(vectors.tolist(), pa.list_(pa.float32()))}),
        tmp_path / "t.parquet",
    )
    cases = {
        "h5": [tmp_path / "TS_56_6.80Apx_embeds.h5", "--key", "embeddings", "--transpose"],
        "npz": [tmp_path / "out.npz", "--key", "pred"],
        "parquet": [tmp_path / "t.parquet", "--id-column", "key"],
    }
    for name, args in cases.items():
        result = cli("import", *args, "-o", tmp_path / f"{name}.atlas")
        assert result.code == 0, (name, result.err)
        np.testing.assert_array_equal(Atlas.open(tmp_path / f"{name}.atlas").vectors(), vectors)
    assert Atlas.open(tmp_path / "npz.atlas").table(["name"]).column("name").to_pylist()[1] == "tomo1"
    assert Atlas.open(tmp_path / "parquet.atlas").table(["id"]).column("id").to_pylist()[0] == "k0"


def test_prismpyp_inference_folder_imports_without_a_gpu(cli, tmp_path) -> None:
    """prismPYP writes embeddings.pth from the GPU in .micrographs order, metadata in a CSV."""
    names = [f"25jan01a_{i:04d}_patch_aligned" for i in range(20)]
    vectors = np.random.default_rng(5).normal(size=(20, 512)).astype(np.float32)
    save_as_if_on_gpu(vectors, tmp_path / "embeddings.pth")
    (tmp_path / "all_micrographs_list.micrographs").write_text("\n".join(names) + "\n")
    write_csv(
        tmp_path / "micrograph_metadata.csv",
        {"micrograph_name": names[::-1], "ctf_fit": np.linspace(3, 8, 20), "num_particles": np.arange(20)},
    )
    result = cli(
        "import", tmp_path / "embeddings.pth", "--ids", tmp_path / "all_micrographs_list.micrographs",
        "--meta", tmp_path / "micrograph_metadata.csv", "--on", "micrograph_name", "--metric", "cosine",
        "-o", tmp_path / "real.atlas",
    )
    assert result.code == 0, result.err
    atlas = Atlas.open(tmp_path / "real.atlas")
    np.testing.assert_array_equal(atlas.vectors(), vectors)
    table = atlas.table()
    assert table.column("id").to_pylist() == names
    assert table.column("num_particles").to_pylist() == list(range(19, -1, -1))


def test_quiet_prints_no_progress(cli, tmp_path, vectors_file) -> None:
    path, _ = vectors_file(n=10)
    loud = cli("import", path, "-o", tmp_path / "a.atlas")
    assert "import vectors.npy" in loud.err
    quiet = cli("import", path, "-o", tmp_path / "b.atlas", "--quiet")
    assert quiet.code == 0 and quiet.err == "" and "imported 10 vectors" in quiet.out


def test_ids_file(cli, tmp_path, vectors_file) -> None:
    path, _ = vectors_file(n=3, dim=2)
    ids = tmp_path / "ids.txt"
    ids.write_text("mic_a\nmic_b\nmic_c\n")
    assert cli("import", path, "--ids", ids, "-o", tmp_path / "a.atlas").code == 0
    assert Atlas.open(tmp_path / "a.atlas").table(["id"]).column("id").to_pylist() == ["mic_a", "mic_b", "mic_c"]
    ids.write_text("only_one\n")
    assert_one_line_error(cli("import", path, "--ids", ids, "-o", tmp_path / "b.atlas"), "1 ids", "3 vectors")


def test_bad_inputs_give_one_line_and_write_nothing(cli, tmp_path, vectors_file) -> None:
    good, _ = vectors_file(n=4, dim=3)
    wide, _ = vectors_file(n=4, dim=5, name="wide.npy")
    nan = tmp_path / "nan.npy"
    array = np.zeros((50, 3), np.float32)
    array[[7, 9, 30]] = np.nan
    np.save(nan, array)
    dup_ids = tmp_path / "dup.txt"
    dup_ids.write_text("a\nb\na\nc\n")
    corrupt = tmp_path / "corrupt.npy"
    corrupt.write_bytes(b"\x93NUMPY garbage")
    meta = write_csv(tmp_path / "meta.csv", {"name": ["0"], "x": [1]})
    out = tmp_path / "out.atlas"
    cases = [
        (["import", tmp_path / "missing.npy"], ["missing.npy", "no such file"]),
        (["import", corrupt], ["corrupt.npy"]),
        (["import", nan], ["nan.npy", "3 vector(s) contain NaN or inf", "rows 7, 9, 30"]),
        (["import", good, wide], ["differ in dimension", "dim 3", "dim 5"]),
        (["import", good, "--ids", dup_ids], ["'a'", "more than once"]),
        (["import", good, "--meta", meta, "--on", "nope"], ["no column 'nope'", "name, x"]),
        (["import", good, "--meta", meta], ["--on"]),
        (["import", good, "--frame", "1", "--frame", "2"], ["--frame", "one per input"]),
        (["import", good, "--append"], ["no such Atlas"]),
        (["import", good, "--metric", "manhattan"], ["metric"]),
        (["import", good, "--no-such-flag"], ["No such option"]),
    ]
    for args, fragments in cases:
        assert_one_line_error(cli(*args, "-o", out), *fragments)
        assert not out.exists(), args
    assert list(tmp_path.glob(".out.atlas*")) == []


def test_bad_append_leaves_the_atlas_unchanged(cli, tmp_path, vectors_file) -> None:
    good, array = vectors_file(n=4, dim=3)
    out = tmp_path / "a.atlas"
    assert cli("import", good, "-o", out).code == 0
    before = (out / "atlas.json").read_text()
    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((2, 3), np.inf))
    wide, _ = vectors_file(n=2, dim=9, name="wide.npy")
    ids = tmp_path / "ids.txt"
    ids.write_text("0\nx\n")
    assert_one_line_error(cli("import", nan, "--append", "-o", out), "NaN or inf")
    assert_one_line_error(cli("import", wide, "--append", "-o", out), "dim 9", "dim 3")
    assert_one_line_error(cli("import", nan, "--ids", ids, "--append", "-o", out), "already in the Atlas", "'0'")
    assert (out / "atlas.json").read_text() == before
    np.testing.assert_array_equal(Atlas.open(out).vectors(), array)
    assert len(list((out / "items").iterdir())) == 1


def test_debug_shows_the_traceback(cli, tmp_path) -> None:
    result = cli("--debug", "import", tmp_path / "missing.npy", "-o", tmp_path / "a.atlas")
    assert result.code == 1
    assert "Traceback" in result.err and result.err.strip().endswith("no such file")
    result = cli("import", tmp_path / "missing.npy", "-o", tmp_path / "a.atlas", "--debug")
    assert "Traceback" in result.err


def test_info_reports_items_columns_layers_and_provenance(cli, tmp_path, vectors_file) -> None:
    path, _ = vectors_file(n=8, dim=4)
    out = tmp_path / "a.atlas"
    assert cli("import", path, "--metric", "cosine", "-o", out).code == 0
    Atlas.open(out).add_layer("umap", {"x": np.zeros(8), "y": np.zeros(8)}, {"n_neighbors": 15})
    result = cli("info", out, "--json")
    assert result.code == 0
    info = json.loads(result.out)
    assert (info["items"], info["dim"], info["metric"]) == (8, 4, "cosine")
    assert info["columns"]["vector"] == "fixed_size_list<element: float not null>[4]"
    assert info["layers"]["umap"]["params"] == {"n_neighbors": 15}
    assert info["provenance"][0]["step"] == "import"
    assert info["size_bytes"] > 8 * 4 * 4
    text = cli("info", out)
    assert text.code == 0 and "8 items" in text.out and "umap" in text.out and "n_neighbors" in text.out
    assert_one_line_error(cli("info", tmp_path / "nowhere"), "no such Atlas")


def test_console_script_help_and_exit_codes(tmp_path) -> None:
    for args in (["--help"], ["import", "--help"], ["info", "--help"]):
        result = run_process(*args)
        assert result.returncode == 0 and "Usage" in result.stdout
    result = run_process("info", tmp_path / "nowhere")
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
