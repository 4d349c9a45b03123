"""Perceptual coding: a sound as a plant's quantized per-frame knob trajectory (docs/coding.md).

:mod:`~ddsp_gym.coding.codec` fits and renders, :mod:`~ddsp_gym.coding.quantize` turns
tracks into bits, :mod:`~ddsp_gym.coding.codefile` reads and writes ``code.json``,
:mod:`~ddsp_gym.coding.harmonic_noise` is the codec's own plant and
:mod:`~ddsp_gym.coding.bench` the quality-vs-bitrate benchmark.
"""
