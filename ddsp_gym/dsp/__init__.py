"""Pure, unbatched JAX DSP blocks: arrays and static ints in, arrays out."""

from ddsp_gym.dsp.envelopes import adsr, attack_release, smooth_unit_clip
from ddsp_gym.dsp.filters import (
    bandpass_coeffs,
    biquad,
    highpass_coeffs,
    lowpass_coeffs,
    peaking_coeffs,
    pole_radius,
    svf_lowpass,
)
from ddsp_gym.dsp.noise import white_noise
from ddsp_gym.dsp.oscillators import (
    phase_accumulator,
    phase_increment,
    saw_naive,
    saw_polyblep,
    sine,
    square_polyblep,
)
from ddsp_gym.dsp.units import (
    amp_to_db,
    cents,
    db_to_amp,
    gain,
    hz_to_midi,
    midi_to_hz,
    mix,
    power_to_db,
)

__all__ = [
    "adsr",
    "amp_to_db",
    "attack_release",
    "bandpass_coeffs",
    "biquad",
    "cents",
    "db_to_amp",
    "gain",
    "highpass_coeffs",
    "hz_to_midi",
    "lowpass_coeffs",
    "midi_to_hz",
    "mix",
    "peaking_coeffs",
    "phase_accumulator",
    "phase_increment",
    "pole_radius",
    "power_to_db",
    "saw_naive",
    "saw_polyblep",
    "sine",
    "smooth_unit_clip",
    "square_polyblep",
    "svf_lowpass",
    "white_noise",
]
