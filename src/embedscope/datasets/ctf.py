"""The contrast transfer function of a transmission electron microscope, and where its zeros (Thon rings) fall.

Synthetic micrographs are imaged through it, and tests check that their power spectra ring where it says.
Conventions: defocus in µm, positive for underfocus; Cs in mm; frequencies in 1/Å; angles in degrees.
"""

from __future__ import annotations

import numpy as np

from embedscope.errors import ParameterError

ELECTRON_REST_ENERGY_KEV = 510.99895
HC_KEV_ANGSTROM = 12.398419843  # Planck's constant times the speed of light, keV·Å
ANGSTROM_PER_MICROMETRE = 1e4
ANGSTROM_PER_MILLIMETRE = 1e7


def electron_wavelength(voltage_kv: float) -> float:
    """The relativistic wavelength in Å of electrons accelerated through `voltage_kv` kilovolts.

    λ = hc / sqrt(E (E + 2 m c²)) for kinetic energy E; 0.01969 Å at 300 kV.
    """
    if not voltage_kv > 0:
        raise ParameterError(f"the accelerating voltage needs to be positive, e.g. 300 kV; got {voltage_kv}")
    return float(HC_KEV_ANGSTROM / np.sqrt(voltage_kv * (voltage_kv + 2 * ELECTRON_REST_ENERGY_KEV)))


def ctf_2d(
    side: int,
    pixel_size: float,
    defocus_um: float,
    *,
    voltage_kv: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.07,
    astigmatism_um: float = 0.0,
    astigmatism_angle: float = 0.0,
    b_factor: float = 0.0,
) -> np.ndarray:
    """The (side, side) float32 CTF on numpy.fft.fftfreq's unshifted grid: -sin(χ + w) · exp(-B k² / 4).

    Astigmatism splits the defocus into defocus ± astigmatism/2 along `astigmatism_angle` (degrees from the x axis)
    and its perpendicular, as CTFFIND's two defoci; a positive B factor (Å²) damps high frequencies.
    """
    if not (isinstance(side, int | np.integer) and side > 0) or not pixel_size > 0:
        raise ParameterError(f"a CTF grid needs a positive integer side and pixel size; got {side} and {pixel_size}")
    frequency = np.fft.fftfreq(side, d=pixel_size).astype(np.float32)  # float32 holds χ to about 1e-4 rad
    ky, kx = frequency[:, None], frequency[None, :]
    k_squared = kx**2 + ky**2
    defocus_k_squared = np.float32(defocus_um) * k_squared
    if astigmatism_um:  # Δz(θ) k² without angles: cos 2(θ - θa) k² = (kx² - ky²) cos 2θa + 2 kx ky sin 2θa
        turn = np.deg2rad(2 * astigmatism_angle)
        defocus_k_squared += np.float32(astigmatism_um / 2) * (
            (kx**2 - ky**2) * np.float32(np.cos(turn)) + (2 * kx) * ky * np.float32(np.sin(turn))
        )
    wavelength = electron_wavelength(voltage_kv)
    chi = (np.float32(np.pi * wavelength * ANGSTROM_PER_MICROMETRE) * defocus_k_squared
           - np.float32(np.pi / 2 * cs_mm * ANGSTROM_PER_MILLIMETRE * wavelength**3) * k_squared**2)
    envelope = np.exp(np.float32(-b_factor / 4) * k_squared)
    return -np.sin(chi + np.float32(_amplitude_phase(amplitude_contrast))) * envelope


def ctf_zero_frequencies(
    defocus_um: float,
    count: int,
    *,
    voltage_kv: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.07,
) -> np.ndarray:
    """The spatial frequencies (1/Å, ascending) of the CTF's first `count` zeros, solved exactly with Cs.

    χ(k) + w = nπ is a quadratic in k²; its roots are taken in order of k, first while χ rises (n = 1, 2 ... under
    focus) and then, past the highest-reaching ring, where spherical aberration turns χ back down.
    """
    if not cs_mm > 0:
        raise ParameterError(f"Cs needs to be positive to solve for the zeros; got {cs_mm} mm (use e.g. 0.001 "
                             "for a Cs-corrected microscope)")
    if count < 0:
        raise ParameterError(f"the number of zeros needs to be 0 or more; got {count}")
    wavelength = electron_wavelength(voltage_kv)
    rise = np.pi * wavelength * defocus_um * ANGSTROM_PER_MICROMETRE  # χ = rise·k² - bend·k⁴
    bend = np.pi / 2 * cs_mm * ANGSTROM_PER_MILLIMETRE * wavelength**3
    offset = _amplitude_phase(amplitude_contrast)
    first = int(np.floor(offset / np.pi)) + 1  # the first whole n above (χ + w) / π at k = 0
    last = int(np.ceil((offset + max(rise, 0.0) ** 2 / (4 * bend)) / np.pi)) - 1  # the last n that χ + w crosses twice
    rising = np.arange(first, min(last, first + count - 1) + 1) * np.pi - offset  # nπ - w, χ going up
    falling = np.arange(last, last - count, -1) * np.pi - offset  # nπ - w, χ coming down
    k_squared = np.concatenate([
        2 * rising / (rise + np.sqrt(rise**2 - 4 * bend * rising)),  # the smaller root, free of cancellation
        (rise + np.sqrt(rise**2 - 4 * bend * falling)) / (2 * bend),
    ])
    return np.sqrt(k_squared[:count])


def _amplitude_phase(amplitude_contrast: float) -> float:
    """The phase w with sin(w) equal to the amplitude contrast fraction, which shifts every ring inwards."""
    if not 0 <= amplitude_contrast < 1:
        raise ParameterError(f"the amplitude contrast is a fraction in [0, 1); got {amplitude_contrast}")
    return float(np.arcsin(amplitude_contrast))
