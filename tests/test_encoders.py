"""SimSiam encoders: MiLoPYP's network layout, augmentations, training files, resume and inference."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from embedscope.encoders.augment import TILT_AND_TOMOGRAM, TOMOGRAM_ONLY, ViewRecipe, draw_view
from embedscope.encoders.inference import embed_patches, load_encoder
from embedscope.encoders.patches import patch_statistics, patch_tensor
from embedscope.encoders.simsiam import make_model, simsiam_loss
from embedscope.encoders.training import learning_rate, train_simsiam
from embedscope.errors import InputError, ParameterError
from embedscope.progress import Reporter

torch.set_num_threads(1)

BBOX, MARGIN = 16, 2
SIZE = BBOX + 2 * MARGIN


def discs_and_bars(n: int, size: int = SIZE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy centred discs (label 0) and horizontal or vertical bars (label 1), float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    labels = np.arange(n) % 2
    patches = np.empty((n, size, size), dtype=np.float32)
    for i, label in enumerate(labels):
        if label == 0:
            shape = xx**2 + yy**2 <= 16
        else:
            along, across = (xx, yy) if rng.integers(2) else (yy, xx)
            shape = (np.abs(along) <= 6) & (np.abs(across) <= 1.2)
        patches[i] = np.clip(0.2 + 0.6 * shape + rng.normal(0, 0.08, shape.shape), 0, 1)
    return patches, labels


def separation(vectors: np.ndarray, labels: np.ndarray) -> float:
    """ARI between two k-means clusters of the L2-normalised vectors and the true labels."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return adjusted_rand_score(labels, KMeans(2, n_init=10, random_state=0).fit_predict(unit))


def assert_one_line(error: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(error.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


class RecordingReporter(Reporter):
    """Keeps the phases and notes a step reports."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, int | None]] = []
        self.notes: list[str] = []

    def phase(self, description, total):
        self.phases.append((description, total))
        return super().phase(description, total)

    def note(self, message: str) -> None:
        self.notes.append(message)


# ---------------------------------------------------------------- MiLoPYP's network layout


def milopyp_layout(arch: str) -> list[tuple[str, tuple[int, ...]]]:
    """state_dict entries of MiLoPYP's TomoResClassifier2D / TomoResClassifier2D3D with heads proj and pred.

    Read from cet_pick/models/networks/simsiam_model_2d.py and simsiam_model_2d3d.py: 3x3 stem of 64
    channels, BasicBlock stages [2, 2, 2] of 64/128/256 channels, 1x1 shortcut (followed by batch
    norm in 2d3d only), fc to head_conv = 128 (from 256, or 512 = two joined inputs in 2d3d), a
    Linear/BN/ReLU x2 + Linear/BN(affine=False) projector and a Linear/BN/ReLU/Linear predictor.
    """

    def norm(prefix: str, channels: int, affine: bool = True) -> list[tuple[str, tuple[int, ...]]]:
        scale = [(f"{prefix}.weight", (channels,)), (f"{prefix}.bias", (channels,))] if affine else []
        stats = [(f"{prefix}.running_mean", (channels,)), (f"{prefix}.running_var", (channels,))]
        return scale + stats + [(f"{prefix}.num_batches_tracked", ())]

    entries = [("conv1.weight", (64, 1, 3, 3)), *norm("bn1", 64)]
    inputs = 64
    for stage, planes in enumerate((64, 128, 256), start=1):
        for block in range(2):
            prefix, channels = f"layer{stage}.{block}", inputs if block == 0 else planes
            entries += [(f"{prefix}.conv1.weight", (planes, channels, 3, 3)), *norm(f"{prefix}.bn1", planes)]
            entries += [(f"{prefix}.conv2.weight", (planes, planes, 3, 3)), *norm(f"{prefix}.bn2", planes)]
            if channels != planes:
                entries.append((f"{prefix}.downsample.0.weight", (planes, channels, 1, 1)))
                if arch == "simsiam2d3d_18":
                    entries += norm(f"{prefix}.downsample.1", planes)
        inputs = planes
    entries += [("fc.weight", (128, 512 if arch == "simsiam2d3d_18" else 256)), ("fc.bias", (128,))]
    entries += [("proj.0.weight", (128, 128)), *norm("proj.1", 128), ("proj.3.weight", (128, 128))]
    entries += [*norm("proj.4", 128), ("proj.6.weight", (128, 128)), *norm("proj.7", 128, affine=False)]
    entries += [("pred.0.weight", (128, 128)), *norm("pred.1", 128), ("pred.3.weight", (128, 128))]
    return entries + [("pred.3.bias", (128,))]


@pytest.mark.parametrize("arch", ["simsiam2d_18", "simsiam2d3d_18"])
def test_state_dict_has_milopyp_names_shapes_and_order(arch):
    ours = [(name, tuple(tensor.shape)) for name, tensor in make_model(arch).state_dict().items()]
    assert ours == milopyp_layout(arch)


@pytest.mark.parametrize("arch", ["simsiam2d_18", "simsiam2d3d_18"])
def test_checkpoint_written_by_milopyp_loads_and_embeds(tmp_path, arch):
    generator = torch.Generator().manual_seed(3)
    weights = {}
    for name, shape in milopyp_layout(arch):  # values of a plausible trained network: finite outputs
        scale = 0.5 if name.endswith(("running_var", "bn1.weight", "bn2.weight")) else 0.05
        weights[f"module.{name}"] = 0.5 + scale * torch.rand(shape, generator=generator) if scale == 0.5 else (
            scale * torch.randn(shape, generator=generator)
        )
        if name.endswith("num_batches_tracked"):
            weights[f"module.{name}"] = torch.tensor(7)
    optimizer = torch.optim.SGD(make_model(arch).parameters(), lr=1e-3)
    path = tmp_path / "model_300.pth"
    torch.save({"epoch": 300, "state_dict": weights, "optimizer": optimizer.state_dict()}, path)

    model, info = load_encoder(path, device="cpu", arch=arch, bbox=36)
    assert (info.arch, info.width, info.epoch, info.bbox, info.written_by) == (arch, 64, 300, None, "MiLoPYP")
    assert torch.equal(model.state_dict()["layer3.1.conv2.weight"], weights["module.layer3.1.conv2.weight"])
    patches, _ = discs_and_bars(6, size=40)
    proj, pred = embed_patches(model, patches, patches if arch == "simsiam2d3d_18" else None, bbox=36, device="cpu")
    assert proj.shape == pred.shape == (6, 128) and pred.dtype == np.float32
    assert np.isfinite(pred).all()


def test_unknown_architecture_names_the_known_ones():
    with pytest.raises(ParameterError) as error:
        make_model("simsiam3d_50")
    assert_one_line(error, "simsiam3d_50", "simsiam2d_18", "simsiam2d3d_18")


def test_2d3d_runs_one_shared_trunk_on_both_inputs_and_joins_tilt_then_tomogram():
    model = make_model("simsiam2d3d_18", width=4).eval()
    images = torch.rand(5, 2, BBOX, BBOX, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        tilt, tomogram = model.pooled_features(images[:, :1]), model.pooled_features(images[:, 1:])
        expected = model.fc(torch.cat([tilt, tomogram], dim=1))
        assert torch.allclose(model.encode(images), expected, atol=1e-6)
        projection, prediction = model(images)
    assert projection.shape == prediction.shape == (5, 128)


def test_loss_is_symmetric_negative_cosine_with_stop_gradient():
    z1, p1, z2, p2 = (torch.randn(8, 128, requires_grad=True) for _ in range(4))
    loss = simsiam_loss((z1, p1), (z2, p2))
    expected = -(torch.cosine_similarity(p1, z2).mean() + torch.cosine_similarity(p2, z1).mean()) / 2
    assert torch.isclose(loss, expected)
    loss.backward()
    assert z1.grad is None and z2.grad is None
    assert p1.grad is not None and p2.grad is not None
    assert torch.isclose(simsiam_loss((p1, p1), (p1, p1)), torch.tensor(-1.0))


def test_learning_rate_follows_milopyp_steps():
    steps = (200, 400, 600)
    assert [learning_rate(1e-3, epoch, steps) for epoch in (1, 200, 201, 400, 401)] == pytest.approx(
        [1e-3, 1e-3, 1e-4, 1e-4, 1e-5]
    )


# ---------------------------------------------------------------- augmentations


@pytest.mark.parametrize("recipe", [TOMOGRAM_ONLY.first, TOMOGRAM_ONLY.second, TILT_AND_TOMOGRAM.first])
def test_views_keep_dtype_take_bbox_shape_and_are_seeded(recipe):
    patches = patch_tensor(*[discs_and_bars(12)[0]] * 2, slice(None))
    draw = lambda seed: draw_view(
        patches, recipe, bbox=BBOX, margin=MARGIN, generator=torch.Generator().manual_seed(seed)
    )
    first, again, other = draw(5), draw(5), draw(6)
    assert first.shape == (12, 2, BBOX, BBOX) and first.dtype == torch.float32
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert torch.equal(first[:, 0], first[:, 1])  # both channels get the same transform
    assert first.min() >= 0 and first.max() <= 1


@settings(max_examples=25, deadline=None)
@given(size=st.integers(4, 24), seed=st.integers(0, 2**31))
def test_plain_views_are_flips_and_quarter_turns_of_the_centre(size, seed):
    patches = torch.rand(3, 1, size, size, generator=torch.Generator().manual_seed(seed))
    views = draw_view(patches, ViewRecipe(), bbox=size, margin=0, generator=torch.Generator().manual_seed(seed))
    for patch, view in zip(patches, views):
        turns = [torch.rot90(patch, k, dims=(1, 2)) for k in range(4)]
        symmetries = turns + [torch.flip(turn, dims=(2,)) for turn in turns]
        assert any(torch.allclose(view, symmetry, atol=1e-5) for symmetry in symmetries)


def test_shifted_crops_stay_within_the_margin():
    patches = torch.zeros(200, 1, SIZE, SIZE)
    patches[:, :, SIZE // 2, SIZE // 2] = 1.0  # one bright pixel at the patch centre
    views = draw_view(patches, ViewRecipe(), bbox=BBOX, margin=MARGIN, generator=torch.Generator().manual_seed(0))
    rows, cols = torch.nonzero(views[:, 0] > 0.99, as_tuple=True)[1:]
    offsets = {(int(r), int(c)) for r, c in zip(rows, cols)}
    assert len(offsets) > 10  # the crop centre moves ...
    centre = BBOX // 2
    assert all(abs(r - centre) <= MARGIN + 1 and abs(c - centre) <= MARGIN + 1 for r, c in offsets)  # ... by <= margin


def test_corner_erasing_paints_small_white_rectangles_off_centre():
    patches = torch.zeros(400, 1, 36, 36)
    recipe = ViewRecipe(erase_probability=0.5)
    views = draw_view(patches, recipe, bbox=36, margin=0, generator=torch.Generator().manual_seed(1))
    erased = views[:, 0] == 1.0
    painted = erased.flatten(1).sum(dim=1)
    assert 0.35 < (painted > 0).float().mean() < 0.65
    assert painted.max() <= 0.02 * 36 * 36 * 1.6
    assert not erased[:, 12:24, :].any() and not erased[:, :, 12:24].any()  # 6 px kept clear of the centre lines


# ---------------------------------------------------------------- training


@pytest.fixture(scope="module")
def trained_2d(tmp_path_factory):
    """A width-16 simsiam2d_18 trained 20 epochs on uint8 discs and bars, every 5th epoch saved.

    Width 16 (not 8) makes the separation reliable across seeds: plain SGD on tiny networks stalls.
    """
    patches, labels = discs_and_bars(256)
    out_dir = tmp_path_factory.mktemp("run2d")
    reporter = RecordingReporter()
    result = train_simsiam(
        np.round(patches * 255).astype(np.uint8), None, arch="simsiam2d_18", bbox=BBOX, margin=MARGIN, epochs=20,
        out_dir=out_dir, batch_size=32, lr=0.3, val_intervals=5, save_all=True, width=16, workers=1,
        lr_steps=(15,), options={"gauss": 0.8, "train_img_txt": "tomos.txt"}, reporter=reporter,
    )
    return result, patches, labels, reporter


def test_training_lowers_the_loss_and_separates_the_classes(trained_2d):
    result, patches, labels, _ = trained_2d
    assert len(result.losses) == 20
    assert np.mean(result.losses[-3:]) < result.losses[0] - 0.2
    model, info = load_encoder(result.checkpoint, device="cpu", arch="simsiam2d_18", bbox=BBOX)
    proj, pred = embed_patches(model, np.round(patches * 255).astype(np.uint8), None, bbox=BBOX, device="cpu")
    assert separation(pred, labels) > 0.8 and separation(proj, labels) > 0.8
    assert proj.dtype == pred.dtype == np.float32 and pred.shape == (256, 128)


def test_training_writes_milopyp_files(trained_2d):
    result, _, _, reporter = trained_2d
    names = sorted(path.name for path in result.out_dir.iterdir())
    assert names == ["log.txt", "model_10.pth", "model_15.pth", "model_20.pth", "model_5.pth", "model_last.pth",
                     "opts.txt"]
    options = (result.out_dir / "opts.txt").read_text().splitlines()
    assert options[0] == f"==> torch version: {torch.__version__}" and options[2:5:2] == ["==> Cmd:", "==> Opt:"]
    for line in ("  arch: simsiam2d_18", "  bbox: 16", "  num_epochs: 20", "  gauss: 0.8", "  lr_step: [15]"):
        assert line in options
    assert options[5:] == sorted(options[5:])
    log = (result.out_dir / "log.txt").read_text().splitlines()
    pattern = (
        r"\d{4}-\d\d-\d\d-\d\d-\d\d: epoch: (\d+) \|loss (-?\d+\.\d{6}) \| "
        r"cosine_loss \S+ \| output_std \S+ \| time \S+ \| "
    )
    matches = [re.fullmatch(pattern, line) for line in log]
    assert all(matches) and [int(match[1]) for match in matches] == list(range(1, 21))
    assert [float(match[2]) for match in matches] == pytest.approx(result.losses, abs=1e-6)
    assert reporter.phases == [("training simsiam2d_18", 20)] and len(reporter.notes) == 20
    assert "loss" in reporter.notes[-1]


def test_checkpoints_hold_milopyp_keys_and_ours(trained_2d):
    result = trained_2d[0]
    checkpoint = torch.load(result.out_dir / "model_10.pth", map_location="cpu", weights_only=True)
    assert {"epoch", "state_dict", "optimizer", "arch", "width", "bbox", "mean", "std"} <= set(checkpoint)
    described = (checkpoint["epoch"], checkpoint["arch"], checkpoint["width"], checkpoint["bbox"])
    assert described == (10, "simsiam2d_18", 16, 16)
    assert checkpoint["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.3)
    last = torch.load(result.checkpoint, map_location="cpu", weights_only=True)
    assert last["epoch"] == 20 and last["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.03)
    assert checkpoint["mean"] == pytest.approx(list(result.statistics.mean))


def test_2d3d_training_separates_the_classes(tmp_path):
    patches, labels = discs_and_bars(256, seed=1)
    tilts = np.clip(patches + np.random.default_rng(2).normal(0, 0.05, patches.shape), 0, 1).astype(np.float32)
    result = train_simsiam(
        patches, tilts, arch="simsiam2d3d_18", bbox=BBOX, margin=MARGIN, epochs=8, out_dir=tmp_path,
        batch_size=32, lr=0.1, width=16, val_intervals=0,
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["log.txt", "model_last.pth", "opts.txt"]
    model, info = load_encoder(result.checkpoint, device="cpu")
    assert info.statistics is not None and len(info.statistics.mean) == 2
    proj, pred = embed_patches(model, patches, tilts, bbox=BBOX, device="cpu")
    assert separation(pred, labels) > 0.8


def test_resumed_training_ends_with_the_uninterrupted_weights(tmp_path):
    patches, _ = discs_and_bars(48, size=12 + 2)
    common = dict(arch="simsiam2d_18", bbox=12, margin=1, batch_size=16, lr=0.05, width=4, seed=7)
    straight = train_simsiam(patches, None, epochs=3, out_dir=tmp_path / "straight", workers=0, **common)
    train_simsiam(patches, None, epochs=2, out_dir=tmp_path / "split", workers=2, **common)
    resumed = train_simsiam(patches, None, epochs=3, out_dir=tmp_path / "split", workers=2, resume=True, **common)
    assert resumed.losses == straight.losses[2:]
    ours = torch.load(resumed.checkpoint, weights_only=True)
    theirs = torch.load(straight.checkpoint, weights_only=True)
    assert ours["epoch"] == theirs["epoch"] == 3
    assert all(torch.equal(ours["state_dict"][name], theirs["state_dict"][name]) for name in theirs["state_dict"])
    assert len((tmp_path / "split" / "log.txt").read_text().splitlines()) == 3


def test_resume_refuses_a_missing_or_different_run(tmp_path):
    patches, _ = discs_and_bars(8, size=12)
    common = dict(arch="simsiam2d_18", bbox=12, margin=0, batch_size=4, width=4, out_dir=tmp_path)
    with pytest.raises(InputError) as error:
        train_simsiam(patches, None, epochs=1, resume=True, **common)
    assert_one_line(error, "model_last.pth", "no such checkpoint")
    train_simsiam(patches, None, epochs=1, **common)
    with pytest.raises(ParameterError) as error:
        train_simsiam(patches[:, 1:-1, 1:-1], None, epochs=2, resume=True, **{**common, "bbox": 10})
    assert_one_line(error, "cannot resume", "bbox 12")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (dict(views3d=discs_and_bars(4)[0] * 2), "[0, 1]"),
        (dict(views3d=discs_and_bars(4, size=SIZE + 2)[0]), "bbox 16 + 2 x margin 2"),
        (dict(views3d=discs_and_bars(4)[0].astype(np.float64)), "uint8 or float32"),
        (dict(arch="simsiam2d3d_18"), "views2d"),
        (dict(device="tpu"), "device must be one of"),
        (dict(batch_size=1), "batch size"),
    ],
)
def test_training_refuses_bad_inputs_in_one_line(tmp_path, change, fragment):
    arguments = dict(views3d=discs_and_bars(4)[0], views2d=None, arch="simsiam2d_18", bbox=BBOX, margin=MARGIN,
                     epochs=1, out_dir=tmp_path, width=4)
    with pytest.raises(ParameterError) as error:
        train_simsiam(**{**arguments, **change})
    assert_one_line(error, fragment)
    assert not any(tmp_path.glob("*.pth"))


# ---------------------------------------------------------------- inference


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    patches, _ = discs_and_bars(16, size=12)
    out_dir = tmp_path_factory.mktemp("small")
    train_simsiam(patches, None, arch="simsiam2d_18", bbox=12, margin=0, epochs=1, out_dir=out_dir, batch_size=8,
                  width=4)
    return out_dir / "model_last.pth", patches


def test_embeddings_do_not_depend_on_the_batch_size(small_checkpoint):
    path, patches = small_checkpoint
    model, info = load_encoder(path, device="cpu")
    assert (info.arch, info.width, info.bbox, info.epoch, info.written_by) == ("simsiam2d_18", 4, 12, 1, "embedscope")
    whole = embed_patches(model, patches, None, bbox=12, batch_size=16, device="cpu")
    pieces = embed_patches(model, patches, None, bbox=12, batch_size=3, device="cpu")
    assert np.allclose(whole[1], pieces[1], atol=1e-5) and np.allclose(whole[0], pieces[0], atol=1e-5)
    bigger = np.pad(patches, ((0, 0), (3, 3), (3, 3)))  # centre crops of larger patches are the same images
    assert np.allclose(embed_patches(model, bigger, None, bbox=12, device="cpu")[1], whole[1], atol=1e-5)
    assert model.patch_statistics == patch_statistics(patches, None, 12)


def test_damaged_or_mismatching_checkpoints_are_refused_in_one_line(tmp_path, small_checkpoint):
    path = small_checkpoint[0]
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[:2000])
    tensor_only = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor_only)
    pruned = tmp_path / "pruned.pth"
    contents = torch.load(path, weights_only=True)
    del contents["state_dict"]["layer2.0.conv1.weight"]
    torch.save(contents, pruned)
    cases = [
        (tmp_path / "absent.pth", {}, "no such checkpoint file"),
        (garbage, {}, "not a readable PyTorch checkpoint"),
        (truncated, {}, "not a readable PyTorch checkpoint"),
        (tensor_only, {}, "not a SimSiam checkpoint"),
        (pruned, {}, "missing layer2.0.conv1.weight"),
        (path, {"arch": "simsiam2d3d_18"}, "holds a simsiam2d_18 network"),
        (path, {"bbox": 36}, "trained on 12 px boxes"),
    ]
    for file, asked, fragment in cases:
        with pytest.raises(InputError) as error:
            load_encoder(file, device="cpu", **asked)
        assert_one_line(error, str(file.name), fragment)


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_truncated_or_random_checkpoints_are_input_errors(tmp_path_factory, small_checkpoint, data):
    original = small_checkpoint[0].read_bytes()
    damaged_bytes = data.draw(
        st.one_of(st.integers(0, len(original) - 1).map(lambda cut: original[:cut]), st.binary(max_size=4096))
    )
    damaged = tmp_path_factory.mktemp("damaged") / "model_last.pth"
    damaged.write_bytes(damaged_bytes)
    with pytest.raises(InputError) as error:
        load_encoder(damaged, device="cpu")
    assert_one_line(error, "model_last.pth")


def test_embedding_needs_the_inputs_of_the_architecture(small_checkpoint):
    path, patches = small_checkpoint
    model, _ = load_encoder(path, device="cpu")
    with pytest.raises(ParameterError) as error:
        embed_patches(model, patches, patches, bbox=12, device="cpu")
    assert_one_line(error, "views2d")
    with pytest.raises(ParameterError) as error:
        embed_patches(model, patches[:, :8, :8], None, bbox=12, device="cpu")
    assert_one_line(error, "at least 12 px")


def test_patch_tensor_reads_uint8_as_fractions_and_never_float64():
    patches = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    tensor = patch_tensor(patches, patches, slice(None))
    assert tensor.dtype == torch.float32 and tensor.shape == (1, 2, 2, 2)
    assert torch.allclose(tensor[0, 0], torch.tensor([[0.0, 1.0], [0.2, 0.4]]))
