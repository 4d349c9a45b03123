"""The software rig: a machine without a sound card plays "real gear" for the hardware backend.

JACK with its dummy driver is the sound card; two synths run headless as the
hardware: amsynth (an analog-modelling synth, driven by CC and pitch bend) and
FluidSynth with a General MIDI soundfont (a sample player that implements the
SoundFont NRPNs: NRPN and RPN messages are exercised for real). MIDI goes over
JACK (rtmidi's JACK API) and audio comes back through PortAudio's JACK host API
(sounddevice). The backend's code is the same that drives real gear; only the
port and device names differ (``midi_out="amsynth:midi_in"``,
``audio_in="amsynth"``; ``midi_out="fluidsynth:midi_00"``, ``audio_in="fluidsynth"``).

    python -m ddsp_gym.backends.rig start|stop|status|install
    ddsp-gym hw rig start|stop|status

``start`` installs the Debian packages when they are missing (as root), starts
``jackd`` (dummy driver, 48 kHz, 1024-frame periods, no realtime scheduling:
smaller periods gave xruns on 2 cores), waits until ``jack_lsp`` answers,
writes amsynth's controller map (CC -> parameter) from the packaged amsynth
knob maps into a scratch HOME, starts amsynth and FluidSynth without
auto-connection and waits for their ports. Process ids go to a state folder;
``stop`` ends them by id in reverse order. ``start`` is idempotent. Logs:
``<state dir>/jackd.log``, ``amsynth.log``, ``fluidsynth.log``; ``status``
counts the xruns jackd logged.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from ctypes.util import find_library
from dataclasses import dataclass
from pathlib import Path

from ddsp_gym.backends.errors import HardwareError
from ddsp_gym.backends.knob_map import load_knob_map, packaged_maps

# amsynth also installs its VST2 build (backend="plugin"); dpf-plugins-vst brings VST2
# effects (DISTRHO's 3BandEQ among them) that the plugin backend's effect-mode tests host.
# fluidsynth (2.3.1 in bookworm) plays timgm6mb-soundfont's General MIDI bank (6 MB).
DEBIAN_PACKAGES = (
    "jackd2", "jack-tools", "libportaudio2", "amsynth", "dpf-plugins-vst",
    "fluidsynth", "timgm6mb-soundfont",
)  # fmt: skip
SOUNDFONT = "/usr/share/sounds/sf2/TimGM6mb.sf2"
DATA_FILES = {
    "/usr/lib/vst/amsynth_vst.so": "amsynth",
    "/usr/lib/vst/3BandEQ-vst.so": "dpf-plugins-vst",
    SOUNDFONT: "timgm6mb-soundfont",
}
PROGRAMS = ("jackd", "jack_lsp", "jack_connect", "amsynth", "fluidsynth")


@dataclass(frozen=True)
class Synth:
    """A synth the rig runs: its program, JACK client name and ports."""

    program: str
    midi_port: str
    audio_ports: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.program


SYNTHS: dict[str, Synth] = {
    "amsynth": Synth("amsynth", "amsynth:midi_in", ("amsynth:L out", "amsynth:R out")),
    "fluidsynth": Synth(
        "fluidsynth", "fluidsynth:midi_00", ("fluidsynth:left", "fluidsynth:right")
    ),
}
SYNTH_CLIENT = "amsynth"  # the default synth (RealSynthPatch-v1's)
SYNTH_MIDI_PORT = SYNTHS[SYNTH_CLIENT].midi_port
SYNTH_AUDIO_PORTS = SYNTHS[SYNTH_CLIENT].audio_ports
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0


class RigError(HardwareError):
    """The rig could not be installed, started or stopped."""


@dataclass(frozen=True)
class RigConfig:
    """Where the rig keeps its state and how JACK runs."""

    state_dir: Path
    samplerate: int = 48_000
    period: int = 1024

    @classmethod
    def default(cls) -> RigConfig:
        folder = os.environ.get("DDSP_GYM_RIG_DIR") or f"/tmp/ddsp_gym_rig-{os.getuid()}"
        return cls(Path(folder))

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def home(self) -> Path:
        return self.state_dir / "home"


# ---- installation ------------------------------------------------------------------------


def missing_tools() -> list[str]:
    """Programs and libraries the rig needs that this machine lacks."""
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if find_library("portaudio") is None:
        missing.append("libportaudio2")
    if sys.platform.startswith("linux"):
        missing += [
            f"{pkg} ({path})" for path, pkg in DATA_FILES.items() if not Path(path).exists()
        ]
    return missing


def install_command() -> list[list[str]]:
    return [
        ["sh", "-c", 'echo "jackd2 jackd/tweak_rt_limits boolean false" | debconf-set-selections'],
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", *DEBIAN_PACKAGES],
    ]


def install(log=print) -> None:
    """Install the Debian packages if anything is missing (needs root and apt-get)."""
    missing = missing_tools()
    if not missing:
        return
    commands = install_command()
    manual = " && ".join(" ".join(c) for c in commands)
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise RigError(f"the rig needs {missing}; install them as root (Debian/Ubuntu): {manual}")
    log(f"installing {' '.join(DEBIAN_PACKAGES)} (missing: {missing})")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in commands:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise RigError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    still = missing_tools()
    if still:
        raise RigError(f"installed the packages, yet {still} are still missing")


# ---- processes ---------------------------------------------------------------------------


def _read_state(config: RigConfig) -> dict:
    try:
        return json.loads(config.state_file.read_text())
    except (OSError, ValueError):
        return {}


def _write_state(config: RigConfig, state: dict) -> None:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    config.state_file.write_text(json.dumps(state, indent=1))


def _alive(pid: int | None, program: str) -> bool:
    """Is ``pid`` a live (not zombie) process running ``program``? Guards against reused ids."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    zombie = any(line.startswith("State:") and "Z" in line for line in status.splitlines())
    return not zombie and os.path.basename(cmdline) == program


def _jack_lsp(timeout: float = 3.0) -> list[str] | None:
    """Port names of the running JACK server, or None if none answers."""
    try:
        result = subprocess.run(
            ["jack_lsp"],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(os.environ, JACK_NO_START_SERVER="1"),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def _wait_for(predicate, timeout: float, what: str, log_file: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    tail = ""
    if log_file is not None and log_file.is_file():
        tail = "\n" + "\n".join(log_file.read_text(errors="replace").splitlines()[-15:])
    raise RigError(f"{what} did not come up within {timeout:.0f} s{tail}")


def _spawn(
    command: Sequence[str], log_file: Path, env: dict | None = None, stdin: int | None = None
) -> int:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        log.write(f"\n--- {time.strftime('%H:%M:%S')} {' '.join(command)}\n".encode())
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL if stdin is None else stdin,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # outlives this command; never gets our Ctrl-C
        )
    return process.pid


def _terminate(pid: int, program: str, timeout: float = STOP_TIMEOUT_S) -> None:
    if not _alive(pid, program):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid, program):
            _reap(pid)
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our own child (else the init process does)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def amsynth_controllers(maps: Sequence[str] | None = None) -> list[str]:
    """The 128 lines of amsynth's controllers file (CC n on line n + 1) from the knob maps.

    Every packaged map for amsynth contributes its ``parameter`` names; two maps
    that give one CC two different parameters are an error.
    """
    lines = ["null"] * 128
    owner: dict[int, str] = {}
    names = maps if maps is not None else [m for m in packaged_maps() if m.startswith("amsynth")]
    for name in names:
        knob_map = load_knob_map(name)
        entries = [(m.type, m.number, m.parameter) for m in knob_map.knobs.values()]
        entries += [(m.type, m.number, m.parameter) for m in knob_map.init]
        for transport, number, parameter in entries:
            if transport != "cc" or parameter is None:
                continue
            if lines[number] not in ("null", parameter):
                raise RigError(
                    f"CC {number} is {lines[number]!r} in {owner[number]} but {parameter!r} "
                    f"in {name}"
                )
            lines[number], owner[number] = parameter, name
    return lines


def _synth_env(config: RigConfig) -> dict:
    home = config.home
    for sub in (".config/amsynth", ".local/share/amsynth"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    (home / ".config/amsynth/controllers").write_text("\n".join(amsynth_controllers()) + "\n")
    return dict(
        os.environ,
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        JACK_NO_START_SERVER="1",
    )


def _synth_ready(name: str = SYNTH_CLIENT) -> bool:
    synth = SYNTHS[name]
    ports = _jack_lsp() or []
    return synth.midi_port in ports and all(p in ports for p in synth.audio_ports)


def start_jack(config: RigConfig, log=print) -> None:
    state = _read_state(config)
    if _jack_lsp() is not None:
        if not _alive(state.get("jackd"), "jackd"):
            log("jackd: a JACK server is already running (not started by the rig); using it")
        return
    log_file = config.state_dir / "jackd.log"
    command = [
        "jackd", "--no-realtime", "-d", "dummy",
        "-r", str(config.samplerate), "-p", str(config.period),
    ]  # fmt: skip
    state["jackd"] = _spawn(command, log_file, dict(os.environ, JACK_NO_START_SERVER="1"))
    _write_state(config, state)
    _wait_for(lambda: _jack_lsp() is not None, START_TIMEOUT_S, "jackd", log_file)
    log(f"jackd: started (pid {state['jackd']}, {config.samplerate} Hz, period {config.period})")


def fluidsynth_command(config: RigConfig) -> list[str]:
    """FluidSynth headless on JACK, one client named ``fluidsynth`` (MIDI and audio).

    No reverb or chorus (they would make every take depend on the tails of earlier
    ones); gain 1 (one note at full velocity peaks near -4 dBFS, about the twins'
    level); no auto-connection; no memory locking (no privileges needed); an empty
    shell prompt (the shell reads a FIFO: see :func:`_fluidsynth_stdin`).
    """
    return [
        "fluidsynth", "-a", "jack", "-m", "jack", "-R", "0", "-C", "0", "-g", "1.0",
        "-o", "audio.jack.id=fluidsynth", "-o", "midi.jack.id=fluidsynth",
        "-o", "audio.jack.autoconnect=0", "-o", "synth.lock-memory=0",
        "-o", f"synth.sample-rate={config.samplerate}", "-o", "shell.prompt=",
        SOUNDFONT,
    ]  # fmt: skip


def _fluidsynth_stdin(config: RigConfig) -> int:
    """A FIFO for FluidSynth's shell, opened read-write: it never reads end-of-file.

    FluidSynth quits when its shell reads end-of-file, unless it runs a TCP shell
    server (``-s``, port 9800 on every interface). A FIFO that FluidSynth itself
    holds open for writing keeps it running with no network port.
    """
    fifo = config.state_dir / "fluidsynth.fifo"
    if not fifo.exists():
        os.mkfifo(fifo, 0o600)
    return os.open(fifo, os.O_RDWR)


def start_synth(config: RigConfig, log=print, name: str = SYNTH_CLIENT) -> None:
    """Start the rig's synth ``name`` ("amsynth" or "fluidsynth") unless it is up."""
    synth = SYNTHS[name]
    state = _read_state(config)
    if _synth_ready(name):
        return
    if _alive(state.get(name), synth.program):
        _terminate(state[name], synth.program)  # half-started: begin again
    log_file = config.state_dir / f"{name}.log"
    if name == "amsynth":
        command = ["amsynth", "-x", "-n", "amsynth", "--jack_autoconnect=false"]
        state[name] = _spawn(command, log_file, _synth_env(config))
    else:
        stdin = _fluidsynth_stdin(config)
        try:
            env = dict(os.environ, JACK_NO_START_SERVER="1")
            state[name] = _spawn(fluidsynth_command(config), log_file, env, stdin)
        finally:
            os.close(stdin)
    _write_state(config, state)
    _wait_for(lambda: _synth_ready(name), START_TIMEOUT_S, f"{name}'s JACK ports", log_file)
    log(
        f"{name}: started (pid {state[name]}), ports {synth.midi_port}, "
        f"{', '.join(synth.audio_ports)}"
    )


def stop_synth(config: RigConfig, log=print, name: str = SYNTH_CLIENT) -> None:
    state = _read_state(config)
    pid = state.pop(name, None)
    if pid and _alive(pid, SYNTHS[name].program):
        _terminate(pid, SYNTHS[name].program)
        log(f"{name}: stopped (pid {pid})")
    _write_state(config, state)


def kill_synth(config: RigConfig, name: str = SYNTH_CLIENT) -> None:
    """SIGKILL one of the rig's synths (simulates a crash or a power cut; tests use it)."""
    state = _read_state(config)
    pid = state.get(name)
    program = SYNTHS[name].program
    if pid and _alive(pid, program):
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _alive(pid, program) and time.monotonic() < deadline:
            time.sleep(0.05)
        _reap(pid)


def start(config: RigConfig | None = None, log=print, install_missing: bool = True) -> dict:
    """Install if needed, then start jackd and the synths unless already up. Idempotent."""
    config = config or RigConfig.default()
    if install_missing:
        install(log)
    elif missing_tools():
        raise RigError(f"the rig needs {missing_tools()}; run `ddsp-gym hw rig install`")
    config.state_dir.mkdir(parents=True, exist_ok=True)
    start_jack(config, log)
    for name in SYNTHS:
        start_synth(config, log, name)
    return status(config)


def stop(config: RigConfig | None = None, log=print) -> None:
    """Stop what the rig started, by process id, in reverse order (synths, then jackd)."""
    config = config or RigConfig.default()
    for name in reversed(SYNTHS):
        stop_synth(config, log, name)
    # jackd answers SIGTERM slowly while it is still removing a client that just left.
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and any(
        p.split(":")[0] in SYNTHS for p in _jack_lsp(timeout=1.0) or []
    ):
        time.sleep(0.1)
    state = _read_state(config)
    pid = state.pop("jackd", None)
    if pid and _alive(pid, "jackd"):
        _terminate(pid, "jackd")
        log(f"jackd: stopped (pid {pid})")
    _write_state(config, state)


def xrun_count(config: RigConfig) -> int:
    """Xruns jackd has logged: its driver reports each one ("... XRun = 30 usec"); the
    engine's follow-up lines name the late clients and are not counted again."""
    log_file = config.state_dir / "jackd.log"
    if not log_file.is_file():
        return 0
    lines = log_file.read_text(errors="replace").splitlines()
    return sum("xrun" in line.lower() and not line.startswith("JackEngine::") for line in lines)


def status(config: RigConfig | None = None) -> dict:
    """What runs: jackd (ours or not), the synths, the JACK ports, jackd's xrun count.

    ``synth_ready``: every synth's ports are up; ``ready``: per synth.
    """
    config = config or RigConfig.default()
    state = _read_state(config)
    ports = _jack_lsp()
    ready = {name: ports is not None and _synth_ready(name) for name in SYNTHS}
    info = {
        "state_dir": str(config.state_dir),
        "missing_tools": missing_tools(),
        "jack_running": ports is not None,
        "jackd_pid": state.get("jackd") if _alive(state.get("jackd"), "jackd") else None,
        "synth_ready": all(ready.values()),
        "ready": ready,
        "ports": ports or [],
        "xruns": xrun_count(config),
    }
    for name, synth in SYNTHS.items():
        alive = _alive(state.get(name), synth.program)
        info[f"{name}_pid"] = state.get(name) if alive else None
    return info


def format_status(info: dict) -> str:
    def pid(key: str) -> str:
        return f"running (pid {info[key]})" if info[key] else "not started by the rig"

    lines = [
        f"state dir : {info['state_dir']}",
        f"jack      : {'answering' if info['jack_running'] else 'not running'}; "
        f"jackd {pid('jackd_pid')}",
    ]
    for name in SYNTHS:
        up = "ports up" if info["ready"][name] else "no ports"
        lines.append(f"{name:<10}: {up}; {pid(f'{name}_pid')}")
    lines.append(f"xruns     : {info['xruns']} logged by jackd")
    if info["missing_tools"]:
        lines.append(f"missing   : {', '.join(info['missing_tools'])}")
    if info["ports"]:
        lines.append("ports     : " + ", ".join(info["ports"]))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ddsp_gym.backends.rig", description=__doc__)
    parser.add_argument("action", choices=("start", "stop", "status", "install"))
    args = parser.parse_args(argv)
    try:
        if args.action == "install":
            install()
        elif args.action == "start":
            print(format_status(start()))
        elif args.action == "stop":
            stop()
        else:
            info = status()
            print(format_status(info))
            return 0 if info["synth_ready"] else 1
    except RigError as err:
        print(f"rig: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
