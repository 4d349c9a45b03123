"""Fit a plant to an audio file: the engine behind ``ddsp-gym match``."""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from ddsp_gym.agents.coarse import CoarseResult, coarse_search, n_starts
from ddsp_gym.agents.gradient import GradientAgent
from ddsp_gym.agents.staged import StagedFit, is_staged, stage_budgets, staged_fit
from ddsp_gym.analysis import (
    ECHO_HOLD_STRENGTH,
    PREROLL_S,
    RecordingAnalysis,
    analyze,
    compressor_curve,
    decay_rt60_s,
    echo_delay_s,
    first_note_end_s,
    has_level_knob,
    lpc_formants,
    prepare_target,
    sounding_rms_dbfs,
)
from ddsp_gym.audio_io import AudioConversionWarning, load_audio, save_audio
from ddsp_gym.envs.gym_env import DDSPEnv
from ddsp_gym.plants import make_plant
from ddsp_gym.plants.base import AbstractPlant
from ddsp_gym.plants.harmonic import HarmonicNote, envelope_knobs_from_audio
from ddsp_gym.plotting import save_comparison_png
from ddsp_gym.registry import load_registry
from ddsp_gym.tasks import TASKS

AGENTS = ("gradient",)
# Knobs that set a plant's pitch in Hz: the target's measured f0 places them.
PITCH_KNOBS = ("frequency", "carrier_hz")
# With the level fitted by alternation, this share of the steps goes to the first round
# (at the plant's mid-travel level), the rest to a round at the fitted sound's level.
FIRST_ROUND_SHARE = 0.5
LEVEL_TOLERANCE_DB = 1.0  # a second round only when the fit's level is this far off
# Plants that match recordings with another task than their env's. The formant env's
# task compares smoothed power spectra, which fits the plant's own renders but not a
# recording: there the speaker's source (pitch, tilt) differs from the plant's, and that
# difference outweighs the formants' (issue 25). lpc_envelope compares all-pole
# envelopes with level and tilt removed, i.e. the vocal tract without the source.
MATCH_TASKS: dict[str, dict[str, Any]] = {"formant": {"task": "lpc_envelope"}}
# Plants whose formant resonators (knobs f1.., b1..) are in cascade: they commute, so a
# setting whose formants crossed during the fit is reported in frequency order.
CASCADE_FORMANT_PLANTS = ("formant",)

# A reverb's RT60 measured on at least this much free decay holds the rt60 knob: the
# noise reverb is no model of every room (sox's Freeverb builds up and decays unevenly),
# and its decay distance then prefers a shorter, drier room than the one measured.
RT60_HOLD_TAIL_S = 0.25
# The harmonic note's even_db is fitted only where the analysis measures even partials
# at least this far from their odd neighbours (measured_knobs).
EVEN_STRUCTURE_DB = 10.0
# Plant settings for matching recordings, over the registered env's plant_config. The
# envs' ranges suit their own seeded targets; recordings need the knobs real effects
# have (issue 25), and a registered env's dynamics cannot change without a version bump,
# so these are plant config options that only ``match`` turns on:
# - compressor: threshold referred to the input (no -10 dB trim), -60..0 dBFS, make-up
#   -12..24 dB, knee from 0 dB; a peak follower before the static curve (the common
#   "compander" design, and sox compand's), starting at 0 dB as sox's documented default
#   initial volume does (a recording's compressor state before its first sample is
#   unknown; a follower starting at silence differs only in the first ~3 release times).
# - distortion: output level up to 0 dB (its curve: MATCH_PLANT_VARIANTS).
# - reverb: decay times to 8 s (halls, plates).
# - formant: a sawtooth source, whose harmonic levels are a straight line in octaves
#   (lpc_envelope removes such a tilt), not the Rosenberg pulse, whose first harmonic
#   lies ~5 dB under the line through its others: at a high voice's f0 (~200 Hz, F1
#   between the first two harmonics) that dip pulled the fitted F1 low (docs/matching.md).
MATCH_PLANT_CONFIG: dict[str, dict[str, Any]] = {
    "compressor": {
        "input_trim_db": 0.0,
        "detector": "peak",
        "initial_level_db": 0.0,
        "threshold_range": (-60.0, 0.0),
        "makeup_range": (-12.0, 24.0),
        # A knee is no setting a recording reveals (sox's is 0.01 dB); the dynamics
        # distance trades a wide knee against threshold and ratio, so it spans 0-6 dB.
        "knee_range": (0.0, 6.0),
    },
    "distortion": {"level_range": (-30.0, 0.0)},
    "reverb": {"rt60_range": (0.1, 8.0)},
    "formant": {"source": "sawtooth"},
}
# Plant variants `match` tries in turn, each with an equal share of the steps, keeping
# the closest fit (issue 25's plant choice): a clipper's curve is a model choice a
# recording does not announce; tanh is the env's, sox overdrive's cubic with its dry
# blend the other common design (a tanh clipper fits a cubic one's gain 3-4 dB high).
MATCH_PLANT_VARIANTS: dict[str, tuple[dict[str, Any], ...]] = {
    "distortion": ({"shaper": "tanh"}, {"shaper": "sox"}),
}
# Plant choice (``match`` without a plant): the candidates for each kind of target, as
# the analysis classifies it (:func:`target_kind`). A pitched sound is fitted by the
# harmonic note (any static spectrum, stretched partials, a decay per partial) and by
# 2-operator FM (the bell recipe); an unpitched one is noise the harmonic note's noise
# bands shape. The formant voice is no candidate: its knobs are what a user asks for
# by name (`--plant formant`), its fit takes ~10x as long, and in a trial on three of
# the evaluation set's notes it sounded further off than the harmonic note. With a dry
# signal the effects are the candidates; a wet signal that is the dry one at another
# level is a gain stage.
PLANT_CANDIDATES: dict[str, tuple[str, ...]] = {
    "pitched": ("harmonic", "fm2"),
    "unpitched": ("harmonic",),
    "processed": ("delay", "reverb", "compressor", "distortion"),
    "dry": ("gain",),
}
# A wet signal this correlated with its dry one (at lag 0) is the dry one, only louder
# or quieter: no effect plant has anything to fit.
DRY_CORRELATION = 0.999
# The knobs the coarse stage searches, per plant (the others stay where the analysis put
# them): the note's shape in time and its broad levels, the things a coarse spectrogram
# shows; the harmonic envelope's 16 points are measured and left to the gradient. A plant
# not listed has every free knob searched.
COARSE_KNOBS: dict[str, tuple[str, ...]] = {
    "harmonic": ("level", "inharmonicity", "glide_cents", "attack", "decay", "damping",
                 "noise_level", "noise_decay"),
}  # fmt: skip
# Coarse-to-fine (docs/matching.md): this share of a plant's queries goes to the coarse
# stage (CMA-ES on a coarse loss, agents/coarse.py), the rest to gradient refinement.
COARSE_SHARE = 0.3


@dataclass
class MatchResult:
    """The best setting found: its knobs (physical units), its distance from the target,
    whether that distance reached the task's success threshold, and the files written."""

    knobs: dict[str, float]
    distance: float  # the best distance of the run (the reported knobs')
    distance_unit: str
    success: bool  # distance <= success_threshold
    steps: int
    outputs: dict[str, str]
    success_threshold: float
    analysis: RecordingAnalysis | None = None
    adjustments: tuple[str, ...] = ()  # what was done to the target before fitting
    plant: str | None = None  # the plant chosen, where match chose (else the one given)
    candidates: tuple[dict[str, Any], ...] = ()  # plant choice: every candidate's row
    posterior: Any = None  # a ddsp_gym.posterior.Posterior with ``posterior=True``


def env_settings_for_plant(plant: str, recordings: bool = True) -> dict[str, Any]:
    """The task and its settings of the first registered env that matches with ``plant``.

    A plant is matched with the distance its own demo uses (e.g. fm2 with the FM
    bell's log-mel + flatness distance); plants only goal tasks use (they ignore the
    target) and plants no env uses get MR-STFT. For ``recordings`` (``match`` with its
    analysis) :data:`MATCH_TASKS` overrides the task (and with it the task's settings;
    the env's plant config stays).
    """
    settings: dict[str, Any] = {"task": "spectrum"}
    for entry in load_registry():
        if entry.kwargs.get("plant") == plant and not TASKS[entry.kwargs["task"]].is_goal:
            keep = ("task", "task_config", "plant_config", "success_threshold")
            settings = {k: v for k, v in entry.kwargs.items() if k in keep}
            break
    if recordings and plant in MATCH_TASKS:
        plant_config = (
            {"plant_config": settings["plant_config"]} if "plant_config" in settings else {}
        )
        settings = {**plant_config, **MATCH_TASKS[plant]}
    return settings


def ordered_formants(knobs: dict[str, float]) -> dict[str, float]:
    """``knobs`` (physical) with the (f_i, b_i) pairs renumbered in frequency order.

    Resonators in cascade commute: swapping two (frequency, bandwidth) pairs leaves the
    sound as it was. But the fit may carry f2 above f3 (their ranges overlap), and then
    "f2" names the third formant; numbered by frequency, the knobs say what the sound
    has. Each value stays in its knob's range when the ranges' ends rise with the index
    (as in :class:`~ddsp_gym.plants.formant.FormantVoice`).
    """
    indices = [i for i in range(1, 10) if f"f{i}" in knobs and f"b{i}" in knobs]
    pairs = sorted((knobs[f"f{i}"], knobs[f"b{i}"]) for i in indices)
    ordered = dict(knobs)
    for i, (freq, bandwidth) in zip(indices, pairs, strict=True):
        ordered[f"f{i}"], ordered[f"b{i}"] = freq, bandwidth
    return ordered


def measured_knobs(
    plant: AbstractPlant,
    analysis: RecordingAnalysis,
    recording: np.ndarray,
    dry: np.ndarray | None,
) -> tuple[dict[int, float], dict[int, float]]:
    """What the analysis says of the knobs: ({index: action} held, {index: action} starts).

    Held: the pitch knob at the target's f0 (where the plant has one and the f0 lies in
    its range), a delay's time at the echo spacing of the target against its dry signal
    (where the echo is clear: :data:`~ddsp_gym.analysis.ECHO_HOLD_STRENGTH`). Starts:
    formant knobs at the target's LPC formants, a peak compressor's settings at the
    hard-knee static curve read off its input and output
    (:func:`~ddsp_gym.analysis.compressor_curve`); the fit may move these. A reverb's
    ``rt60`` is the target's decay after its dry signal stops
    (:func:`~ddsp_gym.analysis.decay_rt60_s`), held where measured on at least
    :data:`RT60_HOLD_TAIL_S` of free decay, else a start. A gated note's ``length`` is
    held at its first note's end (:func:`~ddsp_gym.analysis.first_note_end_s`, from the
    fitted target's t = 0): fitted freely, the note runs on to stand in for its echo.
    """
    held, starts = {}, {}
    sr = plant.sample_rate
    names = plant.knob_names
    measured: dict[str, float] = {}  # start there
    hold: dict[str, float] = {}  # and stay there
    if any(name in ("f1", "f2", "f3") for name in names):
        measured.update(zip(("f1", "f2", "f3"), lpc_formants(recording, sr), strict=True))
    if "time" in names and dry is not None:
        delay, strength = echo_delay_s(recording, dry, sr)
        (hold if strength >= ECHO_HOLD_STRENGTH else measured)["time"] = delay
    peak_compressor = getattr(plant, "detector", None) == "peak"
    if dry is not None and ("rt60" in names or peak_compressor):
        n = min(recording.size, dry.size)
        wet, dry = recording[:n], dry[:n]
        try:
            if "rt60" in names:
                rt60, tail_s = decay_rt60_s(wet, dry, sr)
                (hold if tail_s >= RT60_HOLD_TAIL_S else measured)["rt60"] = rt60
            if peak_compressor:
                curve = compressor_curve(wet, dry, sr, plant.initial_level_db)
                measured.update(threshold=curve.threshold_db, ratio=curve.ratio,
                                makeup=curve.makeup_db, attack=curve.attack_s,
                                release=curve.release_s, knee=0.0)  # fmt: skip
        except ValueError:
            pass  # nothing to measure (a silent dry, no free decay): fit from mid-travel
    if analysis.f0_hz is not None:
        hold.update({name: analysis.f0_hz for name in PITCH_KNOBS})
    if "length" in names and dry is None:
        end = first_note_end_s(recording, sr, analysis.onset_s)
        if end is not None:  # the target starts PREROLL_S before the onset
            hold["length"] = end - max(0.0, analysis.onset_s - PREROLL_S)
    if isinstance(plant, HarmonicNote) and dry is None:
        # Its level knobs are RMS dBFS at the note's peak: the part that carries the
        # sound (the tone where a pitch was measured, else the noise) starts at the
        # recording's level, the other 30 dB under it. Its envelope starts at the
        # recording's harmonic levels.
        loud, quiet = analysis.rms_dbfs, analysis.rms_dbfs - 30.0
        pitched = analysis.f0_hz is not None
        measured.update(level=loud if pitched else quiet, noise_level=quiet if pitched else loud)
        if pitched:
            first = int(analysis.onset_s * sr)
            note = recording[first : first + plant.n_samples]
            # A parity step under EVEN_STRUCTURE_DB is the wobble of any natural
            # spectrum, not a square wave's or an organ's structure: even_db is then 0
            # (the envelope read as it is) and held, so the fit does not search a knob
            # the sound does not use.
            envelope = envelope_knobs_from_audio(
                plant, note, analysis.f0_hz, min_even_db=EVEN_STRUCTURE_DB
            )
            if envelope.get("even_db", 0.0) == 0.0:
                hold["even_db"] = envelope.pop("even_db", 0.0)
            measured.update(envelope)
    for index, spec in enumerate(plant.knob_specs):
        for values, into in ((hold, held), (measured, starts)):
            value = values.get(spec.name)
            if value is not None and np.isfinite(value) and spec.low <= value <= spec.high:
                into[index] = 2.0 * float(spec.to_unit(value)) - 1.0
    return held, starts


def _render_level(plant: AbstractPlant, unit: np.ndarray, input_audio: Any, key: Any) -> float:
    audio = np.asarray(plant.render(jnp.asarray(unit, jnp.float32), key, input_audio))
    return sounding_rms_dbfs(audio, plant.sample_rate) if np.any(audio) else -120.0


def _config_fields(plant: AbstractPlant) -> set[str]:
    import dataclasses

    return {f.name for f in dataclasses.fields(plant)} if dataclasses.is_dataclass(plant) else set()


def _say(target: str | Path, notes: list[str]) -> None:
    for note in notes:
        warnings.warn(f"{target}: {note}", AudioConversionWarning, stacklevel=3)


@dataclass
class _Fit:
    """One plant variant's fit: what the result files and the report are made of."""

    plant: AbstractPlant
    settings: dict[str, Any]
    env: DDSPEnv
    result: Any  # SolveResult
    distances: list[float]
    adjustments: list[str]
    coarse: CoarseResult | None = None  # the coarse stage's report, where it ran
    staged: StagedFit | None = None  # a chained plant's stage-by-stage fit, where it ran

    @property
    def steps(self) -> int:
        """Plant queries spent: the coarse stage's renders and the gradient steps."""
        if self.staged is not None:
            return self.staged.evaluations
        return len(self.distances) + (self.coarse.evaluations if self.coarse else 0)


def _fit_variant(
    plant: str,
    settings: dict[str, Any],
    recording: np.ndarray,
    analysis: RecordingAnalysis,
    input_path: str | Path | None,
    steps: int,
    seed: int,
    analyse: bool,
    target: str | Path,
    progress: Any,
    coarse: bool = True,
    staged: bool = True,
) -> _Fit:
    """Prepare the target for one plant variant and fit it (module docstring of
    :func:`match_file`): measured knobs held, level fitted by alternation."""
    plant_obj = make_plant(plant, **dict(settings.get("plant_config", {})))
    sr, n = plant_obj.sample_rate, plant_obj.n_samples
    if analyse and analysis.f0_hz is not None and "f0_hz" in _config_fields(plant_obj):
        # A plant whose source pitch is a setting, not a knob (the formant voice):
        # its harmonics then fall where the recording's do.
        config = {**settings.get("plant_config", {}), "f0_hz": analysis.f0_hz}
        settings = {**settings, "plant_config": config}
        plant_obj = make_plant(plant, **config)
    # A plant without a level knob cannot follow the recording's level, and most
    # distances are level-sensitive: the level is then fitted by alternation (scale the
    # target to the plant's level, fit, rescale it to the fit's level, fit again).
    fit_level = (
        analyse
        and input_path is None
        and not has_level_knob(plant_obj.knob_names)
        and not TASKS[settings["task"]].level_invariant
    )
    known: dict[int, float] = {}
    start: np.ndarray | None = None
    if analyse:
        dry = None if input_path is None else load_audio(input_path, sr)
        known, starts = measured_knobs(plant_obj, analysis, recording, dry)
        start = np.zeros(len(plant_obj.knob_names))
        for index, value in {**starts, **known}.items():
            start[index] = value
    reference = None
    if fit_level:
        reference = _render_level(plant_obj, (start + 1.0) / 2.0, None, _key(seed))

    def prepared_target() -> tuple[np.ndarray, list[str]]:
        if not analyse:
            return load_audio(target, sr, n), []
        return prepare_target(
            recording, sr, n, analysis, reference, skip_silence=input_path is None
        )

    prepared, adjustments = prepared_target()
    if staged and schedule_is_staged(plant_obj, analyse, input_path, steps):
        assert start is not None
        env = DDSPEnv(plant=plant, target=prepared, input=None, expose_grad=True, **settings)
        chain = staged_fit(
            plant_obj, env, prepared, start, known, steps, seed, _key(seed), coarse,
            COARSE_SHARE, progress, progress.new_round, progress.bar.update,
        )  # fmt: skip
        return _Fit(plant_obj, settings, env, chain.result, chain.distances, adjustments,
                    staged=chain)  # fmt: skip
    schedule = coarse and analyse and input_path is None and _uses_schedule(plant, plant_obj)
    found: CoarseResult | None = None
    if schedule and n_starts(_coarse_budget(steps)):
        names = COARSE_KNOBS.get(plant, plant_obj.knob_names)
        search = [i for i, name in enumerate(plant_obj.knob_names) if name in names]
        found = coarse_search(
            plant_obj, prepared, start, known, _coarse_budget(steps), seed, _key(seed), search
        )
        start, steps = found.action, steps - found.evaluations
        progress.bar.update(found.evaluations)
    rounds = [steps] if not fit_level or steps < 2 else _split(steps)
    result, env, distances = None, None, []
    agent = GradientAgent()
    for round_steps in rounds:
        progress.new_round()  # each round scores against its own scaling of the target
        if fit_level and env is not None:
            level = _render_level(plant_obj, (start + 1.0) / 2.0, None, env.state.render_key)
            if abs(level - reference) >= LEVEL_TOLERANCE_DB:
                reference = level
                prepared, adjustments = prepared_target()
        env = DDSPEnv(plant=plant, target=prepared, input=input_path, expose_grad=True, **settings)
        result = agent.solve(
            env, seed=seed, max_steps=round_steps, callback=progress, start=start, known=known
        )
        distances += result.distances
        start = np.asarray(result.best_action, np.float64)
        # The next round refines: it goes on at the step size this one ended with.
        rate = agent.learning_rate * agent.decay**result.steps
        agent = replace(agent, learning_rate=max(agent.min_learning_rate, rate))
    return _Fit(plant_obj, settings, env, result, distances, adjustments, found)


def schedule_is_staged(
    plant: AbstractPlant, analyse: bool, input_path: str | Path | None, steps: int
) -> bool:
    """Is ``plant`` fitted stage by stage (:mod:`ddsp_gym.agents.staged`)? A chained
    source plant matched with its analysis, given a step for every stage and one more."""
    if not (analyse and input_path is None and is_staged(plant)):
        return False
    return steps >= len(plant.stages) + 1  # type: ignore[attr-defined]


def _coarse_budget(steps: int) -> int:
    return int(steps * COARSE_SHARE)


def _uses_schedule(plant: str, plant_obj: AbstractPlant) -> bool:
    """Sources take the coarse stage (without a dry signal); effects do not (their knobs
    are mostly measured off wet against dry, and a smoothed spectrogram hides what they
    do), nor plants matched with their own source-free task (:data:`MATCH_TASKS`: a
    coarse log-mel loss would charge the source difference that task ignores)."""
    return not plant_obj.needs_input and plant not in MATCH_TASKS


class _Progress:
    """The progress bar's callback: it shows the best distance of the current round (the
    one the result reports, whatever the last step, a restart or an overshoot, scored)."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.best = math.inf

    def new_round(self) -> None:
        self.best = math.inf

    def __call__(self, step: int, info: dict[str, Any]) -> bool:
        self.best = min(self.best, float(info["distance"]))
        self.bar.update(1)
        self.bar.set_postfix(best=f"{self.best:.4g}")
        return True


def _shares(steps: int, parts: int) -> list[int]:
    """``steps`` split into ``parts`` near-equal shares (the first take the remainder)."""
    base, extra = divmod(steps, parts)
    return [base + (i < extra) for i in range(parts)]


def _split(steps: int) -> list[int]:
    first = max(1, int(steps * FIRST_ROUND_SHARE))
    return [first, steps - first]


def _key(seed: int) -> Any:
    import jax

    return jax.random.PRNGKey(seed)


def match_file(
    target: str | Path,
    plant: str | None,
    out_dir: str | Path,
    input_path: str | Path | None = None,
    agent: str = "gradient",
    steps: int = 300,
    seed: int = 0,
    task: str | None = None,
    show_progress: bool = True,
    analyse: bool = True,
    posterior: bool = False,
    coarse: bool = True,
    staged: bool = True,
) -> MatchResult:
    """Fit ``plant``'s knobs to the sound in ``target`` and write the results to ``out_dir``.

    Writes ``knobs.json`` (physical values), ``result.wav`` (the resynthesis),
    ``target.wav`` (the target as the plant hears it: mono, resampled, from its
    onset, cut or padded to the plant's duration, at the fitted level) and
    ``comparison.png`` (spectrograms and the loss curve).

    The target is analysed first (:mod:`ddsp_gym.analysis`): its leading silence is
    skipped, a measured pitch holds the plant's pitch knob, a plant without a level knob
    fits the recording's level by alternation, effects get the wide, input-referred
    plant settings of :data:`MATCH_PLANT_CONFIG`, and a plant with variants
    (:data:`MATCH_PLANT_VARIANTS`) is fitted in each, the closest kept. Sources then go
    coarse to fine: :data:`COARSE_SHARE` of the queries to CMA-ES on a coarse loss
    (:mod:`ddsp_gym.agents.coarse`), the rest to the gradient on the fine one.
    ``analyse=False`` fits the file as it is, from the env's random start (the match of
    earlier releases, kept for comparison in ``bench match``).

    ``coarse=False`` skips the coarse stage (all of a source's queries go to the
    gradient): the ablation of ``bench match --coarse-ablation``.

    A chained plant (one that declares ``stages``, such as ``saw_chain``) is fitted stage
    by stage, earlier stages frozen, then all together (:mod:`ddsp_gym.agents.staged`);
    ``staged=False`` fits it with the single-stage schedule instead (for comparison).

    ``plant=None`` chooses the plant (:func:`choose_plant`): each candidate of the
    target's kind gets an equal share of ``steps``, the one that sounds closest is kept.

    ``posterior=True`` then samples p(knobs | target) by NUTS from the (kept) fit
    (:func:`add_posterior`): per-knob median and 90 % interval in ``knobs.json`` and a
    corner plot, ``corner.png``.
    """
    if agent not in AGENTS:
        raise ValueError(f"unknown agent {agent!r}; choose one of {AGENTS}")
    if steps < 1:
        raise ValueError(f"--steps must be at least 1, got {steps}")
    if plant is None:
        return choose_plant(
            target, out_dir, input_path, steps, seed, task, show_progress, posterior, coarse
        )
    fit, fits, variants, analysis = _fit_plant(
        target, plant, input_path, steps, seed, task, show_progress, analyse, coarse, staged
    )
    _say(target, fit.adjustments)
    result = _write_outputs(fit, fits, variants, plant, analysis, seed, Path(out_dir), posterior)
    if fit.staged is not None:
        _amend_report(result, {"schedule": _staged_report(fit, steps)})
    elif fit.coarse is not None:
        _amend_report(result, {"schedule": _schedule_report(fit, steps)})
    return replace(result, plant=plant)


def _schedule_report(fit: _Fit, steps: int) -> dict[str, Any]:
    """What each stage of the coarse-to-fine schedule did (knobs.json's ``schedule``)."""
    assert fit.coarse is not None
    return {
        "stages": ["analysis: pitch held, level placed", "coarse: CMA-ES", "fine: gradient"],
        "coarse_share": COARSE_SHARE,
        **fit.coarse.to_json(),
        "fine_steps": len(fit.distances),
        "fine_distance": fit.result.best_distance,
        "steps": steps,
    }


def _staged_report(fit: _Fit, steps: int) -> dict[str, Any]:
    """What each stage of a staged fit did (knobs.json's ``schedule``)."""
    assert fit.staged is not None
    from ddsp_gym.agents.staged import MIN_COARSE, SCAN_POINTS, TOGETHER_SHARE

    stages = fit.staged.stages
    budgets = stage_budgets(steps, len(stages) - 1)
    split = ", ".join(f"{s.name} {b}" for s, b in zip(stages, budgets, strict=True))
    return {
        "kind": "staged",
        "stages": [s.to_json(fit.plant) for s in stages],
        "budget_split": f"{steps} queries: {split} (the refinement {TOGETHER_SHARE:.0%}, "
        f"the stages equal shares of the rest; a scanned stage's scan {SCAN_POINTS} renders "
        f"of its share; each stage's coarse CMA-ES {COARSE_SHARE:.0%} of the rest, at least "
        f"one run of {MIN_COARSE} renders where that leaves the gradient half the stage)",
        "steps": steps,
    }


def _amend_report(result: MatchResult, extra: dict[str, Any]) -> None:
    """Add ``extra`` to the knobs.json ``result`` wrote (keeps :func:`_write_outputs` as
    it is for every plant)."""
    path = Path(result.outputs["knobs"])
    report = json.loads(path.read_text())
    report.update(extra)
    path.write_text(json.dumps(report, indent=2, default=list))


def _fit_plant(
    target: str | Path,
    plant: str,
    input_path: str | Path | None,
    steps: int,
    seed: int,
    task: str | None,
    show_progress: bool,
    analyse: bool,
    coarse: bool = True,
    staged: bool = True,
) -> tuple[_Fit, list[_Fit], tuple[dict[str, Any], ...], RecordingAnalysis]:
    """Fit one plant (each of its variants): (best fit, all fits, variants, analysis)."""
    settings = env_settings_for_plant(plant, recordings=analyse)
    if task is not None:
        if task in TASKS and TASKS[task].is_goal:
            raise ValueError(
                f"task {task!r} is a goal (it scores a property of the sound and ignores the "
                "target), so it cannot match a recording; use a matching task such as 'spectrum'"
            )
        settings = {"task": task}
    variants: tuple[dict[str, Any], ...] = ({},)
    if analyse:
        config = {**settings.get("plant_config", {}), **MATCH_PLANT_CONFIG.get(plant, {})}
        settings = {**settings, "plant_config": config}
        variants = MATCH_PLANT_VARIANTS.get(plant, variants)
    if steps < len(variants):
        variants = variants[:1]
    sr = make_plant(plant, **dict(settings.get("plant_config", {}))).sample_rate
    recording = load_audio(target, sr)
    analysis = analyze(recording, sr)
    bar = tqdm(
        total=steps,
        desc=f"matching {Path(target).name} with {plant}",
        unit="step",
        disable=not show_progress,
    )
    progress = _Progress(bar)
    fits = []
    for variant, share in zip(variants, _shares(steps, len(variants)), strict=True):
        config = {**settings.get("plant_config", {}), **variant}
        fits.append(
            _fit_variant(
                plant,
                {**settings, "plant_config": config},
                recording,
                analysis,
                input_path,
                share,
                seed,
                analyse,
                target,
                progress,
                coarse,
                staged,
            )  # fmt: skip
        )
    bar.close()
    fit = min(fits, key=lambda f: f.result.best_distance)
    return fit, fits, variants, analysis


def heard_distance(audio: np.ndarray, target: np.ndarray, sample_rate: int) -> float:
    """Log-mel L1 distance (dB) of two sounds each normalised to 0 dBFS RMS, over their
    common length: what a listener hears differ, whatever the level. It compares plants
    whose own distances differ in kind and unit; no fit optimises exactly this."""
    from ddsp_gym.features.distances import log_mel_distance

    def normalised(x: np.ndarray) -> Any:
        x = np.asarray(x, np.float64)
        return jnp.asarray(x / max(np.sqrt(np.mean(x**2)), 1e-9), jnp.float32)

    n = min(audio.size, target.size)
    return float(log_mel_distance(normalised(audio[:n]), normalised(target[:n]), sample_rate))


def target_kind(recording: np.ndarray, analysis: RecordingAnalysis, dry: np.ndarray | None) -> str:
    """The target's kind, a key of :data:`PLANT_CANDIDATES`.

    With a dry signal: "dry" when the wet one is the dry one at another level (their
    correlation at lag 0 reaches :data:`DRY_CORRELATION`), else "processed". Without:
    "pitched" when the analysis measured a pitch, else "unpitched".
    """
    if dry is not None:
        n = min(recording.size, dry.size)
        wet, dry = np.asarray(recording[:n], np.float64), np.asarray(dry[:n], np.float64)
        norm = np.sqrt(np.sum(wet**2) * np.sum(dry**2))
        correlation = float(np.sum(wet * dry) / norm) if norm > 0 else 0.0
        return "dry" if correlation >= DRY_CORRELATION else "processed"
    return "pitched" if analysis.f0_hz is not None else "unpitched"


def choose_plant(
    target: str | Path,
    out_dir: str | Path,
    input_path: str | Path | None = None,
    steps: int = 300,
    seed: int = 0,
    task: str | None = None,
    show_progress: bool = True,
    posterior: bool = False,
    coarse: bool = True,
) -> MatchResult:
    """Fit every candidate plant of the target's kind; keep the one that sounds closest.

    The kind (:func:`target_kind`) picks the candidates (:data:`PLANT_CANDIDATES`); each
    gets an equal share of ``steps`` (the first the remainder) and is fitted as
    ``match --plant`` fits it. The plants' own distances differ in kind, so they are
    compared on :func:`heard_distance` over the span all their renders cover. The kept
    fit's files are written; knobs.json's ``plant_choice`` lists every candidate.
    """
    sample_rate = make_plant(PLANT_CANDIDATES["unpitched"][0]).sample_rate
    recording = load_audio(target, sample_rate)
    dry = None if input_path is None else load_audio(input_path, sample_rate)
    kind = target_kind(recording, analyze(recording, sample_rate), dry)
    candidates = PLANT_CANDIDATES[kind]
    if steps < len(candidates):
        raise ValueError(
            f"--steps {steps} is fewer than the {len(candidates)} candidate plants for a "
            f"{kind} target ({', '.join(candidates)}); give at least {len(candidates)}"
        )
    runs = []
    for name, share in zip(candidates, _shares(steps, len(candidates)), strict=True):
        began = time.perf_counter()
        fit, fits, variants, analysis = _fit_plant(
            target, name, input_path, share, seed, task, show_progress, True, coarse
        )
        audio, heard_target = _best_render(fit)
        runs.append((name, fit, fits, variants, analysis, audio, heard_target, share,
                     time.perf_counter() - began))  # fmt: skip
    span = min(r[6].size for r in runs)
    rows = [
        {
            "plant": r[0],
            "heard_db": heard_distance(r[5][:span], r[6][:span], sample_rate),
            "distance": r[1].result.best_distance,
            "distance_unit": r[1].env.task.distance_unit,
            "steps": r[7],
            "wall_s": r[8],
        }  # fmt: skip
        for r in runs
    ]
    best = min(range(len(runs)), key=lambda i: rows[i]["heard_db"])
    name, fit, fits, variants, analysis = runs[best][:5]
    _say(target, fit.adjustments)
    result = _write_outputs(fit, fits, variants, name, analysis, seed, Path(out_dir), posterior)
    choice = {"kind": kind, "chosen": name, "heard_span_s": span / sample_rate,
              "budget": f"{steps} steps split equally across {len(candidates)} plants",
              "candidates": rows}  # fmt: skip
    extra: dict[str, Any] = {"plant_choice": choice}
    if fit.coarse is not None:
        extra["schedule"] = _schedule_report(fit, rows[best]["steps"])
    _amend_report(result, extra)
    return replace(result, plant=name, candidates=tuple(rows))


def format_candidates(rows: tuple[dict[str, Any], ...], chosen: str | None) -> str:
    """The plant-choice table ``match`` prints: plant, heard distance, own distance, time."""
    owns = [f"{row['distance']:.4g} {row['distance_unit']}" for row in rows]
    width = max(len("own distance"), *map(len, owns))
    lines = [
        f"{'plant':<12} {'heard dB':>8}   {'own distance':<{width}} {'steps':>5} {'time s':>7}"
    ]
    for row, own in zip(rows, owns, strict=True):
        mark = "  <- kept" if row["plant"] == chosen else ""
        lines.append(f"{row['plant']:<12} {row['heard_db']:8.2f}   {own:<{width}} "
                     f"{row['steps']:5d} {row['wall_s']:7.1f}{mark}")  # fmt: skip
    return "\n".join(lines)


def _best_render(fit: _Fit) -> tuple[np.ndarray, np.ndarray]:
    """(the fit's best render, the target as that plant heard it)."""
    unit = (jnp.asarray(fit.result.best_action) + 1.0) / 2.0
    env = fit.env
    audio = fit.plant.render(unit, env.state.render_key, env.params.input_audio)
    return np.asarray(audio), np.asarray(env.target_audio())


def _write_outputs(
    fit: _Fit,
    fits: list[_Fit],
    variants: tuple[dict[str, Any], ...],
    plant: str,
    analysis: RecordingAnalysis,
    seed: int,
    out_dir: Path,
    posterior: bool = False,
) -> MatchResult:
    """Render the best fit and write ``result.wav``, ``target.wav``, ``comparison.png`` and
    ``knobs.json`` (with every variant's best distance, where there were several; with
    ``posterior``, the knobs' posterior summary and ``corner.png``)."""
    result, env, plant_obj = fit.result, fit.env, fit.plant
    best_knobs = (jnp.asarray(result.best_action) + 1.0) / 2.0
    audio = np.asarray(plant_obj.render(best_knobs, env.state.render_key, env.params.input_audio))
    physical = {k: float(v) for k, v in plant_obj.controls(best_knobs).items()}
    if plant in CASCADE_FORMANT_PLANTS:
        physical = ordered_formants(physical)
    target_audio = env.target_audio()
    sr = plant_obj.sample_rate
    outputs = {
        "result": str(save_audio(out_dir / "result.wav", audio, sr)),
        "target": str(save_audio(out_dir / "target.wav", target_audio, sr)),
        "png": str(
            save_comparison_png(out_dir / "comparison.png", audio, target_audio, sr, fit.distances)
        ),
    }
    threshold = float(env.params.success_threshold)
    success = result.best_distance <= threshold
    steps_run = sum(f.steps for f in fits)
    report = {
        "plant": plant,
        "plant_config": fit.settings.get("plant_config", {}),
        "task": fit.settings["task"],
        "knobs": physical,
        "knob_units": {s.name: s.unit for s in plant_obj.knob_specs},
        "distance": result.best_distance,
        "distance_unit": env.task.distance_unit,
        "success_threshold": threshold,
        "success": success,
        "steps": steps_run,
        "seed": seed,
        "analysis": analysis.to_json(),
        "target_adjustments": fit.adjustments,
    }
    if len(fits) > 1:
        report["variants"] = [
            {"variant": v, "distance": f.result.best_distance}
            for v, f in zip(variants, fits, strict=True)
        ]
    post = None
    if posterior:
        post, report["posterior"], outputs["corner"] = add_posterior(
            plant_obj, best_knobs, target_audio, env, seed, out_dir, physical
        )
    outputs["knobs"] = str(out_dir / "knobs.json")
    (out_dir / "knobs.json").write_text(json.dumps(report, indent=2, default=list))
    return MatchResult(
        physical,
        result.best_distance,
        env.task.distance_unit,
        success,
        steps_run,
        outputs,
        threshold,
        analysis,
        tuple(fit.adjustments),
        posterior=post,
    )


def add_posterior(
    plant: AbstractPlant,
    best_unit: Any,
    target_audio: np.ndarray,
    env: DDSPEnv,
    seed: int,
    out_dir: Path,
    fit_knobs: dict[str, float],
) -> tuple[Any, dict[str, Any], str]:
    """Sample p(knobs | target) from the fit: (posterior, its knobs.json block, corner.png).

    The observation model of :mod:`ddsp_gym.posterior` with its noise scale set to the
    fit's own RMS feature residual (a recording is no render of the plant: the scale
    stands for all that the plant cannot make, so a poor fit gets wide intervals). One
    chain starts at the fit, the other at the best of the prior draws; the render's
    noise key and an effect's input are the fit's.
    """
    from ddsp_gym.posterior import (
        ObservationModel,
        PosteriorSampler,
        SamplerConfig,
        audio_features,
        residual_noise_db,
        save_corner_png,
    )

    model, config = ObservationModel(), SamplerConfig()
    sampler = PosteriorSampler(
        plant, model, config, key=env.state.render_key, audio_in=env.params.input_audio
    )
    y = audio_features(jnp.asarray(target_audio), plant.sample_rate, model)
    unit = np.asarray(best_unit, np.float64)
    noise = residual_noise_db(y, sampler.features(unit))
    post = sampler.run(y, seed=seed, noise_db=noise, start=unit)
    block = post.to_json(model, config)
    block["noise_from"] = "the fit's RMS log-mel residual"
    corner = save_corner_png(out_dir / "corner.png", post, fit_knobs)
    return post, block, str(corner)
