"""Encode a sound as a plant's per-frame knob trajectory; decode it by rendering the plant.

encode: analysis starts (YIN f0 and frame RMS, :mod:`ddsp_gym.analysis`) -> gradient
descent (optax Adam) on the whole trajectory through the differentiable block plant,
minimising a spectral distance (:func:`coding_distance`) plus a smoothness prior -> uniform
quantization of each knob track to the bit budget (:mod:`ddsp_gym.coding.quantize`).
decode: dequantize, ramp the knobs linearly between frames, render the plant from its
initial state in one call (the block plant contract: the sound a stream of frame-sized
blocks plays, but for the noise's random draw), cut to the original length.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ddsp_gym.coding.codefile import Code, CodeFormatError, read_code, write_code
from ddsp_gym.coding.harmonic_noise import HarmonicNoiseVoice
from ddsp_gym.coding.quantize import (
    LEVEL_KNOB_NAMES,
    PITCH_KNOB_NAMES,
    bits_for_budget,
    dequantize,
    quantize,
    rice_bits_for_budget,
)
from ddsp_gym.streaming.base import AbstractBlockPlant
from ddsp_gym.streaming.drone import DroneVoice

SAMPLE_RATE = 16_000
# Frame rates whose hop is a whole number of samples at 16 kHz.
FRAME_RATES = (10, 20, 25, 40, 50, 80, 100)
DEFAULT_FRAME_RATE = 50
DEFAULT_KBPS = 6.0
DEFAULT_STEPS = 200
LEARNING_RATE = 0.1  # Adam on knob logits, cosine-decayed to a tenth
# Weight of the smoothness prior: mean squared frame-to-frame move in unit travel. Small
# against the spectral distance (~1): it settles the knobs the sound does not pin down
# (the envelope of a silent frame) without dulling real moves.
SMOOTHNESS = 1.0
FFT_SIZES = (1024, 512, 256, 128)
UNVOICED_F0_HZ = 200.0  # pitch start where YIN finds no periodic frame at all
NOISE_START_DB = -15.0  # the noise starts this far under the frame level
MAX_SECONDS = 30.0  # a longer file is refused: the fit holds the whole trajectory in memory

# The plants a code can name. One per file; a block plant with its own state and ramps.
CODEC_PLANTS: dict[str, type[AbstractBlockPlant]] = {
    "harmonic_noise": HarmonicNoiseVoice,
    "drone": DroneVoice,
}
DEFAULT_PLANT = "harmonic_noise"
DEFAULT_PACKING = "rice"


def make_plant(name: str, frame_rate: int) -> AbstractBlockPlant:
    """The codec plant ``name`` with one block per frame; ValueError names the choices."""
    if name not in CODEC_PLANTS:
        raise ValueError(f"unknown codec plant {name!r}; choose from {', '.join(CODEC_PLANTS)}")
    if frame_rate not in FRAME_RATES:
        raise ValueError(f"frame rate {frame_rate} is not one of {FRAME_RATES} (frames/s)")
    return CODEC_PLANTS[name](sample_rate=SAMPLE_RATE, block_size=SAMPLE_RATE // frame_rate)


def knob_trajectory(points, hop: int):
    """Frame points (P, d) -> per-sample knobs ((P - 1) * hop, d), ramped as render_block
    does: sample i of segment t is p_t + (p_{t+1} - p_t) (i + 1) / hop."""
    import jax.numpy as jnp

    frac = jnp.arange(1, hop + 1, dtype=jnp.float32) / hop
    steps = points[1:] - points[:-1]
    ramps = points[:-1, None, :] + steps[:, None, :] * frac[None, :, None]
    return ramps.reshape(-1, points.shape[1])


def render_trajectory(plant: AbstractBlockPlant, points, seed: int):
    """Render unit frame points (P, d) from the plant's initial state: ((P - 1) * hop,)."""
    import jax
    import jax.numpy as jnp

    knobs = knob_trajectory(jnp.clip(points, 0.0, 1.0), plant.block_size)
    audio, _ = plant.render_samples(plant.init_state(), knobs, jax.random.PRNGKey(seed), None)
    return jnp.nan_to_num(audio, nan=0.0, posinf=1.0, neginf=-1.0)


def _points_f0(audio: np.ndarray, n_points: int, hop: int) -> np.ndarray:
    """YIN's f0 at each frame point, bridged across aperiodic frames (held at the ends)."""
    from ddsp_gym.analysis import yin

    frame_s = 0.064
    f0, _ = yin(audio, SAMPLE_RATE, frame_s=frame_s, hop_s=hop / SAMPLE_RATE)
    centres = np.arange(f0.size) * hop + round(frame_s * SAMPLE_RATE) // 2
    voiced = np.isfinite(f0)
    if not voiced.any():
        return np.full(n_points, UNVOICED_F0_HZ)
    return np.interp(np.arange(n_points) * hop, centres[voiced], f0[voiced])


def _points_level_db(audio: np.ndarray, n_points: int, hop: int) -> np.ndarray:
    """RMS in dBFS of a hop-long window centred on each frame point."""
    padded = np.pad(np.asarray(audio, np.float64), (hop // 2, n_points * hop))
    frames = padded[: n_points * hop].reshape(n_points, hop)
    return 20.0 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) + 1e-9)


def initial_points(plant: AbstractBlockPlant, audio: np.ndarray, n_points: int) -> np.ndarray:
    """Analysis starts (P, d) in unit travel: pitch knobs on YIN's track, level knobs on
    the frame RMS (noise 15 dB under it), every other knob at mid travel."""
    hop = plant.block_size
    f0 = _points_f0(audio, n_points, hop)
    level = _points_level_db(audio, n_points, hop)
    points = np.full((n_points, len(plant.knob_specs)), 0.5)
    for j, spec in enumerate(plant.knob_specs):
        if spec.name in PITCH_KNOB_NAMES:
            value = f0
        elif spec.name == "noise_level":
            value = level + NOISE_START_DB
        elif spec.name in LEVEL_KNOB_NAMES:
            value = level
        else:
            continue
        points[:, j] = np.asarray(spec.to_unit(np.clip(value, spec.low, spec.high)))
    return points.astype(np.float32)


def _mel_db(magnitude, bank):
    """Mel-band power in dB, floored at -80 dBFS (the floor keeps silence comparable)."""
    import jax.numpy as jnp

    return 10.0 * jnp.log10(jnp.square(magnitude) @ bank + 1e-8)


def coding_distance(x, target):
    """The fit's loss: mean over :data:`FFT_SIZES` of spectral convergence plus the L1
    distance of log-mel spectra (dB / 20).

    Not the MR-STFT's log-magnitude term: per-bin log magnitudes make a harmonic a few
    cents off cost more than broadband noise does, and the fit then trades harmonics for
    noise; mel bands are as wide as hearing's and forgive that.
    """
    import jax.numpy as jnp

    from ddsp_gym.features.distances import multi_resolution_spectra
    from ddsp_gym.features.spectral import mel_filterbank

    terms = []
    pairs = zip(
        multi_resolution_spectra(x, FFT_SIZES),
        multi_resolution_spectra(target, FFT_SIZES),
        strict=True,
    )
    for s, t in pairs:
        n_fft = 2 * (s.magnitude.shape[1] - 1)
        bank = mel_filterbank(SAMPLE_RATE, n_fft, min(64, n_fft // 4))
        mel_l1 = jnp.mean(jnp.abs(_mel_db(s.magnitude, bank) - _mel_db(t.magnitude, bank)))
        terms.append(s.convergence_to(t) + mel_l1 / 20.0)
    return sum(terms) / len(terms)


@dataclass(frozen=True)
class FitResult:
    """A fitted trajectory: unit frame points (P, d) and its :func:`coding_distance`."""

    points: np.ndarray
    start_distance: float  # of the analysis start
    distance: float  # of the fitted (unquantized) trajectory


@functools.lru_cache(maxsize=16)
def _fit_functions(plant: AbstractBlockPlant, steps: int, seed: int):
    """(optimizer, jitted step, jitted loss) for one plant, schedule and noise seed.

    Cached, and the target is an argument rather than a constant of the trace: every
    fit of the same plant, step count and length reuses one compilation (the bench's
    targets, a test's encodes)."""
    import jax
    import jax.numpy as jnp
    import optax

    free = jnp.asarray([s.name not in PITCH_KNOB_NAMES for s in plant.knob_specs], jnp.float32)

    def loss_fn(logits, target):
        points = jax.nn.sigmoid(logits)
        distance = coding_distance(render_trajectory(plant, points, seed), target)
        smooth = jnp.mean(jnp.square(points[1:] - points[:-1]))
        return distance + SMOOTHNESS * smooth, distance

    schedule = optax.cosine_decay_schedule(LEARNING_RATE, max(1, steps), alpha=0.1)
    optimizer = optax.adam(schedule)

    @jax.jit
    def step(logits, opt_state, target):
        (_, distance), grad = jax.value_and_grad(loss_fn, has_aux=True)(logits, target)
        updates, opt_state = optimizer.update(grad * free, opt_state, logits)
        return optax.apply_updates(logits, updates), opt_state, distance

    return optimizer, step, jax.jit(lambda logits, target: loss_fn(logits, target)[1])


def fit_trajectory(
    plant: AbstractBlockPlant,
    audio: np.ndarray,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    progress: bool = False,
) -> FitResult:
    """Fit a per-frame knob trajectory of ``plant`` to ``audio`` (n,) by gradient descent.

    The trajectory has ceil(n / hop) + 1 frame points; the knobs are sigmoids of free
    logits, pitch knobs are held on their analysis track (a spectral loss's gradient in
    f0 is a maze of local minima), the loss is :func:`coding_distance` plus
    :data:`SMOOTHNESS` times the mean squared frame-to-frame move (Adam, the learning
    rate cosine-decayed from :data:`LEARNING_RATE` to a tenth of it).
    """
    import jax
    import jax.numpy as jnp
    from tqdm import tqdm

    hop = plant.block_size
    n_points = -(-audio.size // hop) + 1
    target = jnp.asarray(np.pad(audio, (0, (n_points - 1) * hop - audio.size)), jnp.float32)
    start = initial_points(plant, audio, n_points)
    optimizer, step, distance_of = _fit_functions(plant, steps, seed)
    clipped = np.clip(start, 1e-3, 1.0 - 1e-3)
    logits = jnp.asarray(np.log(clipped / (1.0 - clipped)))
    opt_state = optimizer.init(logits)
    start_distance = float(distance_of(logits, target))
    bar = tqdm(range(steps), desc="encode", unit="step", disable=not progress, file=sys.stderr)
    for i in bar:
        logits, opt_state, distance = step(logits, opt_state, target)
        if i % 10 == 0 or i == steps - 1:
            bar.set_postfix(distance=f"{float(distance):.3f}")
    final = float(distance_of(logits, target))
    return FitResult(np.asarray(jax.nn.sigmoid(logits)), start_distance, final)


def code_for_points(
    plant_name: str,
    plant: AbstractBlockPlant,
    points: np.ndarray,
    n_samples: int,
    kbps: float,
    seed: int = 0,
    packing: str = DEFAULT_PACKING,
) -> Code:
    """Quantize fitted unit points (P, d) to the deepest allocation within ``kbps``.

    "fixed" packing: a constant rate, every frame the same bits. "rice": the deepest
    allocation whose delta + Rice coded tracks of *these* points fit the budget."""
    names = [s.name for s in plant.knob_specs]
    frame_rate = plant.sample_rate // plant.block_size
    if packing == "rice":
        bits = rice_bits_for_budget(names, points, n_samples / plant.sample_rate, kbps)
    elif packing == "fixed":
        bits = bits_for_budget(names, frame_rate, kbps)
    else:
        raise ValueError(f"unknown packing {packing!r}; choose fixed or rice")
    return Code(
        plant=plant_name,
        sample_rate=plant.sample_rate,
        frame_rate=frame_rate,
        n_samples=n_samples,
        seed=seed,
        knobs=tuple(names),
        bits=tuple(bits),
        codes=quantize(points, bits),
        packing=packing,
    )


def check_audio_for_coding(audio: np.ndarray, where: str) -> None:
    """Refuse what the codec cannot code well: over :data:`MAX_SECONDS`, or under 2 frames."""
    seconds = audio.size / SAMPLE_RATE
    if seconds > MAX_SECONDS:
        raise ValueError(
            f"{where}: {seconds:.1f} s is longer than the {MAX_SECONDS:g} s the encoder takes"
        )
    if audio.size < 2 * SAMPLE_RATE // min(FRAME_RATES):
        raise ValueError(f"{where}: {audio.size} samples is too short to code (0.2 s at least)")


def encode(
    audio: np.ndarray,
    plant_name: str = DEFAULT_PLANT,
    kbps: float = DEFAULT_KBPS,
    frame_rate: int = DEFAULT_FRAME_RATE,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    progress: bool = False,
    packing: str = DEFAULT_PACKING,
) -> tuple[Code, FitResult]:
    """Code 16 kHz mono ``audio`` (n,): (the code, the fit it quantizes)."""
    plant = make_plant(plant_name, frame_rate)
    check_budget(plant, kbps, packing)
    fit = fit_trajectory(plant, np.asarray(audio, np.float32), steps, seed, progress)
    code = code_for_points(plant_name, plant, fit.points, audio.size, kbps, seed, packing)
    return code, fit


def check_budget(plant: AbstractBlockPlant, kbps: float, packing: str) -> None:
    """Fail before fitting on a budget no fit can meet: fixed packing's least rate, or
    one bit per knob and frame (a Rice code's least) for rice packing."""
    names = [s.name for s in plant.knob_specs]
    frame_rate = plant.sample_rate // plant.block_size
    if packing == "fixed":
        bits_for_budget(names, frame_rate, kbps)
    elif packing == "rice":
        least = frame_rate * len(names) / 1000.0
        if not kbps >= least:
            raise ValueError(
                f"{kbps:g} kbps is below the least this plant takes at {frame_rate} "
                f"frames/s ({least:.2f} kbps: a bit per knob and frame); lower "
                "--frame-rate or raise --kbps"
            )
    else:
        raise ValueError(f"unknown packing {packing!r}; choose fixed or rice")


def decode(code: Code) -> np.ndarray:
    """Render a code: (n_samples,) float32 at ``code.sample_rate``.

    Raises CodeFormatError when the code names an unknown plant, another sample rate or
    knobs that are not the plant's."""
    if code.plant not in CODEC_PLANTS:
        raise CodeFormatError(
            f"unknown plant {code.plant!r} (this version decodes {', '.join(CODEC_PLANTS)})"
        )
    if code.sample_rate != SAMPLE_RATE or code.frame_rate not in FRAME_RATES:
        raise CodeFormatError(
            f"a code at {code.sample_rate} Hz and {code.frame_rate} frames/s; this version "
            f"decodes {SAMPLE_RATE} Hz at {FRAME_RATES} frames/s"
        )
    # The encoder never writes one; rendering it could exhaust memory.
    if code.duration_s > MAX_SECONDS:
        raise CodeFormatError(
            f"a code of {code.duration_s:.1f} s; the decoder renders at most {MAX_SECONDS:g} s"
        )
    plant = make_plant(code.plant, code.frame_rate)
    names = tuple(s.name for s in plant.knob_specs)
    if code.knobs != names:
        raise CodeFormatError(
            f"the code's knobs are not the {code.plant} plant's: {', '.join(names)}"
        )
    import jax

    points = dequantize(code.codes, code.bits)
    # One compiled render: op-by-op dispatch compiles each primitive apart (~4x slower).
    audio = jax.jit(render_trajectory, static_argnums=(0, 2))(plant, points, code.seed)
    return np.asarray(audio[: code.n_samples], np.float32)


def encode_file(source: str | Path, output: str | Path, **options: Any) -> tuple[Code, FitResult]:
    """Load a sound file (mono 16 kHz; each conversion warned), :func:`encode` it with
    ``options``, write the code."""
    from ddsp_gym.audio_io import load_audio

    audio = load_audio(source, SAMPLE_RATE)
    check_audio_for_coding(audio, str(source))
    code, fit = encode(audio, **options)
    write_code(output, code)
    return code, fit


def decode_file(source: str | Path, output: str | Path) -> Code:
    """Read a code file, render it, write a 16-bit WAV; returns the code."""
    from ddsp_gym.audio_io import save_audio

    code = read_code(source)
    try:
        audio = decode(code)
    except CodeFormatError as err:
        raise CodeFormatError(f"{source}: {err}") from None
    save_audio(output, audio, code.sample_rate)
    return code
