"""The plugin backend: a hosted VST2/VST3 instrument or effect, rendered offline.

``PluginBackend(plant, options).render(unit_knobs)`` sets the plugin's
parameters by name from a plugin knob map (``type: param`` entries, see
``README.md`` here), renders offline through DawDreamer (a JUCE-based host,
faster than real time and deterministic: no audio device, no clock) and returns
a :class:`PluginTake` aligned to the sim twin's timeline, at its sample rate
and length, like the hardware backend's :class:`~ddsp_gym.backends.hardware.Take`.

Instrument mode: the note of the map plays after a short pre-roll (the map's
``settle_ms``, so parameter smoothing has settled) for the twin's gate time;
the render covers the twin's duration (note and tail). Effect mode: the env's
program signal goes through the plugin.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from ddsp_gym.audio_io import fit_length
from ddsp_gym.backends import audio as audio_lib
from ddsp_gym.backends.base import AbstractBackend, Capabilities
from ddsp_gym.backends.errors import (
    PLUGIN_EXTRA_HINT,
    KnobMapError,
    PluginDependencyError,
    PluginError,
    PluginLoadError,
    PluginNotFoundError,
    SilentRenderError,
    UnknownParameterError,
)
from ddsp_gym.backends.knob_map import KnobMap, SentKnob, load_knob_map
from ddsp_gym.plants.base import AbstractPlant

MODES = ("instrument", "effect")
# Output below this counts as silent when flushing the previous take's tail
# (24-bit audio's noise floor is about -144 dBFS; -120 is far below any feature's floor).
FLUSH_DBFS = -120.0
FLUSH_CHUNK_S = 0.1
PRIME_S = 0.02  # the priming note before each instrument take (see PluginBackend._prime)
PLUGIN_SUFFIXES = (".so", ".vst3", ".vst", ".dll", ".component")


def import_dawdreamer():
    """Import DawDreamer, or say which extra to install."""
    try:
        import dawdreamer
    except ImportError as err:
        raise PluginDependencyError(
            f"the plugin backend needs DawDreamer, which does not import ({err}); "
            f"{PLUGIN_EXTRA_HINT}"
        ) from None
    return dawdreamer


def plugin_search_path() -> list[Path]:
    """Folders searched for a plugin given by file name, in order.

    ``DDSP_GYM_VST_PATH``, ``VST_PATH`` and ``VST3_PATH`` (os.pathsep-separated)
    first, then the platforms' usual folders (the VST convention for Linux is
    ``~/.vst`` and ``/usr/lib/vst``, where Debian's packages install).
    """
    folders: list[str] = []
    for var in ("DDSP_GYM_VST_PATH", "VST_PATH", "VST3_PATH"):
        folders += [p for p in os.environ.get(var, "").split(os.pathsep) if p]
    home = Path.home()
    if sys.platform == "darwin":
        folders += [f"{base}/Library/Audio/Plug-Ins/{kind}" for base in (home, "") for kind in
                    ("VST", "VST3", "Components")]  # fmt: skip
    elif sys.platform == "win32":
        common = os.environ.get("COMMONPROGRAMFILES", r"C:\Program Files\Common Files")
        folders += [os.path.join(common, "VST3"), r"C:\Program Files\VSTPlugins"]
    else:
        folders += [str(home / ".vst"), str(home / ".vst3")]
        folders += [f"{prefix}/lib/{kind}" for prefix in ("/usr/local", "/usr")
                    for kind in ("vst", "vst3")]  # fmt: skip
    return [Path(f) for f in dict.fromkeys(folders)]


def list_plugins() -> list[Path]:
    """Plugin files and bundles found in :func:`plugin_search_path`."""
    found = []
    for folder in plugin_search_path():
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir() if p.suffix in PLUGIN_SUFFIXES)
    return found


def find_plugin(name_or_path: str | Path) -> Path:
    """A plugin path, or a file name found in :func:`plugin_search_path` -> its path."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    if len(path.parts) == 1:
        for folder in plugin_search_path():
            if (folder / path).exists():
                return folder / path
    searched = ", ".join(str(f) for f in plugin_search_path())
    found = [str(p) for p in list_plugins()] or ["none"]
    raise PluginNotFoundError(
        f"no plugin {str(name_or_path)!r}: not a file, and not in the plugin folders "
        f"({searched}). Plugins found there: {', '.join(found)}. Give a path, or set "
        "DDSP_GYM_VST_PATH (Debian: `apt-get install amsynth` installs /usr/lib/vst/amsynth_vst.so)"
    )


def _libm():
    try:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("m") or ctypes.util.find_library("c")
        return ctypes, ctypes.CDLL(name) if name else None
    except (ImportError, OSError):  # pragma: no cover - exotic platforms
        return None, None


@contextlib.contextmanager
def kept_fp_environment() -> Iterator[None]:
    """Restore the thread's floating-point environment after hosted code ran.

    Some plugins switch the CPU to flush denormals to zero when loaded or run and
    leave it so (DISTRHO's 3BandEQ does on load): that would change every later
    float computation of this process (numpy, JAX, the Faust compiler, which then
    fails an interval assertion). C99's fegetenv/fesetenv save and restore it
    (on x86-64 glibc and macOS the saved state includes SSE's MXCSR).
    """
    ctypes, libm = _libm()
    if libm is None or not hasattr(libm, "fegetenv"):  # pragma: no cover
        yield
        return
    saved = ctypes.create_string_buffer(256)  # >= sizeof(fenv_t) on every ABI
    libm.fegetenv(saved)
    try:
        yield
    finally:
        libm.fesetenv(saved)


@contextlib.contextmanager
def _captured_output() -> Iterator[list[str]]:
    """Capture what native code prints on file descriptors 1 and 2 (the host's chatter).

    Yields a list that holds the captured text once the block ends, so a load
    error can quote it instead of it cluttering every ``gym.make``.
    """
    text: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield text
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            text.append(sink.read().decode(errors="replace"))


@dataclass(frozen=True)
class PluginConfig:
    """Options of ``gym.make(..., backend="plugin", plugin={...})``.

    ``path`` (a plugin file or bundle, or a file name searched in
    :func:`plugin_search_path`; None: the knob map's ``plugin``), ``knob_map``
    (packaged map name, YAML path or dict; its knobs are ``type: param``),
    ``mode`` ("instrument" | "effect"), ``sample_rate`` (the rate the plugin
    runs at; the render is resampled to the twin's; None: the twin's),
    ``block_size`` (the host's block in frames), ``settle_ms`` (pre-roll before
    the note; None: the map's), ``silence_dbfs`` (a render whose peak is below
    this is an error), ``state`` (a plugin state file to load before the init
    patch, as saved by DawDreamer's ``save_state``), ``flush_s`` (before each
    take the plugin renders silence until its output falls below
    ``FLUSH_DBFS``, at most this long: a voice or tail still sounding from the
    previous take would make renders depend on history).
    """

    path: str | None = None
    knob_map: Any = None
    mode: str = "instrument"
    sample_rate: int | None = 48_000
    block_size: int = 256
    settle_ms: float | None = None
    silence_dbfs: float = -90.0
    state: str | None = None
    flush_s: float = 5.0

    @classmethod
    def from_options(cls, options: dict[str, Any] | None) -> PluginConfig:
        options = dict(options or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown plugin option(s) {unknown}; known: {sorted(known)}")
        config = cls(**options)
        config.validate()
        return config

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"plugin mode must be one of {MODES}, not {self.mode!r}")
        if self.knob_map is None:
            raise ValueError(
                "the plugin backend needs a knob_map (a packaged map name such as "
                "'amsynth_plugin', or a YAML path) naming the plugin parameter of each knob"
            )
        if self.sample_rate is not None and not 8_000 <= int(self.sample_rate) <= 192_000:
            raise ValueError(f"sample_rate must be in [8000, 192000] Hz, not {self.sample_rate}")
        if not 16 <= int(self.block_size) <= 8192:
            raise ValueError(f"block_size must be in [16, 8192] frames, not {self.block_size}")
        if self.settle_ms is not None and self.settle_ms < 0:
            raise ValueError("settle_ms must be >= 0")


@dataclass
class PluginTake:
    """One offline render, at the twin's sample rate and length."""

    audio: np.ndarray  # (n,) float32, channels averaged to mono
    knobs: np.ndarray  # (d,) the unit positions set (not quantized: parameters are floats)
    sent: dict[str, SentKnob]
    peak_dbfs: float
    rms_dbfs: float
    render_s: float  # wall time of the render (flush included)
    flushed_s: float = 0.0  # audio rendered to let the previous take's tail die away

    def info(self) -> dict[str, Any]:
        """What the env's ``info["plugin"]`` reports: deterministic values only (the wall
        time stays in ``render_s``: Gymnasium checks that equal steps give equal infos)."""
        return {
            "sent": {name: s.value for name, s in self.sent.items()},
            "knobs_sent": {name: s.physical for name, s in self.sent.items()},
            "peak_dbfs": self.peak_dbfs,
            "rms_dbfs": self.rms_dbfs,
            "flushed_s": self.flushed_s,
        }


def plugin_parameters(path: str | Path) -> list[dict[str, Any]]:
    """The parameters of the plugin at ``path``: index, name, label, and the display text
    of the current value (what ``ddsp-gym plugin params`` prints)."""
    daw = import_dawdreamer()
    engine = daw.RenderEngine(48_000, 256)
    processor = _load(engine, find_plugin(path))
    return [
        {"index": i, "name": d["name"], "label": d.get("label", ""), "text": d.get("text", "")}
        for i, d in enumerate(processor.get_parameters_description())
    ]


def _load(engine, path: Path):
    with _captured_output() as output, kept_fp_environment():
        try:
            processor = engine.make_plugin_processor("plugin", str(path))
            error = None
        except Exception as err:  # the host raises a bare Exception/RuntimeError
            processor, error = None, err
    if processor is None:
        chatter = output[0].strip().replace("\n", " | ")
        raise PluginLoadError(
            f"{path} could not be loaded as a plugin ({error}); host output: {chatter or 'none'}. "
            "Is it a VST2/VST3 plugin for this platform and architecture?"
        )
    return processor


class PluginBackend(AbstractBackend):
    """Renders a sim twin's knobs on a hosted plugin (see the module docstring)."""

    name = "plugin"
    # Offline rendering repeats exactly; the plugin's DSP is not differentiable.
    capabilities = Capabilities(differentiable=False, deterministic=True, real_time=False)

    def __init__(self, plant: AbstractPlant, options: dict[str, Any] | PluginConfig | None):
        super().__init__(plant)
        self.config = (
            options if isinstance(options, PluginConfig) else PluginConfig.from_options(options)
        )
        self.knob_map: KnobMap = load_knob_map(self.config.knob_map)
        if not self.knob_map.is_plugin_map:
            raise KnobMapError(
                f"{self.knob_map.source}: a MIDI map; the plugin backend sets plugin parameters "
                "by name: every knob and init entry needs type: param and parameter: NAME"
            )
        self.knob_map.check_specs(plant.knob_specs)
        path = self.config.path or self.knob_map.plugin
        if path is None:
            raise ValueError(
                "no plugin given: pass plugin={'path': ...} or name it in the map's 'plugin' field"
            )
        daw = import_dawdreamer()
        self.path = find_plugin(path)
        self.sample_rate = int(self.config.sample_rate or plant.sample_rate)
        self.engine = daw.RenderEngine(self.sample_rate, int(self.config.block_size))
        self.processor = _load(self.engine, self.path)
        self.parameters = {
            self.processor.get_parameter_name(i): i
            for i in range(self.processor.get_plugin_parameter_size())
        }
        self._indices = self._parameter_indices()
        self._check_channels()
        if self.config.mode == "effect":
            self._player = self.engine.make_playback_processor(
                "program", np.zeros((1, 1), np.float32)
            )
            self.engine.load_graph([(self._player, []), (self.processor, ["program"])])
        else:
            self._player = None
            self.engine.load_graph([(self.processor, [])])
        with kept_fp_environment():
            self._prepare()
            self._warm_up()

    # ---- set-up ---------------------------------------------------------------------

    def _parameter_indices(self) -> dict[str, int]:
        names = [m.parameter for m in self.knob_map.knobs.values()]
        names += list(self.knob_map.init_parameters())
        unknown = [n for n in dict.fromkeys(names) if n not in self.parameters]
        if unknown:
            raise UnknownParameterError(
                f"{self.knob_map.source}: the plugin {self.path.name} has no parameter(s) "
                f"{unknown}; its parameters are: {', '.join(self.parameters)}"
            )
        return {n: self.parameters[n] for n in names}

    def _check_channels(self) -> None:
        n_in = self.processor.get_num_input_channels()
        if self.config.mode == "effect" and n_in == 0:
            raise PluginLoadError(
                f"{self.path.name} has no audio inputs: it is an instrument; use mode='instrument'"
            )
        if self.processor.get_num_output_channels() == 0:
            raise PluginLoadError(f"{self.path.name} has no audio outputs")

    def _set(self, name: str, value: float) -> None:
        self.processor.set_parameter(self._indices[name], float(value))

    def prepare(self) -> None:
        """(Re)load the state file and the init patch and let any sound die away."""
        with kept_fp_environment():
            self._prepare()

    def _prepare(self) -> None:
        if self.config.state is not None:
            self.processor.load_state(str(self.config.state))
        for name, value in self.knob_map.init_parameters().items():
            self._set(name, value)
        self._flush()

    def _warm_up(self) -> None:
        """Play one note (or program) at the init patch and let it die away, once.

        A plugin's first note after loading can differ from every later one
        (amsynth's does, by up to 0.3 of full scale), which would make the first
        take of an env depend on history. Only on open: a note whose length
        differs from the takes' leaves a trace in the next take too (4e-4 on
        amsynth), while takes after takes agree to 1e-8.
        """
        self.processor.clear_midi()
        if self._player is not None:
            self._player.set_data(np.full((self._n_inputs(), 4800), 0.1, np.float32))
        else:
            gate = self.plant.gate_s
            self.processor.add_midi_note(self.knob_map.note, self.knob_map.velocity, 0.0, gate)
        self.engine.render(self.plant.duration)
        self._flush()

    def recover(self) -> None:
        """Nothing to reopen offline; kept for the env's reset() (same as the hardware's)."""

    def close(self) -> None:
        """Release the host's engine (the plugin is unloaded with it)."""
        self.processor = None
        self._player = None
        self.engine = None

    # ---- rendering -------------------------------------------------------------------

    @property
    def settle_s(self) -> float:
        ms = self.config.settle_ms if self.config.settle_ms is not None else self.knob_map.settle_ms
        return ms / 1000.0

    def _n_inputs(self) -> int:
        return max(1, self.processor.get_num_input_channels())

    def quantize(self, unit_knobs: np.ndarray) -> tuple[np.ndarray, dict[str, SentKnob]]:
        """Unit knobs -> (the positions set, what was sent per knob)."""
        specs = self.plant.knob_specs
        _, sent = self.knob_map.encode(unit_knobs, specs)
        return np.array([sent[s.name].unit for s in specs], np.float32), sent

    def render(
        self, unit_knobs: np.ndarray, input_audio: np.ndarray | None = None, key: Any = None
    ) -> PluginTake:
        """Render ``unit_knobs`` (d,) offline -> a :class:`PluginTake` (``key`` unused)."""
        if self.engine is None:
            raise RuntimeError("the plugin backend is closed")
        with kept_fp_environment():
            return self._render(unit_knobs, input_audio)

    def _render(self, unit_knobs: np.ndarray, input_audio: np.ndarray | None) -> PluginTake:
        start = time.perf_counter()
        knobs, sent = self.quantize(unit_knobs)
        for spec in self.plant.knob_specs:
            self._set(self.knob_map.knobs[spec.name].parameter, sent[spec.name].value)
        flushed_s = self._prime()
        sr, plant = self.sample_rate, self.plant
        n_pre = int(round(self.settle_s * sr))
        n_out = int(np.ceil(plant.duration * sr))
        self.processor.clear_midi()
        if self.config.mode == "effect":
            program = self._program(input_audio, n_pre, n_out)
            self._player.set_data(program)
        else:
            km = self.knob_map
            self.processor.add_midi_note(km.note, km.velocity, n_pre / sr, plant.gate_s)
        self.engine.render((n_pre + n_out) / sr)
        out = np.asarray(self.processor.get_audio(), np.float32)
        mono = out.mean(axis=0)[n_pre : n_pre + n_out]
        peak = audio_lib.peak_dbfs(mono)
        if peak < self.config.silence_dbfs:
            raise SilentRenderError(
                f"{self.path.name} rendered silence (peak {peak:.1f} dBFS, below silence_dbfs="
                f"{self.config.silence_dbfs:g}): check the map's init patch (volume, oscillators) "
                + ("and the program signal" if self.config.mode == "effect" else "and its note")
            )
        audio = fit_length(audio_lib.resample(mono, sr, plant.sample_rate), plant.n_samples)
        return PluginTake(
            audio=audio.astype(np.float32),
            knobs=knobs,
            sent=sent,
            peak_dbfs=peak,
            rms_dbfs=audio_lib.rms_dbfs(mono),
            render_s=time.perf_counter() - start,
            flushed_s=flushed_s,
        )

    def _prime(self) -> float:
        """Play a short note at the new settings, then flush; returns the seconds rendered.

        Some synths smooth parameters inside the voice, and a voice's smoother only
        runs while the voice plays: amsynth's next note would start from the previous
        take's settings and glide (up to 7e-4 of full scale in its first milliseconds).
        A priming note lets the smoothers reach the new settings first, so a take does
        not depend on the takes before it. Effects only flush.
        """
        if self._player is None:
            km = self.knob_map
            self.processor.clear_midi()
            self.processor.add_midi_note(km.note, km.velocity, 0.0, PRIME_S)
            self.engine.render(PRIME_S)
        return (PRIME_S if self._player is None else 0.0) + self._flush()

    def _flush(self) -> float:
        """Render silence until the previous take's voices and tails have died away.

        Returns the seconds rendered. A plugin still sounding after ``flush_s`` (a
        drone, a self-oscillating filter) is an error: its renders would depend on
        what it played before.
        """
        self.processor.clear_midi()
        if self._player is not None:
            self._player.set_data(np.zeros((self._n_inputs(), 64), np.float32))
        rendered = 0.0
        while True:
            self.engine.render(FLUSH_CHUNK_S)
            rendered += FLUSH_CHUNK_S
            tail = np.asarray(self.processor.get_audio(), np.float32)
            if audio_lib.peak_dbfs(tail) < FLUSH_DBFS:
                return rendered
            if rendered >= self.config.flush_s:
                raise PluginError(
                    f"{self.path.name} still sounds {rendered:.1f} s after the note "
                    f"(peak {audio_lib.peak_dbfs(tail):.1f} dBFS): renders would depend on "
                    "history; shorten its release/tail in the init patch or raise flush_s"
                )

    def _program(self, input_audio: np.ndarray | None, n_pre: int, n_out: int) -> np.ndarray:
        """The env's program signal at the plugin's rate, after ``n_pre`` frames of silence,
        on every input channel: (channels, n_pre + n_out)."""
        if input_audio is None:
            raise ValueError(
                "effect mode needs a program signal: pass input= (a WAV path or an array) to "
                "gym.make, or use an effect env, which has a default one"
            )
        up = audio_lib.resample(np.asarray(input_audio, np.float32), self.plant.sample_rate,
                                self.sample_rate)  # fmt: skip
        signal = np.concatenate([np.zeros(n_pre, np.float32), fit_length(up, n_out)])
        return np.tile(signal, (self._n_inputs(), 1))

    def describe(self) -> dict[str, Any]:
        return {
            "plugin": str(self.path),
            "mode": self.config.mode,
            "sample_rate": self.sample_rate,
            "knob_map": self.knob_map.source,
            "parameters": {n: self.knob_map.knobs[n].parameter for n in self.knob_map.knobs},
        }


# ---- can a plugin be played block by block? (live mode's question) ----------------------------

# Blocks rendered one ``render()`` at a time agree with one long render to this (of full
# scale) when the host carries the plugin's state; the plugin's own render-to-render
# repeatability is ~1e-8 (see PluginBackend._warm_up), so 1e-4 leaves room for float noise.
CONTINUITY_TOL = 1e-4


def block_continuity(
    path: str | Path = "amsynth_vst.so",
    knob_map: Any = "amsynth_plugin",
    block_s: float = 0.064,
    n_blocks: int = 3,
    sample_rate: int = 48_000,
    host_block: int = 256,
    release_param: str = "amp_release",
) -> dict[str, Any]:
    """Measure whether DawDreamer carries a plugin's state from one ``render()`` to the next.

    Live mode would render one block per call, so a held note must sound on across calls.
    Two probes on a fresh engine each (the map's init patch, its note):

    * **held**: the note on in the first of ``n_blocks`` block renders (MIDI cleared
      after it) against one render of the whole length with the same note held;
    * **tail**: a 30 ms note with a long release (``release_param`` at 0.5, amsynth's
      ~2 s) rendered alone in one block, then a block of silence: a carried state keeps
      sounding the release there.

    Returns peaks and differences (of full scale) and ``carries_state``: every block
    equal to the long render within :data:`CONTINUITY_TOL` and the tail heard.
    """
    if n_blocks < 2 or not 0 < block_s <= 1.0:
        raise ValueError(f"need n_blocks >= 2 and 0 < block_s <= 1, got {n_blocks}, {block_s}")
    daw = import_dawdreamer()
    km = load_knob_map(knob_map)
    plugin = find_plugin(path)
    n = int(round(block_s * sample_rate))
    seconds = n / sample_rate

    def fresh():
        engine = daw.RenderEngine(sample_rate, host_block)
        processor = _load(engine, plugin)
        names = {
            processor.get_parameter_name(i): i for i in range(processor.get_plugin_parameter_size())
        }
        missing = [p for p in [*km.init_parameters(), release_param] if p not in names]
        if missing:
            raise UnknownParameterError(f"{plugin.name} has no parameter(s) {missing}")
        for name, value in km.init_parameters().items():
            processor.set_parameter(names[name], float(value))
        engine.load_graph([(processor, [])])
        return engine, processor, names

    def mono(processor) -> np.ndarray:
        return np.asarray(processor.get_audio(), np.float32).mean(axis=0)[:n]

    with kept_fp_environment():
        engine, proc, _ = fresh()
        proc.add_midi_note(km.note, km.velocity, 0.0, 3600.0)  # held past the probe
        blocks = []
        for _ in range(n_blocks):
            engine.render(seconds)
            blocks.append(mono(proc))
            proc.clear_midi()  # the note-on is played; a later render must not retrigger it
        engine, proc, _ = fresh()
        proc.add_midi_note(km.note, km.velocity, 0.0, 3600.0)
        engine.render(n_blocks * seconds)
        whole = np.asarray(proc.get_audio(), np.float32).mean(axis=0)[: n_blocks * n]

        engine, proc, names = fresh()
        proc.set_parameter(names[release_param], 0.5)
        proc.add_midi_note(km.note, km.velocity, 0.0, 0.03)
        engine.render(seconds)
        first = mono(proc)
        proc.clear_midi()
        engine.render(seconds)
        after = mono(proc)

    diffs = [float(np.abs(b - whole[i * n : (i + 1) * n]).max()) for i, b in enumerate(blocks)]
    tail_end = float(np.abs(first[-n // 8 :]).max())  # the release sounding at the block's end
    tail_next = float(np.abs(after).max())
    return {
        "plugin": str(plugin),
        "dawdreamer_version": getattr(daw, "__version__", None),
        "sample_rate": sample_rate,
        "block_frames": n,
        "host_block": host_block,
        "held_peak_per_block": [float(np.abs(b).max()) for b in blocks],
        "held_whole_peak_per_block": [
            float(np.abs(whole[i * n : (i + 1) * n]).max()) for i in range(n_blocks)
        ],
        "held_max_diff_per_block": diffs,
        "tail_peak_end_of_block": tail_end,
        "tail_peak_next_block": tail_next,
        "tolerance": CONTINUITY_TOL,
        "carries_state": max(diffs) <= CONTINUITY_TOL and tail_next > 0.1 * tail_end,
    }
