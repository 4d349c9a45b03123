"""Live mode: a streaming env played in real time (docs/streaming.md, "Live mode").

:mod:`ddsp_gym.live.runner` (the threads, the FIFO, the sessions), :mod:`ddsp_gym.live.watchdog`
(the process that silences the synth when the runner dies), :mod:`ddsp_gym.live.commands`
(``ddsp-gym live``). Importing this package imports no JAX.
"""
