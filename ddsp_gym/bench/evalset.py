"""An honest evaluation set for ``match``: sounds this project did not make.

:func:`build_evalset` renders each case with third-party software from Debian, run as a
program (nothing linked): sampled General MIDI instruments by FluidSynth at known notes,
vowels by the espeak-ng speech synthesizer, and effects by sox at recorded settings.
Each case keeps its ground truth where the generator has one (the note, the effect's
settings) and an independent analysis where it does not (the vowels' LPC formants,
the reverbs' RT60 measured on the effect's impulse response). No case is tuned for;
``bench match`` reports every one.

The files are generated, never committed: a few seconds of work per case.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from ddsp_gym.analysis import rt60_of_impulse_response

SAMPLE_RATE = 16_000
SOUNDFONT = "/usr/share/sounds/sf2/TimGM6mb.sf2"
# Program (General MIDI, 0-based) -> name, for the instrument cases.
GM_PROGRAMS = {
    0: "acoustic grand piano",
    11: "vibraphone",
    19: "church organ",
    24: "nylon guitar",
    40: "violin",
    56: "trumpet",
    73: "flute",
    80: "square lead",
}
NOTES = (57, 69)  # A3 (220 Hz) and A4 (440 Hz): inside every pitched plant's range
# espeak-ng phoneme mnemonics of sustained vowels, and two voices (pitch differs).
VOWELS = {"a": "A:", "i": "i:", "u": "u:", "e": "E", "o": "O:"}
VOICES = ("en-us", "en-us+f3")
TOOLS = {"fluidsynth": "fluidsynth", "espeak-ng": "espeak-ng", "sox": "sox"}


class EvalSetError(RuntimeError):
    """A generator program is missing or failed (the message names the Debian package)."""


@dataclass(frozen=True)
class Case:
    """One target: its file, the plant that should match it, and what is known of it."""

    name: str
    kind: str  # one of ddsp_gym.bench.commands.MATCH_KINDS
    plant: str
    target: str  # file name inside the set's folder
    truth: dict[str, float]
    input: str | None = None  # the dry signal of an effect
    source: str = ""  # the program and settings that made it
    notes: dict[str, Any] = field(default_factory=dict)


def _run(argv: Sequence[str]) -> None:
    tool = argv[0]
    if shutil.which(tool) is None:
        raise EvalSetError(f"{tool} is not installed: apt-get install {TOOLS[tool]}")
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise EvalSetError(f"{' '.join(argv)} failed: {done.stderr.strip()[-400:]}")


def _read_mono(path: Path) -> np.ndarray:
    import warnings

    from ddsp_gym.audio_io import AudioConversionWarning, load_audio

    with warnings.catch_warnings():  # the generators' rates and channels are expected
        warnings.simplefilter("ignore", AudioConversionWarning)
        return load_audio(path, SAMPLE_RATE)


def _write(path: Path, audio: np.ndarray) -> None:
    sf.write(path, np.asarray(audio, np.float32), SAMPLE_RATE, subtype="FLOAT")


def midi_note_hz(note: int) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def fluidsynth_note(program: int, note: int, folder: Path) -> Path:
    """FluidSynth plays General MIDI ``program``'s ``note`` for 1 s (then its release)
    with TimGM6mb into ``folder``/raw.wav, at FluidSynth's own rate and channels."""
    import mido

    song = mido.MidiFile(ticks_per_beat=480)  # 120 bpm: 960 ticks = 1 s
    track = mido.MidiTrack()
    song.tracks.append(track)
    track.append(mido.Message("program_change", program=program, time=0))
    track.append(mido.Message("note_on", note=note, velocity=100, time=0))
    track.append(mido.Message("note_off", note=note, velocity=0, time=960))
    midi, raw = folder / "note.mid", folder / "raw.wav"
    song.save(midi)
    _run(["fluidsynth", "-ni", "-q", "-g", "0.8", "-r", str(SAMPLE_RATE),
          "-F", str(raw), SOUNDFONT, str(midi)])  # fmt: skip
    return raw


def instrument_cases(folder: Path) -> list[Case]:
    """FluidSynth plays one 1 s note of each program at each of :data:`NOTES`."""
    if not Path(SOUNDFONT).is_file():
        raise EvalSetError(f"{SOUNDFONT} is missing: apt-get install timgm6mb-soundfont")
    cases = []
    for program, label in GM_PROGRAMS.items():
        for note in NOTES:
            name = f"gm{program:03d}_n{note}"
            with tempfile.TemporaryDirectory() as tmp:
                raw = fluidsynth_note(program, note, Path(tmp))
                _write(folder / f"{name}.wav", _read_mono(raw))
            cases.append(
                Case(
                    name=name,
                    kind="instrument",
                    plant="fm2",
                    target=f"{name}.wav",
                    truth={"f0_hz": midi_note_hz(note)},
                    source=f"fluidsynth TimGM6mb, program {program} ({label}), note {note}",
                )
            )
    return cases


def vowel_cases(folder: Path) -> list[Case]:
    """espeak-ng says each sustained vowel in each voice; the truth is the file's LPC."""
    from ddsp_gym.analysis import lpc_formants

    cases = []
    for vowel, phoneme in VOWELS.items():
        for voice in VOICES:
            name = f"vowel_{vowel}_{voice.replace('+', '_').replace('-', '')}"
            with tempfile.TemporaryDirectory() as tmp:
                raw = Path(tmp) / "raw.wav"
                _run(["espeak-ng", "-v", voice, "-s", "60", "-w", str(raw), f"[[{phoneme}::::]]"])
                audio = _read_mono(raw)
            _write(folder / f"{name}.wav", audio)
            f1, f2, f3 = lpc_formants(audio, SAMPLE_RATE)
            cases.append(
                Case(
                    name=name,
                    kind="vowel",
                    plant="formant",
                    target=f"{name}.wav",
                    truth={"f1": f1, "f2": f2},
                    source=f"espeak-ng -v {voice} [[{phoneme}]]; truth: LPC of the file",
                    notes={"lpc_f3": f3},
                )
            )
    return cases


def dry_plucks(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """The dry signal of the effect cases: three decaying saw plucks at random pitches
    with 0.35 s of silence after them (where echoes and tails are heard)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    out = np.zeros(n)
    t = np.arange(int(0.12 * SAMPLE_RATE)) / SAMPLE_RATE
    for onset in (0.0, 0.2, 0.45):
        f = rng.uniform(150.0, 400.0)
        pluck = 0.5 * (2.0 * ((f * t) % 1.0) - 1.0) * np.exp(-t / 0.03)
        start = int(onset * SAMPLE_RATE)
        out[start : start + t.size] += pluck
    return out


def _sox_effect(folder: Path, name: str, dry: Path, effect: Sequence[str]) -> Path:
    wet = folder / f"{name}.wav"
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "wet.wav"
        _run(["sox", "-D", str(dry), str(raw), *effect])
        audio = _read_mono(raw)
    _write(wet, audio)
    return wet


def effect_cases(folder: Path) -> list[Case]:
    """sox's echo, overdrive, compand and reverb at recorded settings on :func:`dry_plucks`."""
    dry = folder / "dry.wav"
    _write(dry, dry_plucks())
    cases = []
    for ms in (90.0, 170.0, 250.0, 330.0):
        name = f"sox_echo_{ms:.0f}ms"
        _sox_effect(folder, name, dry, ["echo", "0.8", "0.8", f"{ms:g}", "0.4"])
        cases.append(Case(name, "delay", "delay", f"{name}.wav", {"time": ms / 1000.0},
                          "dry.wav", f"sox echo 0.8 0.8 {ms:g} 0.4"))  # fmt: skip
    for gain in (6.0, 12.0, 20.0, 30.0):
        name = f"sox_overdrive_{gain:.0f}db"
        _sox_effect(folder, name, dry, ["overdrive", f"{gain:g}", "0"])
        cases.append(Case(name, "distortion", "distortion", f"{name}.wav", {"drive": gain},
                          "dry.wav", f"sox overdrive {gain:g} 0"))  # fmt: skip
    for threshold, ratio in ((-40.0, 4.0), (-35.0, 8.0), (-30.0, 3.0), (-22.0, 4.0)):
        name = f"sox_compand_{-threshold:.0f}db_{ratio:.0f}to1"
        out_top = threshold + (0.0 - threshold) / ratio  # 0 dB in -> this out
        points = f"-90,-90,{threshold:g},{threshold:g},0,{out_top:g}"
        _sox_effect(folder, name, dry, ["compand", "0.005,0.1", points])
        cases.append(
            Case(
                name,
                "compressor",
                "compressor",
                f"{name}.wav",
                {"threshold": threshold, "ratio": ratio},
                "dry.wav",
                f"sox compand 0.005,0.1 {points}",
            )  # fmt: skip
        )
    impulse = folder / "impulse.wav"
    _write(impulse, np.eye(1, 3 * SAMPLE_RATE)[0])
    for reverberance, room in ((30, 50), (60, 80), (90, 100)):
        name = f"sox_reverb_{reverberance}_{room}"
        settings = ["reverb", "-w", str(reverberance), "50", str(room)]
        _sox_effect(folder, name, dry, settings)
        with tempfile.TemporaryDirectory() as tmp:
            ir_path = _sox_effect(Path(tmp), "ir", impulse, settings)
            rt60 = rt60_of_impulse_response(_read_mono(ir_path), SAMPLE_RATE)
        how = f"sox {' '.join(settings)}; truth: T20 of its impulse response"
        cases.append(Case(name, "reverb", "reverb", f"{name}.wav", {"rt60": rt60}, "dry.wav", how))
    impulse.unlink()
    return cases


# The chain cases: sox plays a sawtooth note, low-passes it and echoes it, in that order
# (saw -> filter -> effect, as ``saw_chain``). Per case: MIDI note, low-pass cutoff (Hz)
# and Q, echo delay (ms); spread over the plant's ranges, none tuned for.
CHAIN_SETTINGS = (
    (45, 600.0, 0.707, 250.0),
    (52, 2000.0, 2.0, 120.0),
    (57, 1000.0, 1.0, 300.0),
    (60, 3000.0, 0.707, 180.0),
    (64, 1500.0, 3.0, 90.0),
    (69, 2500.0, 1.5, 200.0),
)
# The note's length, then silence for the filter's and the echo's tails: long enough for
# the pitch analysis to hear a 110 Hz note as pitched, short enough that most echoes
# start after the note ends (an echo hidden under its note can be mistaken for a longer
# note).
CHAIN_NOTE_S = 0.2
CHAIN_RATE = 48_000  # sox renders at this rate (its saw is not band-limited); read at 16 kHz
ECHO_GAINS = (0.8, 0.8, 0.4)  # sox echo's gain-in, gain-out and the echo's decay


def chain_cases(
    folder: Path, settings: Sequence[tuple[int, float, float, float]] = CHAIN_SETTINGS
) -> list[Case]:
    """sox: ``synth`` sawtooth note (5 ms linear fades) -> ``lowpass`` (the RBJ biquad at a
    known cutoff and Q) -> ``echo`` (one echo at a known delay), per ``settings`` (MIDI
    note, cutoff Hz, Q, echo ms; :data:`CHAIN_SETTINGS` in the evaluation set).

    Truth: the note's f0, the cutoff and Q, the echo's time and its wet share (sox's echo
    adds decay x(t - d) to gain_in x, so mix = decay / (gain_in + decay)), the length.
    """
    gain_in, gain_out, decay = ECHO_GAINS
    cases = []
    for note, cutoff, q, ms in settings:
        f0 = midi_note_hz(note)
        name = f"sox_chain_n{note}_lp{cutoff:.0f}_q{q:g}_echo{ms:.0f}ms"
        effects = [
            "synth", f"{CHAIN_NOTE_S:g}", "sawtooth", f"{f0:.4f}",
            "fade", "t", "0.005", f"{CHAIN_NOTE_S:g}", "0.005",
            "vol", "0.4", "pad", "0", f"{1.0 - CHAIN_NOTE_S:g}",
            "lowpass", f"{cutoff:g}", f"{q:g}q",
            "echo", f"{gain_in:g}", f"{gain_out:g}", f"{ms:g}", f"{decay:g}",
        ]  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "raw.wav"
            _run(["sox", "-D", "-n", "-r", str(CHAIN_RATE), "-c", "1", str(raw), *effects])
            _write(folder / f"{name}.wav", _read_mono(raw))
        truth = {"f0_hz": f0, "cutoff": cutoff, "resonance": q, "time": ms / 1000.0,
                 "mix": decay / (gain_in + decay), "length": CHAIN_NOTE_S}  # fmt: skip
        source = "sox -n -r 48000 out.wav " + " ".join(effects)
        cases.append(Case(name, "chain", "saw_chain", f"{name}.wav", truth, source=source))
    return cases


BUILDERS: dict[str, Callable[[Path], list[Case]]] = {
    "instrument": instrument_cases,
    "vowel": vowel_cases,
    "effect": effect_cases,
    "chain": chain_cases,
}


def build_evalset(folder: str | Path, groups: Sequence[str] = tuple(BUILDERS)) -> list[Case]:
    """Render the evaluation set into ``folder`` and write its ``cases.json``."""
    unknown = sorted(set(groups) - set(BUILDERS))
    if unknown:
        raise ValueError(f"unknown case groups {unknown}; choose from {sorted(BUILDERS)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cases = [case for group in groups for case in BUILDERS[group](folder)]
    (folder / "cases.json").write_text(json.dumps([asdict(c) for c in cases], indent=2))
    return cases


def load_evalset(folder: str | Path) -> list[Case]:
    path = Path(folder) / "cases.json"
    if not path.is_file():
        raise EvalSetError(f"{path} is missing: build the set first (ddsp-gym bench match)")
    return [Case(**entry) for entry in json.loads(path.read_text())]
