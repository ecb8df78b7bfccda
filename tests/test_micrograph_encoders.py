"""prismPYP-style micrograph encoders: torchvision's ResNet layout, prismPYP's checkpoints, views, training and
inference."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from embedscope.encoders import (
    MICROGRAPH_ARCHES,
    MicrographSimSiam,
    draw_micrograph_view,
    embed_micrograph_batches,
    load_micrograph_encoder,
    prepare_micrographs,
    save_embeddings_pth,
    train_micrographs,
)
from embedscope.encoders.micrograph_training import cosine_learning_rate
from embedscope.encoders.torch_resnet import make_resnet
from embedscope.errors import InputError, ParameterError
from embedscope.formats.torch_files import load_torch_file
from embedscope.progress import Reporter

EPOCHS = 6
SIZE = 96  # working size of the synthetic views
INPUT = 48  # network input size in the tests
TINY = dict(arch="resnet18", dim=32, pred_dim=16, input_size=INPUT, batch_size=8, lr=6.0, workers=1, seed=4)


def synthetic_views(n: int, domain: str, seed: int = 0) -> np.ndarray:
    """uint8 (n, SIZE, SIZE): blobs or stripes on noise ("real"), or centro-symmetric ring spectra ("fft")."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    radius = np.hypot(x, y)
    views = np.empty((n, SIZE, SIZE), dtype=np.uint8)
    for i in range(n):
        if domain == "fft":  # Thon rings of random spacing and astigmatism, point-symmetric as spectra are
            angle, stretch, spacing = rng.uniform(0, math.pi), rng.uniform(1, 1.4), rng.uniform(4, 10)
            along, across = x * math.cos(angle) + y * math.sin(angle), y * math.cos(angle) - x * math.sin(angle)
            rings = np.hypot(along * stretch, across)
            image = 0.6 * np.exp(-radius / rng.uniform(15, 40)) + 0.3 * np.cos(rings**1.2 / spacing) ** 2
        elif i % 2:
            centres = rng.uniform(-35, 35, (6, 2))
            image = sum(np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 40) for cx, cy in centres)
        else:
            angle = rng.uniform(0, math.pi)
            image = 0.5 + 0.4 * np.cos((x * math.cos(angle) + y * math.sin(angle)) / 3)
        noisy = 40 + 180 * image + rng.normal(0, 12, image.shape)
        views[i] = np.clip(noisy, 0, 255).astype(np.uint8)
    return views


def assert_one_line(error: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(error.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


# ---------------------------------------------------------------- torchvision's ResNet layout


def torchvision_resnet18_layout() -> list[tuple[str, tuple[int, ...]]]:
    """state_dict of torchvision.models.resnet18(): 7x7 stem, BasicBlock stages [2, 2, 2, 2] of 64-512 channels,
    a 1x1 conv + batch norm `downsample` where a stage starts with stride 2, fc 512 -> 1000."""

    def norm(prefix: str, channels: int) -> list[tuple[str, tuple[int, ...]]]:
        names = ("weight", "bias", "running_mean", "running_var")
        return [(f"{prefix}.{name}", (channels,)) for name in names] + [(f"{prefix}.num_batches_tracked", ())]

    entries = [("conv1.weight", (64, 3, 7, 7)), *norm("bn1", 64)]
    inputs = 64
    for stage, planes in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            prefix, channels = f"layer{stage}.{block}", inputs if block == 0 else planes
            entries += [(f"{prefix}.conv1.weight", (planes, channels, 3, 3)), *norm(f"{prefix}.bn1", planes)]
            entries += [(f"{prefix}.conv2.weight", (planes, planes, 3, 3)), *norm(f"{prefix}.bn2", planes)]
            if channels != planes:
                entries += [(f"{prefix}.downsample.0.weight", (planes, channels, 1, 1))]
                entries += norm(f"{prefix}.downsample.1", planes)
        inputs = planes
    return entries + [("fc.weight", (1000, 512)), ("fc.bias", (1000,))]


def shapes(module: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(name, tuple(tensor.shape)) for name, tensor in module.state_dict().items()]


def test_resnet18_has_torchvision_names_shapes_and_order():
    assert shapes(make_resnet("resnet18")) == torchvision_resnet18_layout()


@pytest.mark.parametrize(
    ("arch", "parameters", "entries", "probe"),
    [
        ("resnet18", 11_689_512, 122, ("layer4.1.conv2.weight", (512, 512, 3, 3))),
        ("resnet34", 21_797_672, 218, ("layer3.5.conv2.weight", (256, 256, 3, 3))),
        ("resnet50", 25_557_032, 320, ("layer4.0.downsample.0.weight", (2048, 1024, 1, 1))),
    ],
)
def test_resnets_have_torchvision_parameter_counts(arch, parameters, entries, probe):
    model = make_resnet(arch)
    assert sum(parameter.numel() for parameter in model.parameters()) == parameters
    assert len(model.state_dict()) == entries
    assert tuple(model.state_dict()[probe[0]].shape) == probe[1]
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 1000)


def test_residual_branches_start_at_zero_as_zero_init_residual():
    last_norms = {"resnet18": "bn2", "resnet50": "bn3"}
    for arch, norm in last_norms.items():
        weights = make_resnet(arch).state_dict()
        residual = [name for name in weights if name.startswith("layer") and name.endswith(f"{norm}.weight")]
        assert residual and all(not weights[name].any() for name in residual)
        assert weights["bn1.weight"].eq(1).all()


# ---------------------------------------------------------------- prismPYP's network and checkpoints


def test_model_has_prismpyp_module_names_and_sizes_the_reducer_to_the_backbone():
    big = MicrographSimSiam("resnet50", dim=64, pred_dim=32).state_dict()
    small = MicrographSimSiam("resnet18", dim=64, pred_dim=32).state_dict()
    for name in ("backbone.0.weight", "backbone.1.running_var", "backbone.4.0.conv3.weight",
                 "backbone.7.2.bn3.weight", "backbone.4.0.downsample.1.weight"):
        assert name in big, name
    assert "backbone.8.weight" not in big  # the average pool holds nothing; fc is dropped
    heads = [name for name in big if not name.startswith("backbone.")]
    assert {name.rsplit(".", 1)[0] for name in heads} == {
        "reducer.0", "reducer.1", "reducer.3", "reducer.4", "reducer.6", "reducer.7", "projector.0", "projector.1",
        "projector.3", "projector.4", "projector.6", "projector.7", "predictor.0", "predictor.1", "predictor.3"}
    assert "projector.7.weight" not in big and "projector.0.bias" not in big  # BN(affine=False), bias=False
    assert big["reducer.0.weight"].shape == (1024, 2048) and small["reducer.0.weight"].shape == (1024, 512)
    assert big["reducer.6.weight"].shape == (64, 64) and big["predictor.0.weight"].shape == (32, 64)
    model = MicrographSimSiam("resnet18", dim=64, pred_dim=32).eval()
    images = torch.rand(3, 3, INPUT, INPUT)
    projection, prediction = model(images)
    assert model.embed(images).shape == projection.shape == prediction.shape == (3, 64)
    assert MICROGRAPH_ARCHES == ("resnet18", "resnet34", "resnet50")


def trained_like(arch: str, dim: int, pred_dim: int, seed: int = 0) -> MicrographSimSiam:
    """A network with non-trivial batch-norm statistics, as after training."""
    torch.manual_seed(seed)
    model = MicrographSimSiam(arch, dim, pred_dim)
    with torch.no_grad():
        model.train()(torch.rand(4, 3, INPUT, INPUT))
        for parameter in model.parameters():  # off zero-init, so every block contributes
            parameter.add_(0.01 * torch.randn_like(parameter))
    return model.eval()


def save_as_prismpyp(model: MicrographSimSiam, path, arch: str) -> None:
    """What prismPYP's train.py saves from its DistributedDataParallel model."""
    state = {f"module.{name}": tensor for name, tensor in model.state_dict().items()}
    torch.save({"epoch": 7, "arch": arch, "state_dict": state, "optimizer": {}}, path)


def test_checkpoint_in_prismpyp_layout_loads_and_embeds_as_its_model(tmp_path):
    model = trained_like("resnet50", 64, 32)
    path = tmp_path / "model_best.pth.tar"
    save_as_prismpyp(model, path, "resnet50")
    loaded, info = load_micrograph_encoder(path, device="cpu")
    assert (info.arch, info.dim, info.pred_dim, info.epoch) == ("resnet50", 64, 32, 7)
    assert (info.domain, info.input_size, info.written_by) == (None, 224, "prismPYP")
    views = synthetic_views(5, "real")
    with torch.inference_mode():
        expected = model.embed(prepare_micrographs(torch.from_numpy(views), INPUT)).numpy()
    batches = [views[:2], views[2:]]
    found = np.concatenate(list(embed_micrograph_batches(loaded, batches, device="cpu", input_size=INPUT)))
    assert found.dtype == np.float32 and found.shape == (5, 64)
    np.testing.assert_allclose(found, expected, rtol=1e-4, atol=1e-5)


def test_bare_state_dict_loads_and_the_architecture_is_read_from_the_keys(tmp_path):
    for arch in ("resnet18", "resnet34"):
        model = MicrographSimSiam(arch, dim=16, pred_dim=8)
        torch.save(model.state_dict(), tmp_path / f"{arch}.pth")
        loaded, info = load_micrograph_encoder(tmp_path / f"{arch}.pth", device="cpu")
        assert (info.arch, info.dim, info.pred_dim) == (arch, 16, 8)


def test_checkpoint_of_another_architecture_or_dim_names_the_differing_keys(tmp_path):
    path = tmp_path / "small.pth.tar"
    save_as_prismpyp(MicrographSimSiam("resnet18", 32, 16), path, "resnet18")
    with pytest.raises(InputError) as error:
        load_micrograph_encoder(path, device="cpu", arch="resnet50")
    assert_one_line(error, str(path), "missing backbone.4.0.conv3.weight", "keys differ",
                    "it looks like a resnet18 checkpoint, pass --arch resnet18")
    with pytest.raises(InputError) as error:
        load_micrograph_encoder(path, device="cpu", dim=64)
    assert_one_line(error, "reducer.3.weight is (32, 1024), not (64, 1024)", "pass --dim 32")


@pytest.mark.parametrize("contents", [b"not a checkpoint at all" * 10, b""])
def test_damaged_checkpoints_are_one_line_input_errors(tmp_path, contents):
    path = tmp_path / "model_best.pth.tar"
    path.write_bytes(contents)
    with pytest.raises(InputError) as error:
        load_micrograph_encoder(path, device="cpu")
    assert_one_line(error, str(path))


def test_files_that_hold_no_weights_are_refused(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(InputError) as error:
        load_micrograph_encoder(tmp_path / "list.pth", device="cpu")
    assert_one_line(error, "not a SimSiam checkpoint")
    with pytest.raises(InputError) as error:
        load_micrograph_encoder(tmp_path / "missing.pth.tar", device="cpu")
    assert_one_line(error, "no such checkpoint file")


def test_embeddings_pth_is_one_float32_tensor(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(6, 4))
    save_embeddings_pth(tmp_path / "embeddings.pth", vectors)
    loaded = torch.load(tmp_path / "embeddings.pth", weights_only=True)
    assert isinstance(loaded, torch.Tensor) and loaded.dtype == torch.float32 and loaded.device.type == "cpu"
    np.testing.assert_array_equal(loaded.numpy(), vectors.astype(np.float32))
    np.testing.assert_array_equal(load_torch_file(tmp_path / "embeddings.pth"), vectors.astype(np.float32))


# ---------------------------------------------------------------- views


def point_symmetric(image: torch.Tensor) -> torch.Tensor:
    return image.flip(-2, -1)


def test_eval_transform_resizes_to_three_equal_channels_in_unit_range():
    batch = torch.from_numpy(synthetic_views(3, "real"))
    images = prepare_micrographs(batch, INPUT)
    assert images.shape == (3, 3, INPUT, INPUT) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    assert torch.equal(images[:, 0], images[:, 2])
    assert prepare_micrographs(batch, SIZE)[0, 0].mul(255).round().to(torch.uint8).equal(batch[0])


def test_fourier_views_keep_spectra_centro_symmetric_with_the_centre_in_the_middle():
    y, x = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    ring = np.exp(-((np.hypot(x, y) - 24) ** 2) / 4)  # a Thon ring about the centre
    stripes = 0.2 * np.cos(0.3 * x + 0.17 * y) ** 2  # point-symmetric but neither mirror- nor rotation-symmetric
    spectrum = torch.from_numpy(np.clip(30 + 200 * ring + 100 * stripes, 0, 255).astype(np.uint8))
    batch = torch.stack([spectrum, spectrum.flip(0)])
    assert torch.equal(batch, point_symmetric(batch))
    views = draw_micrograph_view(batch.repeat(8, 1, 1), "fft", input_size=INPUT,
                                 generator=torch.Generator().manual_seed(5))
    assert views.shape == (16, 3, INPUT, INPUT) and views.min() >= 0 and views.max() <= 1
    assert (views - point_symmetric(views)).abs().max() < 1e-3
    blob = 120 * np.exp(-((x + 40) ** 2 + (y + 12) ** 2) / 20)  # off-centre, outside the ring: not symmetric
    lopsided = (batch.double() + torch.from_numpy(blob)).clamp(0, 255).to(torch.uint8)
    views = draw_micrograph_view(lopsided.repeat(8, 1, 1), "fft", input_size=INPUT,
                                 generator=torch.Generator().manual_seed(6))[:, 0]
    axis = (2 * torch.arange(INPUT, dtype=torch.float32) + 1) / INPUT - 1  # grid units, 0 in the middle
    radius = torch.hypot(axis[None, :], axis[:, None])
    annulus = (radius > 0.3) & (radius < 0.7)  # where the ring lands after any zoom and stretch
    weights = (views - views.mean(dim=(1, 2), keepdim=True)).clamp(min=0) ** 4 * annulus
    centre_x = (weights * axis[None, None, :]).sum(dim=(1, 2)) / weights.sum(dim=(1, 2))
    centre_y = (weights * axis[None, :, None]).sum(dim=(1, 2)) / weights.sum(dim=(1, 2))
    assert (centre_x.abs().max() * INPUT / 2 < 0.5) and (centre_y.abs().max() * INPUT / 2 < 0.5)  # px


@pytest.mark.parametrize("domain", ["real", "fft"])
def test_views_are_seeded_by_the_generator_and_differ_from_the_input(domain):
    batch = torch.from_numpy(synthetic_views(4, domain))
    draw = lambda seed: draw_micrograph_view(batch, domain, input_size=INPUT,
                                             generator=torch.Generator().manual_seed(seed))
    first = draw(1)
    assert torch.equal(first, draw(1))
    assert not torch.equal(first, draw(2))
    plain = prepare_micrographs(batch, INPUT)
    assert ((first - plain).abs().mean(dim=(1, 2, 3)) > 0.02).all()


def test_views_refuse_what_is_not_a_uint8_square_batch():
    with pytest.raises(ParameterError, match="uint8"):
        prepare_micrographs(torch.zeros(2, 8, 8))
    with pytest.raises(ParameterError, match="domain must be one of real, fft"):
        draw_micrograph_view(torch.zeros(2, 8, 8, dtype=torch.uint8), "fourier", generator=torch.Generator())


# ---------------------------------------------------------------- training


def backbone_weights(path) -> dict[str, torch.Tensor]:
    state = torch.load(path, weights_only=True)["state_dict"]
    return {name.removeprefix("module."): tensor for name, tensor in state.items()}


@pytest.fixture(scope="module", params=["real", "fft"])
def trained(request, tmp_path_factory):
    domain = request.param
    out_dir = tmp_path_factory.mktemp(f"train-{domain}")
    views = synthetic_views(24, domain)
    views.flags.writeable = False  # as a read-only memmap would be
    torch.manual_seed(TINY["seed"])
    start = MicrographSimSiam(TINY["arch"], TINY["dim"], TINY["pred_dim"]).state_dict()
    result = train_micrographs(views, domain=domain, epochs=EPOCHS, out_dir=out_dir, **TINY)
    return domain, result, start


def test_training_lowers_the_loss_and_trains_the_backbone(trained):
    _, result, start = trained
    assert len(result.losses) == len(result.collapse_levels) == result.epochs == EPOCHS
    assert min(result.losses[-2:]) < result.losses[0] - 0.1
    final = backbone_weights(result.last)
    for name in ("backbone.0.weight", "backbone.7.0.conv1.weight", "backbone.7.0.downsample.0.weight"):
        change = (final[name] - start[name]).norm() / start[name].norm()
        assert change > 1e-3, name
    assert not start["backbone.7.1.bn2.weight"].any() and final["backbone.7.1.bn2.weight"].abs().min() > 0


def test_training_writes_prismpyp_files_and_our_log(trained):
    domain, result, _ = trained
    folder = result.out_dir / "checkpoints"
    assert {path.name for path in folder.iterdir()} == {
        "model_best.pth.tar", "model_last.pth.tar", "model_lowest_collapse.pth.tar", "best_epoch.txt",
        "best_collapse_epoch.txt"}
    best = int(np.argmin(result.losses))
    assert (folder / "best_epoch.txt").read_text().startswith(f"Best epoch: {best}, loss: {result.losses[best]}")
    assert (folder / "best_collapse_epoch.txt").read_text().startswith("Best collapse epoch: ")
    with (result.out_dir / "training_log.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [int(row["epoch"]) for row in rows] == list(range(1, EPOCHS + 1))
    assert set(rows[0]) == {"epoch", "loss", "collapse_level", "output_std", "lr", "seconds"}
    assert float(rows[1]["lr"]) == pytest.approx(cosine_learning_rate(6.0 * 8 / 256, 1, EPOCHS), rel=1e-5)
    config = (result.out_dir / "training_config.yaml").read_text()
    assert f"use_fft: {'true' if domain == 'fft' else 'false'}" in config and "domain: " + domain in config
    for path in (result.best, result.last, result.lowest_collapse):
        contents = torch.load(path, weights_only=True)
        assert {"epoch", "arch", "state_dict", "optimizer", "dim", "pred_dim", "domain", "input_size", "best_loss",
                "lowest_collapse", "written_by"} <= set(contents)
        assert all(name.startswith("module.") for name in contents["state_dict"])
        model, info = load_micrograph_encoder(path, device="cpu")
        assert (info.arch, info.dim, info.domain, info.input_size, info.written_by) == (
            "resnet18", 32, domain, INPUT, "embedscope")
    assert torch.load(result.last, weights_only=True)["epoch"] == EPOCHS


def test_trained_model_embeds_at_its_input_size(trained):
    domain, result, _ = trained
    model, _ = load_micrograph_encoder(result.last, device="cpu")
    views = synthetic_views(6, domain, seed=1)
    whole = next(embed_micrograph_batches(model, [views], device="cpu"))
    split = np.concatenate(list(embed_micrograph_batches(model, [views[:1], views[1:]], device="cpu")))
    assert whole.shape == (6, 32) and np.isfinite(whole).all()
    np.testing.assert_allclose(split, whole, rtol=1e-4, atol=1e-5)


class StopAfter(Reporter):
    """Interrupts training after `epochs` finished epochs, as a crash or Ctrl-C would."""

    def __init__(self, epochs: int) -> None:
        self.left = epochs

    def note(self, message: str) -> None:
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt


def test_resumed_training_ends_with_the_uninterrupted_weights(tmp_path):
    views = synthetic_views(8, "fft")
    straight = train_micrographs(views, domain="fft", epochs=3, out_dir=tmp_path / "straight", **TINY)
    with pytest.raises(KeyboardInterrupt):
        train_micrographs(views, domain="fft", epochs=3, out_dir=tmp_path / "split", reporter=StopAfter(2), **TINY)
    resumed = train_micrographs(views, domain="fft", epochs=3, out_dir=tmp_path / "split", resume=True,
                                **{**TINY, "workers": 0})
    assert resumed.losses == straight.losses[2:] and resumed.collapse_levels == straight.collapse_levels[2:]
    ours, theirs = backbone_weights(resumed.last), backbone_weights(straight.last)
    assert all(torch.equal(ours[name], theirs[name]) for name in theirs)
    assert (tmp_path / "split" / "training_log.csv").read_text().count("\n") == 4
    for name in ("best_loss", "lowest_collapse", "output_std_ema"):
        found = torch.load(resumed.last, weights_only=True)[name]
        assert found == torch.load(straight.last, weights_only=True)[name], name


def test_resume_refuses_a_missing_or_different_run(tmp_path):
    views = synthetic_views(8, "real")
    with pytest.raises(ParameterError) as error:
        train_micrographs(views, domain="real", epochs=1, out_dir=tmp_path, resume=True, **TINY)
    assert_one_line(error, "nothing to resume", "start without --resume")
    train_micrographs(views, domain="real", epochs=1, out_dir=tmp_path, **TINY)
    with pytest.raises(ParameterError) as error:
        train_micrographs(views, domain="fft", epochs=2, out_dir=tmp_path, resume=True, **TINY)
    assert_one_line(error, "cannot resume", "domain real")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"images": np.zeros((4, 8, 8), dtype=np.float32)}, "uint8 (N, S, S)"),
        ({"images": np.zeros((4, 8, 9), dtype=np.uint8)}, "square"),
        ({"images": np.zeros((1, 8, 8), dtype=np.uint8)}, "at least 2 views"),
        ({"domain": "fourier"}, "domain must be one of real, fft"),
        ({"arch": "resnet101"}, "unknown architecture 'resnet101'"),
        ({"batch_size": 1}, "batch size must be at least 2"),
        ({"input_size": 16}, "input size must be at least 32"),
    ],
)
def test_training_refuses_bad_inputs_in_one_line(tmp_path, change, fragment):
    arguments = {**TINY, "images": np.zeros((4, 8, 8), dtype=np.uint8), "domain": "real", "epochs": 1,
                 "out_dir": tmp_path, **change}
    with pytest.raises(ParameterError) as error:
        train_micrographs(**arguments)
    assert_one_line(error, fragment)
    assert not (tmp_path / "checkpoints").exists()
