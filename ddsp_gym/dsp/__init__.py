"""Pure, unbatched JAX DSP blocks: arrays and static ints in, arrays out."""

from ddsp_gym.dsp.convolution import fft_convolve, gaussian_smooth
from ddsp_gym.dsp.delay import echo_impulse_response, feedback_delay, fractional_delay_kernel
from ddsp_gym.dsp.dynamics import (
    compress,
    gain_computer_db,
    mean_square,
    one_pole_step,
    smooth_branching,
)
from ddsp_gym.dsp.envelopes import adsr, attack_release, exp_decay, smooth_unit_clip
from ddsp_gym.dsp.eq import (
    apply_response,
    eq_frequencies,
    highshelf_response,
    lowshelf_response,
    peaking_response,
)
from ddsp_gym.dsp.filters import (
    bandpass_coeffs,
    biquad,
    biquad_response,
    highpass_coeffs,
    highshelf_coeffs,
    lowpass_coeffs,
    lowshelf_coeffs,
    peaking_coeffs,
    pole_radius,
    svf_lowpass,
    tilt_eq,
)
from ddsp_gym.dsp.fm import feedback_operator, pm_operator
from ddsp_gym.dsp.noise import white_noise
from ddsp_gym.dsp.oscillators import (
    cosine,
    phase_accumulator,
    phase_increment,
    saw_naive,
    saw_polyblep,
    sine,
    square_polyblep,
)
from ddsp_gym.dsp.reverb import band_noise, band_rt60, noise_reverb_ir
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
from ddsp_gym.dsp.waveshaping import tanh_drive

__all__ = [
    "adsr",
    "amp_to_db",
    "attack_release",
    "apply_response",
    "band_noise",
    "band_rt60",
    "bandpass_coeffs",
    "biquad",
    "biquad_response",
    "cents",
    "compress",
    "cosine",
    "db_to_amp",
    "echo_impulse_response",
    "exp_decay",
    "eq_frequencies",
    "feedback_delay",
    "feedback_operator",
    "fft_convolve",
    "fractional_delay_kernel",
    "gain",
    "gain_computer_db",
    "gaussian_smooth",
    "highpass_coeffs",
    "highshelf_coeffs",
    "highshelf_response",
    "hz_to_midi",
    "lowpass_coeffs",
    "lowshelf_coeffs",
    "lowshelf_response",
    "mean_square",
    "midi_to_hz",
    "mix",
    "noise_reverb_ir",
    "one_pole_step",
    "peaking_coeffs",
    "peaking_response",
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
    "smooth_branching",
    "smooth_unit_clip",
    "square_polyblep",
    "svf_lowpass",
    "tanh_drive",
    "tilt_eq",
    "white_noise",
]
