"""CryoSiam's subtomogram SimSiam: its state_dict layout, its Lightning checkpoints both ways, views, resumable
training and inference."""

from __future__ import annotations

import csv
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from embedscope.encoders import (
    NetworkSettings,
    SubtomogramSimSiam,
    draw_subtomogram_views,
    embed_subtomogram_batches,
    load_cryosiam_model,
    save_cryosiam_checkpoint,
    train_subtomograms,
)
from embedscope.encoders.epochs import seeded_generator
from embedscope.errors import InputError, ParameterError, UserError
from embedscope.progress import Reporter

TINY = NetworkSettings(num_filters=(4, 8, 8, 16), dim=32, pred_dim=8)
SIDE = 16
TRAINING = dict(epochs=2, batch_size=8, seed=3, workers=1, device="cpu")


class CryoSiamReference(nn.Module):
    """CryoSiam's SimSiam (cryosiam/networks/nets/simsiam.py) as its description gives it, built from MONAI."""

    def __init__(self, block_type, n_input_channels, num_layers, spatial_dims, num_filters, no_max_pool, dim,
                 pred_dim):
        from monai.networks.nets import ResNet

        super().__init__()
        self.encoder = ResNet(block_type, list(num_layers), list(num_filters), n_input_channels=n_input_channels,
                              no_max_pool=no_max_pool, num_classes=dim, spatial_dims=spatial_dims,
                              act=("relu", {"inplace": False}))
        prev_dim = self.encoder.fc.weight.shape[1]
        self.encoder.fc = nn.Sequential(
            nn.Linear(prev_dim, prev_dim, bias=False), nn.BatchNorm1d(prev_dim), nn.ReLU(inplace=False),
            nn.Linear(prev_dim, prev_dim, bias=False), nn.BatchNorm1d(prev_dim), nn.ReLU(inplace=False),
            self.encoder.fc, nn.BatchNorm1d(dim, affine=False),
        )
        self.encoder.fc[6].bias.requires_grad = False
        self.predictor = nn.Sequential(nn.Linear(dim, pred_dim, bias=False), nn.BatchNorm1d(pred_dim),
                                       nn.ReLU(inplace=False), nn.Linear(pred_dim, dim))

    def forward_one(self, x):
        z = self.encoder(x)
        return z, F.normalize(self.predictor(z), p=2, dim=1)


def reference(network: dict) -> CryoSiamReference:
    """CryoSiam's load_prediction_model: the network from the config's keys."""
    return CryoSiamReference(
        block_type=network["block_type"], n_input_channels=network["in_channels"],
        spatial_dims=network["spatial_dims"], num_layers=network["num_layers"], num_filters=network["num_filters"],
        no_max_pool=network["no_max_pool"], dim=network["dim"], pred_dim=network["pred_dim"],
    )


def trained_tiny(seed: int = 0) -> SubtomogramSimSiam:
    """A tiny network whose batch norms hold statistics (a few training-mode passes), in eval mode."""
    torch.manual_seed(seed)
    model = SubtomogramSimSiam(TINY)
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 1, SIDE, SIDE, SIDE), torch.randn(4, 1, SIDE, SIDE, SIDE))
    return model.eval()


def lightning_checkpoint(path: Path, model: nn.Module, network: dict, *, prefix: str = "_model.",
                         sections: tuple[str, ...] = ("config", "backbone_config"), **extra) -> Path:
    """A checkpoint shaped as Lightning writes CryoSiam's, with a loss module's weights beside the network's."""
    state = {prefix + name: tensor for name, tensor in model.state_dict().items()}
    state["_loss.weight"] = torch.ones(3)
    config = {"parameters": {"network": network, "data": {"patch_size": [SIDE] * 3}}}
    contents = {"epoch": 4, "global_step": 40, "state_dict": state,
                "hyper_parameters": {section: config for section in sections}, **extra}
    torch.save(contents, path)
    return path


def assert_one_line(error: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(error.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


def volumes(n: int, seed: int = 0) -> np.ndarray:
    """float32 (n, SIDE, SIDE, SIDE): blobs and rods on noise, normalised."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:SIDE, :SIDE, :SIDE] - (SIDE - 1) / 2
    crops = np.empty((n, SIDE, SIDE, SIDE), dtype=np.float32)
    for i in range(n):
        shape = np.exp(-(x**2 + y**2 + z**2) / rng.uniform(6, 12)) if i % 2 else np.exp(-(x**2 + y**2) / 3)
        crops[i] = shape + rng.normal(0, 0.2, shape.shape)
    return (crops - crops.mean()) / crops.std()


# ---------------------------------------------------------------- the network


def test_settings_default_to_cryosiams_and_round_trip_through_its_config():
    settings = NetworkSettings()
    assert settings.as_config() == {
        "block_type": "bottleneck", "in_channels": 1, "spatial_dims": 3, "num_layers": [1, 1, 1, 1],
        "num_filters": [64, 128, 256, 512], "no_max_pool": True, "dim": 2048, "pred_dim": 512,
    }
    assert NetworkSettings.from_config({"spatial_dims": 3, "in_channels": 1, "dim": 1024}).dim == 1024
    assert NetworkSettings.from_config(TINY.as_config()) == TINY


@pytest.mark.parametrize(
    ("network", "fragments"),
    [
        ({"num_filter": [4, 8, 8, 16]}, ("'num_filter'", "did you mean 'num_filters'")),
        ({"pred_dimm": 8}, ("did you mean 'pred_dim'",)),
        ({"depth": 3}, ("'depth'", "valid keys", "block_type")),
        ({"num_layers": [1, 1, 1]}, ("num_layers", "4 positive integers")),
        ({"block_type": "wide"}, ("block_type", "basic, bottleneck")),
        ({"dim": 0}, ("dim", "positive integer")),
        ({"spatial_dims": 4}, ("spatial_dims", "2 or 3")),
        ({"no_max_pool": "yes"}, ("no_max_pool",)),
    ],
)
def test_bad_network_settings_are_refused_in_one_line(network, fragments):
    with pytest.raises(ParameterError) as error:
        NetworkSettings.from_config(network)
    assert_one_line(error, *fragments)


@pytest.mark.parametrize("settings", [TINY, NetworkSettings(block_type="basic", in_channels=2, spatial_dims=2,
                                                             num_layers=(2, 1, 1, 1), num_filters=(4, 8, 8, 16),
                                                             no_max_pool=False, dim=16, pred_dim=8)])
def test_state_dict_is_cryosiams_and_loads_strictly_both_ways(settings):
    ours, theirs = SubtomogramSimSiam(settings), reference(settings.as_config())
    layout = lambda module: [(name, tensor.shape) for name, tensor in module.state_dict().items()]
    assert layout(ours) == layout(theirs)
    assert {"encoder.conv1.weight", "encoder.layer1.0.conv1.weight", "encoder.fc.0.weight", "encoder.fc.6.bias",
            "encoder.fc.7.running_mean", "predictor.0.weight", "predictor.3.bias"} <= set(ours.state_dict())
    assert not ours.encoder.fc[6].bias.requires_grad
    theirs.load_state_dict(ours.state_dict(), strict=True)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    shape = (3, settings.in_channels) + (SIDE,) * settings.spatial_dims
    crops = torch.randn(shape)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        z, p = theirs.forward_one(crops)
        assert torch.allclose(ours.embed(crops, contrastive=False), z, atol=1e-6)
        assert torch.allclose(ours.embed(crops, contrastive=True), p, atol=1e-6)


def test_contrastive_embeddings_are_unit_length_and_differ_from_the_encoders():
    model = trained_tiny()
    crops = torch.randn(5, 1, SIDE, SIDE, SIDE)
    with torch.no_grad():
        contrastive, encoded = model.embed(crops, True), model.embed(crops, False)
    assert contrastive.shape == encoded.shape == (5, TINY.dim)
    assert torch.allclose(contrastive.norm(dim=1), torch.ones(5), atol=1e-5)
    assert not torch.allclose(contrastive, F.normalize(encoded, dim=1), atol=1e-3)
    model.train()
    p1, p2, z1, z2 = model(crops, crops.flip(2))
    assert p1.shape == z2.shape == (5, TINY.dim) and p1.requires_grad and not z1.requires_grad


# ---------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("prefix", ["_model.", "model.", "backbone."])
@pytest.mark.parametrize("section", ["config", "backbone_config"])
@pytest.mark.parametrize("contrastive", [False, True])
def test_lightning_checkpoints_load_with_any_prefix_and_either_config(tmp_path, prefix, section, contrastive):
    model = trained_tiny()
    path = lightning_checkpoint(tmp_path / "last.ckpt", model, TINY.as_config(), prefix=prefix, sections=(section,))
    loaded, settings = load_cryosiam_model(path, contrastive)
    assert settings == TINY and not loaded.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_a_config_section_with_only_some_keys_takes_cryosiams_defaults_and_ignores_others(tmp_path):
    settings = NetworkSettings(num_filters=(4, 8, 8, 16), dim=32, pred_dim=512)
    network = {"num_filters": [4, 8, 8, 16], "dim": 32, "dropout": 0.1}  # CryoSiam's loader ignores extra keys
    path = lightning_checkpoint(tmp_path / "last.ckpt", SubtomogramSimSiam(settings), network)
    assert load_cryosiam_model(path, False)[1] == settings


def test_lightning_attribute_dicts_are_read_as_dicts_without_running_them(tmp_path, monkeypatch):
    model = trained_tiny()
    names = ("lightning", "lightning.fabric", "lightning.fabric.utilities", "lightning.fabric.utilities.data")
    with monkeypatch.context() as patch:
        modules = {name: types.ModuleType(name) for name in names}
        for name, module in modules.items():
            patch.setitem(sys.modules, name, module)

        class AttributeDict(dict):
            def __getattr__(self, key):
                return self[key]

        AttributeDict.__module__, AttributeDict.__qualname__ = names[-1], "AttributeDict"
        modules[names[-1]].AttributeDict = AttributeDict
        network = AttributeDict(TINY.as_config())
        path = lightning_checkpoint(tmp_path / "last.ckpt", model, network, sections=("config",),
                                    extra_hparams=AttributeDict(lr=0.05))
        hyper = torch.load(path, weights_only=False)["hyper_parameters"]
        assert type(hyper["config"]["parameters"]["network"]) is AttributeDict
    assert names[-1] not in sys.modules
    with pytest.raises(pickle.UnpicklingError):  # what torch's safe loader alone says
        torch.load(path, weights_only=True)
    loaded, settings = load_cryosiam_model(path, contrastive=True)
    assert settings == TINY
    assert torch.equal(loaded.state_dict()["predictor.0.weight"], model.state_dict()["predictor.0.weight"])


class Payload:
    """A pickled object that would run code when unpickled by a trusting loader."""

    def __reduce__(self):
        return (print, ("ran",))


def test_other_pickled_objects_are_refused_not_run(tmp_path, capsys):
    path = lightning_checkpoint(tmp_path / "last.ckpt", trained_tiny(), TINY.as_config(), callbacks=Payload())
    with pytest.raises(InputError) as error:
        load_cryosiam_model(path, False)
    assert_one_line(error, "last.ckpt", "not a readable PyTorch checkpoint")
    assert "ran" not in capsys.readouterr().out


def test_weights_that_do_not_fit_their_config_name_the_key_and_both_shapes(tmp_path):
    network = {**TINY.as_config(), "dim": 64}
    path = lightning_checkpoint(tmp_path / "last.ckpt", trained_tiny(), network)
    with pytest.raises(InputError) as error:
        load_cryosiam_model(path, False)
    assert_one_line(error, "_model.encoder.fc.6.weight", "(32, 64)", "(64, 64)")


def test_a_prediction_config_that_disagrees_with_the_checkpoint_is_refused(tmp_path):
    path = lightning_checkpoint(tmp_path / "last.ckpt", trained_tiny(), TINY.as_config())
    assert load_cryosiam_model(path, True, {"spatial_dims": 3, "in_channels": 1, "dim": 32})[1] == TINY
    with pytest.raises(ParameterError) as error:
        load_cryosiam_model(path, True, {"spatial_dims": 3, "in_channels": 1, "dim": 1024})
    assert_one_line(error, "dim", "1024", "32")
    with pytest.raises(ParameterError) as error:
        load_cryosiam_model(path, True, {"dimm": 32})
    assert_one_line(error, "did you mean 'dim'")


def test_a_checkpoint_without_hyper_parameters_needs_the_network_from_the_config(tmp_path):
    model = trained_tiny()
    path = tmp_path / "weights.ckpt"
    torch.save({"state_dict": {"_model." + k: v for k, v in model.state_dict().items()}}, path)
    with pytest.raises(InputError) as error:
        load_cryosiam_model(path, False)
    assert_one_line(error, "hyper_parameters")
    assert load_cryosiam_model(path, False, TINY.as_config())[1] == TINY


@pytest.mark.parametrize("contents", [b"not a checkpoint", {"weights": 1}, [1, 2]])
def test_files_that_are_not_lightning_checkpoints_are_refused_in_one_line(tmp_path, contents):
    path = tmp_path / "last.ckpt"
    if isinstance(contents, bytes):
        path.write_bytes(contents)
    else:
        torch.save(contents, path)
    with pytest.raises(InputError) as error:
        load_cryosiam_model(path, False)
    assert_one_line(error, str(path))
    with pytest.raises(InputError) as error:
        load_cryosiam_model(tmp_path / "missing.ckpt", False)
    assert_one_line(error, "no such checkpoint")


def test_our_checkpoints_load_in_cryosiams_loader(tmp_path):
    model = trained_tiny()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    path = tmp_path / "last.ckpt"
    save_cryosiam_checkpoint(path, model, TINY, epoch=0, global_step=3, optimizer_state=optimizer.state_dict(),
                             extra={"written_by": "embedscope"})
    for contrastive in (False, True):  # CryoSiam's load_prediction_model, step by step
        checkpoint = torch.load(path, weights_only=False)
        config = checkpoint["hyper_parameters"]["backbone_config" if contrastive else "config"]
        theirs = reference(config["parameters"]["network"])
        theirs.load_state_dict({k.replace("_model.", ""): v for k, v in checkpoint["state_dict"].items()})
        theirs.eval()
        crops = torch.randn(2, 1, SIDE, SIDE, SIDE)
        with torch.no_grad():
            assert torch.allclose(theirs.forward_one(crops)[int(contrastive)], model.embed(crops, contrastive),
                                  atol=1e-6)
    assert checkpoint["epoch"] == 0 and checkpoint["global_step"] == 3
    assert checkpoint["pytorch-lightning_version"].startswith("2.")
    assert checkpoint["optimizer_states"][0]["param_groups"][0]["momentum"] == 0.9
    assert checkpoint["lr_schedulers"] == [] and checkpoint["embedscope"] == {"written_by": "embedscope"}


# ---------------------------------------------------------------- views


def test_views_are_reproducible_and_keep_the_batch_shape():
    batch = torch.from_numpy(volumes(4)).unsqueeze(1)
    first = draw_subtomogram_views(batch, seeded_generator(1, 2))
    again = draw_subtomogram_views(batch, seeded_generator(1, 2))
    other = draw_subtomogram_views(batch, seeded_generator(1, 3))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0]) and not torch.equal(first[0], first[1])
    assert first[0].shape == batch.shape and first[0].dtype == torch.float32
    box = torch.randn(3, 2, 8, 12, 12)  # turns only about D: the H-W plane is the only square one
    assert all(view.shape == box.shape for view in draw_subtomogram_views(box, seeded_generator(0)))


def test_views_move_crops_by_whole_voxels_and_fill_with_zeros():
    batch = torch.zeros(64, 1, SIDE, SIDE, SIDE)
    grid = torch.stack(torch.meshgrid(*[torch.arange(SIDE, dtype=torch.float32)] * 3, indexing="ij"))
    ball = ((grid - 7.5) ** 2).sum(dim=0) <= 4.5**2  # a centred ball: flips, turns and rotations keep it
    batch[:, 0][:, ball] = 1.0
    view, _ = draw_subtomogram_views(batch, seeded_generator(5))
    background = batch.flatten(1).std(dim=1).view(-1, 1, 1, 1, 1)
    bright = view > 0.5 + 0.8 * background  # noise is at most 0.2 std, the offset 0.1 std
    counts = bright.flatten(1).sum(dim=1).float()
    assert counts.min() > 0.6 * ball.sum() and counts.max() < 1.2 * ball.sum()  # interpolation blurs the rim
    centres = [torch.nonzero(mask[0]).float().mean(dim=0) for mask in bright]
    offsets = torch.stack(centres) - 7.5
    assert offsets.abs().max() <= SIDE // 8 + 0.5 and offsets.abs().max() >= 1
    assert view[:, :, 0].abs().max() < 0.5 and view[:, :, -1].abs().max() < 0.5  # zeros came in, nothing wrapped


def test_views_turn_crops_by_any_angle_not_only_quarter_turns():
    batch = torch.zeros(32, 1, SIDE, SIDE, SIDE)
    batch[:, :, 8, 8, 2:14] = 1.0  # a rod along x
    view, _ = draw_subtomogram_views(batch, seeded_generator(2))
    tilted = 0
    for volume in view[:, 0]:
        points = torch.nonzero(volume > 0.5 * volume.max()).float()
        direction = torch.linalg.svd(points - points.mean(dim=0), full_matrices=False).Vh[0]
        tilted += int(direction.abs().max() < 0.95)  # not along any axis
    assert tilted > len(view) // 2


def test_views_refuse_batches_without_channels():
    with pytest.raises(ParameterError) as error:
        draw_subtomogram_views(torch.zeros(2, 8, 8, 8), seeded_generator(0))
    assert_one_line(error, "(N, C, D, H, W)")


# ---------------------------------------------------------------- training


class StopAfterFirstEpoch(Reporter):
    def note(self, message: str) -> None:
        raise KeyboardInterrupt(message)


def test_training_writes_cryosiams_layout_and_resumes_to_the_same_weights(tmp_path):
    crops = volumes(24)
    stored = np.lib.format.open_memmap(tmp_path / "crops.npy", mode="w+", dtype=np.float32, shape=crops.shape)
    stored[:] = crops
    stored.flush()
    memmap = np.load(tmp_path / "crops.npy", mmap_mode="r")
    straight = train_subtomograms(memmap, tmp_path / "straight", TINY, **TRAINING)
    assert straight.epochs_run == 2 and len(straight.losses) == 2 and np.isfinite(straight.losses).all()
    assert straight.checkpoint == tmp_path / "straight" / "model" / "last.ckpt" and straight.device == "cpu"
    assert straight.last_loss == straight.losses[-1]
    with (tmp_path / "straight" / "training_log.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [row["epoch"] for row in rows] == ["1", "2"] and {"loss", "collapse_level", "lr"} <= set(rows[0])
    assert (tmp_path / "straight" / "training_config.yaml").is_file()

    with pytest.raises(KeyboardInterrupt):
        train_subtomograms(crops, tmp_path / "resumed", TINY, **TRAINING, reporter=StopAfterFirstEpoch())
    resumed = train_subtomograms(crops, tmp_path / "resumed", TINY, **TRAINING, resume=True)
    assert resumed.epochs_run == 2 and len(resumed.losses) == 1
    assert resumed.losses[0] == pytest.approx(straight.losses[1], rel=1e-5)
    first, second = (load_cryosiam_model(run.checkpoint, False)[0].state_dict() for run in (straight, resumed))
    for name, tensor in first.items():
        assert torch.allclose(tensor.float(), second[name].float(), atol=1e-6), name
    with (tmp_path / "resumed" / "training_log.csv").open() as file:
        assert [row["epoch"] for row in csv.DictReader(file)] == ["1", "2"]


def test_training_refuses_to_overwrite_or_to_resume_another_network(tmp_path):
    crops = volumes(8)
    settings = dict(TRAINING, epochs=1)
    train_subtomograms(crops, tmp_path, TINY, **settings)
    with pytest.raises(ParameterError) as error:
        train_subtomograms(crops, tmp_path, TINY, **settings)
    assert_one_line(error, "already holds a training run", "resume", "another folder")
    other = NetworkSettings(num_filters=(4, 8, 8, 16), dim=32, pred_dim=16)
    with pytest.raises(ParameterError) as error:
        train_subtomograms(crops, tmp_path, other, **settings, resume=True)
    assert_one_line(error, "pred_dim 8, not 16")
    with pytest.raises(ParameterError) as error:
        train_subtomograms(crops, tmp_path / "empty", TINY, **settings, resume=True)
    assert_one_line(error, "nothing to resume")
    done = train_subtomograms(crops, tmp_path, TINY, **settings, resume=True)  # nothing left to run
    assert done.epochs_run == 1 and done.losses == [] and np.isfinite(done.last_loss)


def test_training_refuses_bad_inputs_in_one_line(tmp_path):
    crops = volumes(8)
    poisoned = crops.copy()
    poisoned[[1, 5], 0, 0, 0] = np.nan
    cases = [
        (crops, dict(batch_size=1), "at least 2"),
        (crops, dict(batch_size=16), "8 crops for batch size 16"),
        (crops, dict(epochs=0), "epochs must be at least 1"),
        (poisoned, {}, "2 of 8 crops hold NaN"),
        (crops.astype(np.float64), {}, "float32"),
        (crops[:, None].repeat(2, axis=1), {}, "2 channel(s)"),
    ]
    for array, changes, fragment in cases:
        with pytest.raises(UserError) as error:
            train_subtomograms(array, tmp_path / "run", TINY, **{**TRAINING, **changes})
        assert_one_line(error, fragment)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- inference


def test_inference_streams_batches_of_any_size_with_or_without_channels():
    model = trained_tiny()
    crops = volumes(5)
    for contrastive in (False, True):
        whole = next(embed_subtomogram_batches(model, [crops], contrastive=contrastive, device="cpu"))
        singles = list(embed_subtomogram_batches(model, (crops[i : i + 1, None] for i in range(5)),
                                                 contrastive=contrastive, device="cpu"))
        assert whole.dtype == np.float32 and whole.shape == (5, TINY.dim)
        assert all(single.shape == (1, TINY.dim) for single in singles)
        assert np.allclose(np.concatenate(singles), whole, atol=1e-5)
    assert np.allclose(np.linalg.norm(whole, axis=1), 1, atol=1e-5)
    with pytest.raises(ParameterError) as error:
        next(embed_subtomogram_batches(model, [crops[:, None].repeat(2, axis=1)], contrastive=False, device="cpu"))
    assert_one_line(error, "(5, 2, 16, 16, 16)", "1 channel(s)")
