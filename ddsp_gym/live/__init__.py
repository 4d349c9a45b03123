"""Live mode: a streaming env played in real time (docs/streaming.md, "Live mode").

:mod:`ddsp_gym.live.runner` (the thread design; open and run a session), the pieces it runs
(``buffers``: FIFO, mailbox, resampler; ``core``: the env's jitted block functions;
``inputs``: an effect's live audio input; ``clock``: an incoming MIDI clock;
``agents``; ``session``: what both backends share; the backends ``sim`` and ``hardware``;
``devices``: the sound card), :mod:`ddsp_gym.live.watchdog` (the process that silences the
synth when the runner dies), :mod:`ddsp_gym.live.commands` (``ddsp-gym live``) and
:class:`ddsp_gym.live.LiveEnv` (:mod:`ddsp_gym.live.env`: a Gymnasium env stepped live).
Importing this package imports no JAX.
"""


def __getattr__(name: str):
    # ``ddsp_gym.live.LiveEnv`` without importing gymnasium for the command's parser.
    if name == "LiveEnv":
        from ddsp_gym.live.env import LiveEnv

        return LiveEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
