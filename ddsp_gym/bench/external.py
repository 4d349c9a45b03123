"""Voices of other differentiable synth libraries, rendered in the same run for comparison.

Optional (the ``bench`` extra): SynthAX (JAX/Flax, Cherep & Singh 2023) and
torchsynth (PyTorch, Turian et al. 2021). Each offers

* ``voice``: the library's stock ``Voice`` (keyboard, LFOs, ADSRs, a sine and a
  square/saw VCO, noise, VCA, mixer): an oscillators-plus-envelopes voice,
  set beside our richest synth plant, and
* ``adsr_sine``: keyboard -> ADSR -> sine VCO -> VCA, built from the
  library's own modules: the structure of our ``adsr_tone`` plant.

A library that is not installed, or fails to run here, is reported with the
reason, never with a number. :func:`bench_external` times each beside our comparable
plant in alternating rounds, so their ratio is measured in one run, under one load.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ddsp_gym.bench.settings import PerfSettings

VOICES: tuple[str, ...] = ("voice", "adsr_sine")
# Our plant set beside each external voice, the first one the run measured wins.
COMPARABLE_PLANTS: dict[str, tuple[str, ...]] = {
    "voice": ("subtractive", "fm2", "filtered_saw"),
    "adsr_sine": ("adsr_tone",),
}


@dataclass
class ExternalRender:
    """A ready-to-time render of ``batch`` voices of ``seconds`` at ``sample_rate``."""

    library: str
    version: str
    voice: str
    batch: int
    sample_rate: int
    seconds: float
    render: Callable[[], object]  # renders once, blocks until the audio exists
    setup_s: float  # construction + first render (compilation, for SynthAX)


def synthax_render(voice: str, batch: int, sample_rate: int, seconds: float) -> ExternalRender:
    """A jitted SynthAX render (``voice`` in :data:`VOICES`)."""
    import importlib.metadata

    import jax
    from flax import linen as nn
    from synthax.config import SynthConfig
    from synthax.modules.amplifiers import VCA
    from synthax.modules.control import ControlRateUpsample
    from synthax.modules.envelopes import ADSR
    from synthax.modules.keyboard import MonophonicKeyboard
    from synthax.modules.oscillators import SineVCO
    from synthax.synth import BaseSynth, Voice

    class AdsrSine(BaseSynth):
        def setup(self):
            self.keyboard = MonophonicKeyboard(config=self.config)
            self.adsr = ADSR(config=self.config)
            self.upsample = ControlRateUpsample(config=self.config)
            self.vco = SineVCO(config=self.config)
            self.vca = VCA(config=self.config)

        def __call__(self):
            midi_f0, note_on_duration = self.keyboard()
            envelope = self.upsample(self.adsr(note_on_duration))
            return self.vca(self.vco(midi_f0), envelope)

    start = time.perf_counter()
    config = SynthConfig(batch_size=batch, sample_rate=sample_rate, buffer_size_seconds=seconds)
    synth: nn.Module = Voice(config=config) if voice == "voice" else AdsrSine(config=config)
    params = synth.init(jax.random.PRNGKey(0))
    apply = jax.jit(synth.apply)

    def render():
        return apply(params).block_until_ready()

    render()
    return ExternalRender(
        library="SynthAX",
        version=importlib.metadata.version("synthax"),
        voice=voice,
        batch=batch,
        sample_rate=sample_rate,
        seconds=seconds,
        render=render,
        setup_s=time.perf_counter() - start,
    )


def torchsynth_render(voice: str, batch: int, sample_rate: int, seconds: float) -> ExternalRender:
    """A torchsynth render on the CPU, without autograd (its default)."""
    import importlib.metadata

    import torch
    from torchsynth.config import SynthConfig
    from torchsynth.module import ADSR, VCA, ControlRateUpsample, MonophonicKeyboard, SineVCO
    from torchsynth.synth import Voice

    start = time.perf_counter()
    config = SynthConfig(
        batch_size=batch,
        sample_rate=sample_rate,
        buffer_size_seconds=seconds,
        reproducible=False,
    )
    if voice == "voice":
        synth = Voice(synthconfig=config)

        def render():
            with torch.no_grad():
                return synth()[0]

    else:
        keyboard = MonophonicKeyboard(config)
        adsr, upsample = ADSR(config), ControlRateUpsample(config)
        vco, vca = SineVCO(config), VCA(config)

        def render():
            with torch.no_grad():
                midi_f0, note_on_duration = keyboard()
                return vca(vco(midi_f0), upsample(adsr(note_on_duration)))

    render()
    return ExternalRender(
        library="torchsynth",
        version=importlib.metadata.version("torchsynth"),
        voice=voice,
        batch=batch,
        sample_rate=sample_rate,
        seconds=seconds,
        render=render,
        setup_s=time.perf_counter() - start,
    )


LIBRARIES: dict[str, Callable[[str, int, int, float], ExternalRender]] = {
    "SynthAX": synthax_render,
    "torchsynth": torchsynth_render,
}


def torch_threads() -> int | None:
    """PyTorch's intra-op threads (torchsynth's parallelism), None without PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()


def bench_external(settings: PerfSettings, plant_rows: Sequence[dict]) -> list[dict[str, Any]]:
    """SynthAX and torchsynth voices, timed here, beside our comparable plants.

    Ours is rendered here too, for their duration (the plant table uses each plant's
    own), so both sides of the ratio time the same work, in alternating rounds.
    """
    from ddsp_gym.bench.plants import render_call
    from ddsp_gym.bench.report import one_line
    from ddsp_gym.bench.timing import audio_rates, time_interleaved
    from ddsp_gym.plants import PLANTS

    measured = {row["plant"] for row in plant_rows}  # the plants this run was asked for
    sr = settings.sample_rates[0]
    rows = []
    for library, make in LIBRARIES.items():
        for voice in settings.external_voices:
            for batch in settings.external_batches:
                row: dict[str, Any] = {
                    "library": library,
                    "voice": voice,
                    "batch": batch,
                    "sample_rate": sr,
                    "seconds": settings.external_seconds,
                }
                try:
                    ext = make(voice, batch, sr, settings.external_seconds)
                except ImportError as err:
                    row["unavailable"] = f"not installed ({one_line(err)}); pip install '.[bench]'"
                    rows.append(row)
                    continue
                except Exception as err:
                    row["unavailable"] = f"fails to run here: {one_line(err)}"
                    rows.append(row)
                    continue
                mine = next((p for p in COMPARABLE_PLANTS[voice] if p in measured), None)
                calls = [ext.render]
                if mine is not None:
                    plant = PLANTS[mine](sample_rate=sr, duration=settings.external_seconds)
                    calls.append(render_call(plant, batch)[0])
                for call in calls:
                    call()  # warm: first-call work on both sides, outside the timing
                timings = time_interleaved(calls, settings.min_time, settings.external_rounds)
                seconds = batch * settings.external_seconds
                row.update(
                    version=ext.version,
                    setup_s=ext.setup_s,
                    torch_threads=torch_threads(),
                    **audio_rates(timings[0], seconds),
                )
                if mine is not None:
                    ours = audio_rates(timings[1], seconds)
                    row.update(
                        ours_plant=mine,
                        ours_audio_s_per_s=ours["audio_s_per_s"],
                        ours_audio_s_per_cpu_s=ours["audio_s_per_cpu_s"],
                        ratio=ours["audio_s_per_s"] / row["audio_s_per_s"],
                        cpu_ratio=ours["audio_s_per_cpu_s"] / row["audio_s_per_cpu_s"],
                    )
                rows.append(row)
    return rows
