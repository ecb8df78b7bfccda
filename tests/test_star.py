"""RELION STAR particle files: exact text of the optics and particles blocks, what starfile reads back, quoting
that RELION's reader undoes, refusals, round trips."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import starfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedscope.errors import ParameterError
from embedscope.formats.star import particle_columns, read_particles_star, write_particles_star


def relion_tokens(line: str) -> list[str]:
    """How RELION 4/5 reads one loop row (strings.cpp simplify + nextTokenInSTAR), as an independent oracle.

    Control characters are dropped, tabs become spaces, runs of spaces collapse; a token that starts with a
    quote runs to the same quote followed by a space or the end; a bare token starting with # ends the line.
    """
    line = "".join(" " if c == "\t" else c for c in line if c not in "\n\a\v\b\r\f").lstrip(" ")
    while "  " in line:
        line = line.replace("  ", " ")
    tokens, position = [], 0
    while position < len(line):
        if line[position] == " ":
            position += 1
            continue
        if line[position] == "#":
            break
        quote = line[position]
        if quote in "\"'":
            end = position + 1
            while not (line[end] == quote and (end + 1 == len(line) or line[end + 1] == " ")):
                end += 1
            tokens.append(line[position + 1:end])
            position = end + 1
        else:
            end = line.find(" ", position)
            end = len(line) if end == -1 else end
            tokens.append(line[position:end])
            position = end
    return tokens


def loop_rows(text: str) -> list[str]:
    lines = text.split("\n")
    first = max(index for index, line in enumerate(lines) if line.startswith("_")) + 1
    return [line for line in lines[first:] if line]


def test_tomogram_particles_text(tmp_path):
    path = tmp_path / "particles.star"
    table = pa.table({"tomogram": ["TS_01", "TS 02"], "x": pa.array([100, 7], pa.int32()),
                      "y": pa.array([200, 8], pa.int32()), "z": pa.array([50, 9], pa.int32()),
                      "other": ["ignored", "too"]})
    write_particles_star(path, table)
    assert path.read_text() == (
        "data_optics\n\nloop_\n"
        "_rlnOpticsGroup #1\n_rlnOpticsGroupName #2\n_rlnImageDimensionality #3\n"
        "1 opticsGroup1 3\n"
        "\n\n"
        "data_particles\n\nloop_\n"
        "_rlnMicrographName #1\n_rlnOpticsGroup #2\n_rlnTomoName #3\n"
        "_rlnCoordinateX #4\n_rlnCoordinateY #5\n_rlnCoordinateZ #6\n"
        "TS_01 1 TS_01 100 200 50\n"
        '"TS 02" 1 "TS 02" 7 8 9\n'
        "\n"
    )
    assert read_particles_star(path).equals(table.select(["tomogram", "x", "y", "z"]))


def test_relion_31_blocks_read_by_starfile(tmp_path):
    path = tmp_path / "particles.star"
    table = pa.table({"tomogram": ["TS_56_6.80Apx", "TS 02"], "x": [100.5, 7.0], "y": [200.25, 8.0],
                      "z": [50.0, 9.125], "cluster": pa.array([3, -1], pa.int32())})
    write_particles_star(path, table, pixel_size=6.8)
    blocks = starfile.read(path, always_dict=True)
    assert list(blocks) == ["optics", "particles"]
    optics = blocks["optics"]
    assert list(optics.columns) == ["rlnOpticsGroup", "rlnOpticsGroupName", "rlnImageDimensionality",
                                    "rlnImagePixelSize"]
    assert optics.iloc[0].tolist() == [1, "opticsGroup1", 3, 6.8]
    particles = blocks["particles"]
    assert list(particles.columns) == ["rlnMicrographName", "rlnOpticsGroup", "rlnTomoName", "rlnCoordinateX",
                                       "rlnCoordinateY", "rlnCoordinateZ", "rlnClassNumber"]
    assert particles["rlnTomoName"].tolist() == ["TS_56_6.80Apx", "TS 02"]
    assert particles["rlnMicrographName"].tolist() == ["TS_56_6.80Apx", "TS 02"]
    assert particles["rlnOpticsGroup"].tolist() == [1, 1]
    assert particles["rlnCoordinateX"].tolist() == [100.5, 7.0]
    assert particles["rlnCoordinateY"].tolist() == [200.25, 8.0]
    assert particles["rlnCoordinateZ"].tolist() == [50.0, 9.125]
    assert particles["rlnClassNumber"].tolist() == [4, 0]
    assert read_particles_star(path).equals(table)


def test_micrograph_particles_with_classes_counted_from_one(tmp_path):
    path = tmp_path / "particles.star"
    table = pa.table({"micrograph": ["mics/a.mrc", "#b.mrc"], "x": [10.5, 3.0], "y": [1.25, 4.0],
                      "cluster": pa.array([0, -1], pa.int32())})
    write_particles_star(path, table)
    text = path.read_text()
    assert "_rlnOpticsGroup #1\n_rlnOpticsGroupName #2\n1 opticsGroup1\n" in text  # 2D: no dimensionality
    assert ("_rlnMicrographName #1\n_rlnOpticsGroup #2\n_rlnCoordinateX #3\n_rlnCoordinateY #4\n"
            "_rlnClassNumber #5\n") in text
    assert "rlnTomoName" not in text and "rlnImagePixelSize" not in text
    assert loop_rows(text) == ["mics/a.mrc 1 10.5 1.25 1", '"#b.mrc" 1 3 4 0']
    back = read_particles_star(path)
    assert back.column_names == ["micrograph", "x", "y", "cluster"]
    assert back.column("cluster").to_pylist() == [0, -1]
    assert back.column("x").to_pylist() == [10.5, 3.0]
    particles = starfile.read(path, always_dict=True)["particles"]
    assert particles["rlnMicrographName"].tolist() == ["mics/a.mrc", "#b.mrc"]
    assert particles["rlnClassNumber"].tolist() == [1, 0]


def test_old_single_block_files_still_read(tmp_path):
    path = tmp_path / "old.star"
    path.write_text("data_particles\n\nloop_\n_rlnTomoName #1\n_rlnCoordinateX #2\n_rlnCoordinateY #3\n"
                    "_rlnCoordinateZ #4\n_rlnClassNumber #5\nTS_01 100 200 50 8\n\n")
    table = read_particles_star(path)
    assert table.column_names == ["tomogram", "x", "y", "z", "cluster"]
    assert table.to_pylist() == [{"tomogram": "TS_01", "x": 100, "y": 200, "z": 50, "cluster": 7}]


def test_warp_style_micrograph_names_of_tomograms_read_as_tomograms(tmp_path):
    path = tmp_path / "warp.star"
    path.write_text("data_optics\n\nloop_\n_rlnOpticsGroup #1\n1\n\ndata_particles\n\nloop_\n"
                    "_rlnCoordinateX #1\n_rlnCoordinateY #2\n_rlnCoordinateZ #3\n_rlnMicrographName #4\n"
                    "_rlnOpticsGroup #5\n_rlnAngleRot #6\n1.5 2 3 TS_01.tomostar 1 90\n\n")
    table = read_particles_star(path)
    assert table.column_names == ["tomogram", "x", "y", "z", "rlnAngleRot"]
    assert table.to_pylist() == [{"tomogram": "TS_01.tomostar", "x": 1.5, "y": 2, "z": 3, "rlnAngleRot": "90"}]


@pytest.mark.parametrize("pixel_size", [0, -1.0, float("nan"), float("inf"), "2.5", True])
def test_impossible_pixel_sizes_are_refused(tmp_path, pixel_size):
    table = pa.table({"tomogram": ["t"], "x": [1], "y": [1], "z": [1]})
    with pytest.raises(ParameterError, match="pixel size"):
        write_particles_star(tmp_path / "p.star", table, pixel_size=pixel_size)
    assert not list(tmp_path.iterdir())


def test_missing_columns_are_named(tmp_path):
    with pytest.raises(ParameterError, match=r"missing z \(tomograms\) or micrograph \(micrographs\)"):
        write_particles_star(tmp_path / "p.star", pa.table({"tomogram": ["t"], "x": [1], "y": [2]}))
    assert particle_columns(["micrograph", "x", "y", "tomogram"]) == ["micrograph", "x", "y"]
    assert particle_columns(["tomogram", "x", "y", "z", "micrograph"]) == ["tomogram", "x", "y", "z"]
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"tomogram": ["t"], "x": [np.nan], "y": [1.0], "z": [1.0]}, "NaN"),
        ({"tomogram": [None], "x": [1], "y": [1], "z": [1]}, "no tomogram name"),
        ({"tomogram": ["t"], "x": pa.array([None], pa.int32()), "y": [1], "z": [1]}, "no x"),
        ({"tomogram": ["t"], "x": ["1"], "y": [1], "z": [1]}, "numbers"),
        ({"tomogram": ["t"], "x": [1], "y": [1], "z": [1], "cluster": [0.5]}, "cluster"),
    ],
)
def test_bad_values_are_refused_and_the_old_file_kept(tmp_path, table, expected):
    path = tmp_path / "p.star"
    path.write_text("old")
    with pytest.raises(ParameterError, match=expected):
        write_particles_star(path, pa.table(table))
    assert path.read_text() == "old"
    assert [item.name for item in tmp_path.iterdir()] == ["p.star"]


# Names RELION gives back whole: no control characters, no double quote, single inner spaces only.
writable = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters='"'), min_size=1,
                   max_size=12).filter(lambda name: name == name.strip(" ") and "  " not in name)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(writable, min_size=1, max_size=6), data=st.data())
def test_round_trip_and_relion_reads_the_same_names(tmp_path, names, data):
    count = len(names)
    integers = st.lists(st.integers(-5, 10**6), min_size=count, max_size=count)
    table = pa.table({"tomogram": names, "x": pa.array(data.draw(integers), pa.int32()),
                      "y": pa.array(data.draw(integers), pa.int32()), "z": pa.array(data.draw(integers), pa.int32()),
                      "cluster": pa.array(data.draw(st.lists(st.integers(-1, 50), min_size=count, max_size=count)),
                                          pa.int32())})
    path = tmp_path / "round.star"
    write_particles_star(path, table)
    assert read_particles_star(path).equals(table)
    rows = [relion_tokens(line) for line in loop_rows(path.read_text(encoding="utf-8"))]
    assert [row[0] for row in rows] == [row[2] for row in rows] == names
    assert [int(row[6]) - 1 for row in rows] == table.column("cluster").to_pylist()


refused = st.one_of(
    st.just(""),
    st.tuples(writable, st.sampled_from(['"', "\t", "\n", "\r", "\x07", "  "]), writable).map("".join),
    writable.map(lambda name: " " + name),
    writable.map(lambda name: name + " "),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=refused)
def test_names_relion_would_change_are_refused(tmp_path, name):
    path = tmp_path / "refused.star"
    path.write_text("old")
    table = pa.table({"tomogram": ["fine", name], "x": [1, 2], "y": [1, 2], "z": [1, 2]})
    with pytest.raises(ParameterError, match="cannot be written to a STAR file") as error:
        write_particles_star(path, table)
    assert "\n" not in str(error.value)
    assert path.read_text() == "old"
