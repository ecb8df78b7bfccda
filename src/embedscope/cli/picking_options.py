"""The candidate-picking options that `train tomograms` and `embed tomograms` share, and the picker they make.

MiLoPYP hard-codes the borders, NMS sizes and threshold; here each is an option with MiLoPYP's value as default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from embedscope.errors import ParameterError

Gauss = Annotated[float, typer.Option("--gauss", help="Sigma of the denoising Gaussian (0: none).")]
Dog = Annotated[str, typer.Option("--dog", help="Sigmas of the difference-of-Gaussian pyramid, e.g. 3,5.")]
BorderZ = Annotated[int, typer.Option("--border-z", help="Slices ignored at the top and bottom.")]
BorderXY = Annotated[int | None, typer.Option("--border-xy", help="Pixels ignored at the x-y edges "
                                              "(default: 30, or 60 above 512 x 512).")]
NmsSize = Annotated[int, typer.Option("--nms-size", help="Window of the per-slice local-maximum test.")]
Threshold = Annotated[float, typer.Option("--threshold-std", help="Keep responses above mean + this many std.")]
Distance = Annotated[float, typer.Option("--nms-distance", help="3D non-maximum suppression diameter in voxels.")]
Order = Annotated[str, typer.Option("--order", help="Axis order of the tomogram files: auto, xzy (IMOD) or xyz.")]


def parse_sigmas(text: str) -> tuple[float, ...]:
    """`3,5` -> (3.0, 5.0), with a one-line error for anything else."""
    try:
        return tuple(float(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError as error:
        raise ParameterError(f"--dog {text!r} must be comma-separated numbers, e.g. 3,5") from error


@dataclass
class Picking:
    """The picking options as given on the command line."""

    gauss: float = 0.8
    dog: str = "3,5"
    border_z: int = 10
    border_xy: int | None = None
    nms_size: int = 3
    threshold_std: float = 0.5
    nms_distance: float = 14.0

    def picker(self):
        """The CandidatePicker these options describe."""
        from embedscope.sources import CandidatePicker

        return CandidatePicker(gauss=self.gauss, dog=parse_sigmas(self.dog), border_z=self.border_z,
                               border_xy=self.border_xy, nms_size=self.nms_size, threshold_std=self.threshold_std,
                               nms_diameter=self.nms_distance)
