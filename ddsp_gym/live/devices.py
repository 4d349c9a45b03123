"""The sound card for live mode (sounddevice), opened only when a session starts: a
callback stream that closes once and never hangs, and a device's default rate; and a
clocked null output (``--audio-out null``) that paces a session in real time without one."""

from __future__ import annotations

import threading
import time

import numpy as np

NULL_DEVICE = "null"
NULL_PERIOD = 1024  # frames per callback of the null output


class NullOutput:
    """A sound card that plays nothing, in real time: a thread calls the output callback
    every ``period`` frames on an absolute schedule (no drift), as a device would.

    What a session runs on where there is no sound card (CI, the live env's tests); a
    callback that overruns its period is not waited for: the schedule skips ahead, and
    the device reports an underflow, as a real one would.
    """

    latency = 0.0

    def __init__(self, callback, samplerate: int, period: int = NULL_PERIOD) -> None:
        self._callback, self.samplerate, self.period = callback, samplerate, period
        self._stop = threading.Event()
        self.underflows = 0
        self._thread = threading.Thread(target=self._run, name="null-output", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        out = np.zeros((self.period, 1), np.float32)
        dt = self.period / self.samplerate
        due = time.monotonic() + dt
        while not self._stop.is_set():
            late = time.monotonic() - due
            flag = _Status(output_underflow=late > dt)
            if late > dt:
                self.underflows += 1
                due = time.monotonic()
            self._callback(out, self.period, None, flag)
            due += dt
            self._stop.wait(max(0.0, due - time.monotonic()))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


class _Status:
    def __init__(self, output_underflow: bool = False) -> None:
        self.output_underflow = output_underflow


class CallbackStream:
    """A started sounddevice stream that closes once and never hangs (audio._OpenStream)."""

    def __init__(self, kind: str, device, callback, samplerate: int, hostapi: str | None):
        from ddsp_gym.backends import audio

        self._audio = audio
        sd = audio.acquire_portaudio()
        try:
            if device is None:
                index = sd.default.device[0 if kind == "input" else 1]
                if index is None or index < 0:
                    raise audio.AudioDeviceNotFoundError(
                        f"no default audio {kind} device; name one (--audio-{kind[:-3]}). "
                        f"Devices:\n{audio.format_devices(audio.list_audio_devices())}"
                    )
                info = audio.list_audio_devices()[index]
            else:
                info = audio.find_device(device, kind, hostapi)
            self.info = info
            if kind == "input":
                stream = sd.InputStream(
                    device=info["index"], channels=info["inputs"], samplerate=samplerate,
                    dtype="float32", callback=callback,
                )  # fmt: skip
            else:
                stream = sd.OutputStream(
                    device=info["index"], channels=min(2, info["outputs"]),
                    samplerate=samplerate, dtype="float32", callback=callback,
                )  # fmt: skip
        except BaseException:
            audio.release_portaudio()
            raise
        self._handle = audio._OpenStream(stream)
        stream.start()
        # Seconds from a callback's buffer to the converter: part of when a block is heard.
        self.latency = float(stream.latency)

    def close(self) -> None:
        self._handle.close()


def device_rate(device, kind: str, hostapi: str | None) -> int:
    """The device's default sample rate (JACK: the server's)."""
    from ddsp_gym.backends import audio

    if device is None:
        with audio.portaudio() as sd:
            return int(sd.query_devices(kind=kind)["default_samplerate"])
    return int(audio.find_device(device, kind, hostapi)["default_samplerate"])
