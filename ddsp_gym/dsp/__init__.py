"""Pure, unbatched JAX DSP blocks: arrays and static ints in, arrays out."""

from ddsp_gym.dsp.envelopes import adsr, exp_decay
from ddsp_gym.dsp.filters import (
    bandpass_coeffs,
    biquad,
    biquad_response,
    highpass_coeffs,
    lowpass_coeffs,
    peaking_coeffs,
    pole_radius,
)
from ddsp_gym.dsp.fm import feedback_operator, pm_operator
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
from ddsp_gym.dsp.voice import radiate, resonator_coeffs, rosenberg_pulse

__all__ = [
    "adsr",
    "amp_to_db",
    "bandpass_coeffs",
    "biquad",
    "biquad_response",
    "cents",
    "db_to_amp",
    "exp_decay",
    "feedback_operator",
    "gain",
    "highpass_coeffs",
    "hz_to_midi",
    "lowpass_coeffs",
    "midi_to_hz",
    "mix",
    "peaking_coeffs",
    "phase_accumulator",
    "phase_increment",
    "pm_operator",
    "pole_radius",
    "power_to_db",
    "radiate",
    "resonator_coeffs",
    "rosenberg_pulse",
    "saw_naive",
    "saw_polyblep",
    "sine",
    "square_polyblep",
    "white_noise",
]
