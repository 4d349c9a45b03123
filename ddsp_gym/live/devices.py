"""The sound card for live mode (sounddevice), opened only when a session starts: a
callback stream that closes once and never hangs, and a device's default rate."""

from __future__ import annotations


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

    def close(self) -> None:
        self._handle.close()


def device_rate(device, kind: str, hostapi: str | None) -> int:
    """The device's default sample rate (JACK: the server's)."""
    from ddsp_gym.backends import audio

    if device is None:
        with audio.portaudio() as sd:
            return int(sd.query_devices(kind=kind)["default_samplerate"])
    return int(audio.find_device(device, kind, hostapi)["default_samplerate"])
