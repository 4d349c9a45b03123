"""Voices of other differentiable synth libraries, rendered in the same run for comparison.

Optional (the ``bench`` extra): SynthAX (JAX/Flax, Cherep & Singh 2023) and
torchsynth (PyTorch, Turian et al. 2021). Each offers

* ``voice``: the library's stock ``Voice`` (keyboard, LFOs, ADSRs, a sine and a
  square/saw VCO, noise, VCA, mixer): an oscillators-plus-envelopes voice,
  set beside our richest synth plant, and
* ``adsr_sine``: keyboard -> ADSR -> sine VCO -> VCA, built from the
  library's own modules: the structure of our ``adsr_tone`` plant.

A library that is not installed, or fails to run here, is reported with the
reason, never with a number.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

VOICES: tuple[str, ...] = ("voice", "adsr_sine")


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
