"""Play candidate patches on any backend and keep their sound as WAV files.

A candidate is a point of unit knob positions. It is played through the env API, so the
sim, plugin and hardware backends all work the same way: the env is made with
``control="absolute"`` (an action sets the knobs: unit ``u`` -> action ``2u - 1``), reset
once, and each candidate is a ``step`` followed by ``current_audio()`` (on a device, the
take just recorded; ``info["knobs"]`` has the knob values it really played, quantized to
what the device takes). On hardware every play is a new take: the synth sounds in the
room, and the recording is what the page gets.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from ddsp_gym.preference.session import KnobInfo, SessionConfig, write_atomic


@dataclass(frozen=True)
class SoundSpec:
    """What the server plays: an env id or a plant, on a backend with its options."""

    env_id: str | None = None
    plant: str | None = None
    backend: str = "sim"
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.env_id is None) == (self.plant is None):
            raise ValueError("give an env id or a plant, exactly one")
        if self.backend not in ("sim", "hardware", "plugin"):
            raise ValueError(f"backend must be sim, hardware or plugin, not {self.backend!r}")
        if self.backend == "sim" and self.options:
            raise ValueError("backend options (--hardware key=val) need backend hardware or plugin")

    def config(self, knobs: Sequence[KnobInfo], seed: int, search: str = "model") -> SessionConfig:
        return SessionConfig(
            search=search,
            knobs=tuple(knobs),
            env_id=self.env_id,
            plant=self.plant,
            backend=self.backend,
            options=dict(self.options),
            seed=seed,
        )

    @classmethod
    def of(cls, config: SessionConfig) -> SoundSpec:
        return cls(config.env_id, config.plant, config.backend, dict(config.options))


def make_env(spec: SoundSpec) -> Any:
    """The unwrapped env that plays ``spec`` with absolute control (heavy: imports JAX)."""
    import gymnasium as gym

    import ddsp_gym  # noqa: F401  (registers the envs)
    from ddsp_gym.catalog import check_env_ids, check_plant
    from ddsp_gym.envs.gym_env import DDSPEnv

    backend_kwargs: dict[str, Any] = {"backend": spec.backend}
    if spec.backend != "sim":
        backend_kwargs[spec.backend] = dict(spec.options)
    if spec.env_id is not None:
        check_env_ids([spec.env_id])
        env = gym.make(spec.env_id, control="absolute", disable_env_checker=True, **backend_kwargs)
        return env.unwrapped
    check_plant(spec.plant or "")
    from ddsp_gym.agents.match import env_settings_for_plant

    settings = env_settings_for_plant(spec.plant or "")
    return DDSPEnv(plant=spec.plant, control="absolute", **settings, **backend_kwargs)


def knob_infos(env: Any) -> tuple[KnobInfo, ...]:
    """The env's knobs as the page shows them."""
    return tuple(
        KnobInfo(s.name, float(s.low), float(s.high), s.unit, s.curve) for s in env.plant.knob_specs
    )


def candidate_digest(unit: Sequence[float]) -> str:
    """A file name for a candidate: a hash of its exact knob positions."""
    text = ",".join(repr(float(u)) for u in unit)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Played:
    """One candidate's sound: its WAV file and the physical knob values it played."""

    path: Path
    knobs: dict[str, float]
    take: dict[str, Any] | None  # a device's take report (levels, latency, sent values)


class Player:
    """Owns one env and plays candidates through it, one at a time (a device is one
    instrument; the JAX env is not thread-safe either)."""

    def __init__(self, spec: SoundSpec, seed: int = 0, env: Any = None) -> None:
        self.spec = spec
        self.env = env if env is not None else make_env(spec)
        self.knobs = knob_infos(self.env)
        self.sample_rate = int(self.env.plant.sample_rate)
        self._lock = threading.Lock()
        self._seed = seed
        self._started = False
        self._closed = False

    @property
    def is_device(self) -> bool:
        """Does a play make sound in the room (hardware)?"""
        return self.spec.backend == "hardware"

    def _start(self) -> None:
        # The env needs an episode before it steps; on a device this plays its (unused)
        # target and start: two takes, once.
        if not self._started:
            self.env.reset(seed=self._seed)
            self._started = True

    def play(self, unit: Sequence[float]) -> tuple[np.ndarray, dict[str, float], Any]:
        """Play unit knob positions -> (audio, physical knobs, the backend's take report)."""
        unit = np.clip(np.asarray(unit, dtype=np.float64), 0.0, 1.0)
        if unit.shape != (len(self.knobs),):
            raise ValueError(f"a candidate has {len(self.knobs)} knobs, got shape {unit.shape}")
        with self._lock:
            if self._closed:
                raise RuntimeError("the player is closed")
            self._start()
            action = (2.0 * unit - 1.0).astype(np.float32)
            _, _, _, _, info = self.env.step(action)
            audio = np.asarray(self.env.current_audio(), dtype=np.float32)
        knobs = {k: float(v) for k, v in info["knobs"].items()}
        return audio, knobs, info.get(self.spec.backend)

    def render_to(self, folder: Path, unit: Sequence[float], fresh: bool = False) -> Played:
        """The candidate's WAV in ``folder`` (cached by its knob positions; ``fresh`` or a
        device plays it again: every hardware play is a take heard in the room)."""
        path = folder / f"{candidate_digest(unit)}.wav"
        knobs_path = path.with_suffix(".json")
        if path.exists() and knobs_path.exists() and not fresh:
            return Played(path, json.loads(knobs_path.read_text()), None)
        audio, knobs, take = self.play(unit)
        write_atomic(path, wav_bytes(audio, self.sample_rate))
        write_atomic(knobs_path, json.dumps(knobs).encode())
        return Played(path, knobs, _jsonable(take))

    def close(self) -> None:
        """Release the backend (a device: all notes off, ports closed); idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self.env.close()


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """Mono float audio as a 16-bit PCM WAV file's bytes (peaks clipped to full scale)."""
    buffer = io.BytesIO()
    clipped = np.clip(np.nan_to_num(np.asarray(audio, np.float32)), -1.0, 1.0)
    sf.write(buffer, clipped, sample_rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def _jsonable(value: Any) -> Any:
    """A take report with numpy values turned into plain Python ones."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
