"""Vowel formant targets: Peterson & Barney's adult male averages and a bandwidth rule."""

from __future__ import annotations

import numpy as np

# Average formant frequencies F1, F2, F3 in Hz of ten American English vowels
# spoken by 33 adult men: G. E. Peterson and H. L. Barney, "Control methods used
# in a study of the vowels", J. Acoust. Soc. Am. 24(2), 175-184 (1952), Table II.
# Keys are IPA symbols; the paper's key words in the comments.
PETERSON_BARNEY_MALE: dict[str, tuple[float, float, float]] = {
    "i": (270.0, 2290.0, 3010.0),  # heed
    "ɪ": (390.0, 1990.0, 2550.0),  # hid
    "ɛ": (530.0, 1840.0, 2480.0),  # head
    "æ": (660.0, 1720.0, 2410.0),  # had
    "ɑ": (730.0, 1090.0, 2440.0),  # hod
    "ɔ": (570.0, 840.0, 2410.0),  # hawed
    "ʊ": (440.0, 1020.0, 2240.0),  # hood
    "u": (300.0, 870.0, 2240.0),  # who'd
    "ʌ": (640.0, 1190.0, 2390.0),  # hud
    "ɝ": (490.0, 1350.0, 1690.0),  # heard
}

VOWELS: tuple[str, ...] = tuple(PETERSON_BARNEY_MALE)

# Bandwidth rule for the targets: B = 50 Hz + 0.04 * F. A rule of thumb of this
# project, not a published fit: it grows with the centre frequency as measured
# vowel bandwidths do, giving B1 about 60-80 Hz, B2 about 85-140 Hz and B3 about
# 120-170 Hz for the table above.
BANDWIDTH_BASE_HZ = 50.0
BANDWIDTH_SLOPE = 0.04


def formant_bandwidth(freq_hz: np.ndarray | float) -> np.ndarray:
    """The target bandwidth in Hz of a formant at ``freq_hz`` (the rule above)."""
    return BANDWIDTH_BASE_HZ + BANDWIDTH_SLOPE * np.asarray(freq_hz, np.float64)


def vowel_table() -> np.ndarray:
    """(n_vowels, 6) float32 rows [F1, F2, F3, B1, B2, B3] in Hz, in the order of VOWELS."""
    formants = np.array([PETERSON_BARNEY_MALE[v] for v in VOWELS], np.float64)
    return np.concatenate([formants, formant_bandwidth(formants)], axis=1).astype(np.float32)
