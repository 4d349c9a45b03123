"""Plant rates: batched render throughput, render + MR-STFT gradient throughput, compile
times and XLA's peak memory, for one plant of ``PLANTS``.

Inputs are random unit knobs from a fixed seed (the rate of a render does not depend on
the knobs' values, and a fixed seed makes every run render the same voices).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym import dsp
from ddsp_gym.bench.report import one_line
from ddsp_gym.bench.settings import PerfSettings
from ddsp_gym.bench.timing import audio_rates, blocking, compile_seconds, peak_mb, time_calls
from ddsp_gym.features.distances import mrstft_distance_from_spectra, multi_resolution_spectra
from ddsp_gym.plants import PLANTS, AbstractPlant

SAW_HZ = 110.0  # the effects' input: a band-limited saw, rich in harmonics


def plant_inputs(
    plant: AbstractPlant, batch: int, seed: int = 0
) -> tuple[Array, Array, Array | None]:
    """Random unit knobs (B, d), keys (B, 2) and, for effects, an input (B, n)."""
    rng = np.random.default_rng(seed)
    knobs = jnp.asarray(rng.uniform(0.0, 1.0, (batch, plant.num_knobs)), jnp.float32)
    keys = jax.random.split(jax.random.PRNGKey(seed), batch)
    audio_in = None
    if plant.needs_input:
        n, sr = plant.n_samples, plant.sample_rate
        saw = 0.5 * dsp.saw_polyblep(
            dsp.phase_accumulator(SAW_HZ, sr, n), dsp.phase_increment(SAW_HZ, sr, n)
        )
        audio_in = jnp.broadcast_to(saw, (batch, n))
    return knobs, keys, audio_in


def batched_render(plant: AbstractPlant) -> Callable:
    """``plant.render`` vmapped over knobs and keys (and the input, for an effect)."""
    in_axes = (0, 0, 0 if plant.needs_input else None)
    return jax.vmap(plant.render, in_axes=in_axes)


def mean_mrstft(audio: Array, target_spectra: Any) -> Array:
    """Mean MR-STFT distance of a batch of sounds (B, n) from precomputed target spectra."""
    spectra = jax.vmap(multi_resolution_spectra)(audio)
    return jnp.mean(jax.vmap(mrstft_distance_from_spectra)(spectra, target_spectra))


def mrstft_loss(plant: AbstractPlant) -> Callable:
    """(knobs, keys, audio_in, target spectra) -> (mean MR-STFT distance, d / d knobs)."""
    render = batched_render(plant)

    def loss(knobs, keys, audio_in, target_spectra):
        return mean_mrstft(render(knobs, keys, audio_in), target_spectra)

    return jax.value_and_grad(loss)


def render_call(
    plant: AbstractPlant, batch: int, compile_repeats: int = 1
) -> tuple[Callable[[], Any], dict[str, Any], Any]:
    """A blocking call rendering ``batch`` voices -> (call, compile times, compiled)."""
    knobs, keys, audio_in = plant_inputs(plant, batch)
    compile_times, compiled = compile_seconds(
        batched_render(plant), knobs, keys, audio_in, repeats=compile_repeats
    )
    return blocking(compiled, knobs, keys, audio_in), compile_times, compiled


def time_render(
    plant: AbstractPlant, batch: int, settings: PerfSettings, compile_repeats: int = 1
) -> dict[str, Any]:
    """Rates, call time, compile time and peak memory of rendering ``batch`` voices."""
    call, compile_times, compiled = render_call(plant, batch, compile_repeats)
    timing = time_calls(call, settings.min_time, settings.rounds)
    return {
        **audio_rates(timing, batch * plant.n_samples / plant.sample_rate),
        "call_ms": 1e3 * timing.best_s,
        "compile": compile_times,
        "peak_mb": peak_mb(compiled),
    }


def time_mrstft_gradient(plant: AbstractPlant, batch: int, settings: PerfSettings) -> dict:
    """Rates, compile time and peak memory of a batch's render + MR-STFT value and gradient.

    The targets' spectra are taken once, outside the timing, as in any fitting loop.
    """
    knobs, keys, audio_in = plant_inputs(plant, batch)
    target_knobs, _, _ = plant_inputs(plant, batch, seed=1)
    target = jax.jit(batched_render(plant))(target_knobs, keys, audio_in)
    target_spectra = jax.jit(jax.vmap(multi_resolution_spectra))(target)
    compile_times, compiled = compile_seconds(
        mrstft_loss(plant), knobs, keys, audio_in, target_spectra, repeats=settings.compile_repeats
    )
    timing = time_calls(
        blocking(compiled, knobs, keys, audio_in, target_spectra),
        settings.min_time,
        settings.rounds,
    )
    return {
        "sample_rate": plant.sample_rate,
        "batch": batch,
        **audio_rates(timing, batch * plant.n_samples / plant.sample_rate),
        "call_ms": 1e3 * timing.best_s,
        "compile": compile_times,
        "peak_mb": peak_mb(compiled),
    }


def bench_plant(name: str, settings: PerfSettings) -> dict[str, Any]:
    """Render throughput, MR-STFT gradient throughput, compile times and memory of one plant.

    A measurement that fails is an error string in the row's "errors"; the rest still run.
    """
    cls = PLANTS[name]
    base = cls()
    row: dict[str, Any] = {
        "plant": name,
        "knobs": base.num_knobs,
        "duration_s": base.duration,
        "render": {},
        "errors": [],
    }
    for sr in settings.sample_rates:
        plant = cls(sample_rate=sr)
        for batch in settings.render_batches:
            label = f"{sr}/{batch}"
            # Compile times are compared at the gradient's batch and first rate only, so
            # only those are compiled several times (the best kept).
            judged = sr == settings.sample_rates[0] and batch == settings.grad_batch
            repeats = settings.compile_repeats if judged else 1
            try:
                row["render"][label] = time_render(plant, batch, settings, repeats)
            except Exception as err:
                row["errors"].append(f"render {label}: {one_line(err)}")
    try:
        plant = cls(sample_rate=settings.sample_rates[0])
        row["grad"] = time_mrstft_gradient(plant, settings.grad_batch, settings)
    except Exception as err:
        row["errors"].append(f"grad: {one_line(err)}")
    forward = row["render"].get(f"{settings.sample_rates[0]}/{settings.grad_batch}", {})
    row["compile_forward"] = forward.get("compile")
    row["compile_grad"] = row.get("grad", {}).get("compile")
    return row
