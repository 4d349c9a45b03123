"""``ddsp-gym hw ...``: list devices, run the software rig, calibrate a device. Thin wrappers."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_list(args: argparse.Namespace) -> int:
    from ddsp_gym.backends.audio import format_devices, list_audio_devices
    from ddsp_gym.backends.midi import list_midi_outputs

    print(f"MIDI output ports (api={args.api}):")
    for api, ports in list_midi_outputs(args.api).items():
        shown = ports if isinstance(ports, str) else (", ".join(map(repr, ports)) or "(none)")
        print(f"  {api}: {shown}")
    print("Audio devices:")
    print(format_devices(list_audio_devices()))
    return 0


def _cmd_rig(args: argparse.Namespace) -> int:
    from ddsp_gym.backends import rig

    if args.action == "install":
        rig.install()
    elif args.action == "start":
        print(rig.format_status(rig.start()))
    elif args.action == "stop":
        rig.stop()
    else:
        info = rig.status()
        print(rig.format_status(info))
        return 0 if info["synth_ready"] else 1
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from ddsp_gym.catalog import check_env_ids

    check_env_ids([args.env_id])  # before any device is opened
    import gymnasium as gym

    import ddsp_gym  # noqa: F401  (registers the envs)
    from ddsp_gym.agents.base import QUERY_ENV_KWARGS
    from ddsp_gym.backends.calibrate import calibrate, save_calibration

    options = {
        key: value
        for key, value in (
            ("knob_map", args.map),
            ("midi_out", args.midi_out),
            ("midi_api", args.midi_api),
            ("audio_in", args.audio_in),
            ("audio_out", args.audio_out),
            ("takes_per_query", args.takes_per_query),
        )
        if value is not None
    }
    options["latency"] = 0.0  # calibrate() measures it; skip the measurement on open
    env = gym.make(args.env_id, backend="hardware", hardware=options, **QUERY_ENV_KWARGS).unwrapped
    try:
        result = calibrate(
            env.plant, env.backend, args.steps, env.input_audio,
            progress=lambda name, u: print(f"  {name} = {u:.2f}", flush=True),
            task=env.task, repeats=args.repeats,
            sim_threshold=float(env.params.success_threshold),
        )  # fmt: skip
    finally:
        env.close()
    paths = save_calibration(result, args.output, args.env_id)
    print(
        f"latency {result.latency_ms:.2f} ms; level {result.level_peak_dbfs:.1f} dBFS peak, "
        f"{result.level_rms_dbfs:.1f} dBFS RMS (twin {result.twin_rms_dbfs:.1f}); "
        f"wrote {', '.join(map(str, paths))}"
    )
    print(format_take_noise(result))
    return 0


def format_take_noise(result) -> str:
    """One line: the repeat-take distance and the success threshold it gives."""
    noise, rule = result.take_noise, result.threshold
    if noise is None or rule is None:
        return "take noise: not measured (--repeats 2 or more)"
    line = (
        f"take noise: median {noise.median:.4g} {noise.unit} over {len(noise.distances)} pairs "
        f"of {noise.takes} takes (max {max(noise.distances):.4g}); success on this device: "
        f"distance <= max({rule['sim_threshold']:g}, {rule['k']:g} x {noise.median:.4g}) = "
        f"{rule['threshold']:.4g} (decided by the {rule['decided_by']} threshold)"
    )
    if noise.history > rule["threshold"]:
        line += (
            f"\nwarning: the first take after the knobs moved is {noise.history:.4g} "
            f"{noise.unit} from the settled ones, more than that threshold: the device's sound "
            "depends on the previous setting (parameter smoothing or a value applied late); "
            "raise settle_ms in the knob map"
        )
    return line


def add_hw_parser(sub) -> None:
    """Register ``hw list | rig | calibrate`` on the top-level subparsers."""
    hw = sub.add_parser("hw", help="real synths and effects: devices, software rig, calibration")
    hw_sub = hw.add_subparsers(dest="hw_command", required=True)

    p = hw_sub.add_parser("list", help="list MIDI output ports and audio devices")
    p.add_argument("--api", default="auto", help="MIDI API: auto, alsa, jack, coremidi, winmm")
    p.set_defaults(func=_cmd_list)

    p = hw_sub.add_parser("rig", help="the software rig (JACK dummy driver + amsynth + FluidSynth)")
    p.add_argument("action", choices=("start", "stop", "status", "install"))
    p.set_defaults(func=_cmd_rig)

    p = hw_sub.add_parser(
        "calibrate",
        help="measure latency, level and take noise, sweep each knob (writes a PNG response map)",
    )
    p.add_argument("env_id", help="e.g. ddsp_gym/RealSynthPatch-v1")
    p.add_argument("--map", help="knob map: packaged name or YAML path (default: the env's)")
    p.add_argument("--midi-out", help="MIDI output port (default: the env's)")
    p.add_argument("--midi-api", help="auto, alsa, jack, coremidi, winmm")
    p.add_argument("--audio-in", help="audio input device (default: the env's)")
    p.add_argument("--audio-out", help="audio output device (effect mode)")
    p.add_argument("--steps", type=int, default=9, help="positions per knob (default 9)")
    p.add_argument(
        "--repeats", type=int, default=5, help="takes of one setting for the take noise (5)"
    )
    p.add_argument(
        "--takes-per-query", type=int, help="takes averaged per query (the env's option)"
    )
    p.add_argument("-o", "--output", type=Path, default=Path("calibration"), help="folder")
    p.set_defaults(func=_cmd_calibrate)


def _cmd_plugin_list(args: argparse.Namespace) -> int:
    from ddsp_gym.backends.plugin import list_plugins, plugin_search_path

    print("Plugin folders searched:", ", ".join(str(p) for p in plugin_search_path()))
    for path in list_plugins():
        print(f"  {path}")
    return 0


def _cmd_plugin_params(args: argparse.Namespace) -> int:
    from ddsp_gym.backends.plugin import plugin_parameters

    for p in plugin_parameters(args.plugin):
        print(f"{p['index']:4d}  {p['name']:<28} {p['text']:>10} {p['label']}")
    return 0


def add_plugin_parser(sub) -> None:
    """Register ``plugin list | params`` (backend="plugin") on the top-level subparsers."""
    plugin = sub.add_parser("plugin", help="hosted plugins (backend='plugin'): find, inspect")
    plugin_sub = plugin.add_subparsers(dest="plugin_command", required=True)
    p = plugin_sub.add_parser("list", help="list the VST2/VST3 plugins in the plugin folders")
    p.set_defaults(func=_cmd_plugin_list)
    p = plugin_sub.add_parser(
        "params", help="a plugin's parameters: the names a plugin knob map's 'parameter' takes"
    )
    p.add_argument("plugin", help="plugin path or file name, e.g. amsynth_vst.so")
    p.set_defaults(func=_cmd_plugin_params)
