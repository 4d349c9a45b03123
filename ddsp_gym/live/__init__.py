"""Live mode: a streaming env played in real time (docs/streaming.md, "Live mode").

:mod:`ddsp_gym.live.runner` (the thread design; open and run a session), the pieces it runs
(``buffers``: FIFO, mailbox, resampler; ``core``: the env's jitted block functions;
``agents``; ``session``: what both backends share; the backends ``sim`` and ``hardware``;
``devices``: the sound card), :mod:`ddsp_gym.live.watchdog` (the process that silences the
synth when the runner dies), :mod:`ddsp_gym.live.commands` (``ddsp-gym live``). Importing
this package imports no JAX.
"""
