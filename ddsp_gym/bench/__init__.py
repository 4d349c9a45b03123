"""Benchmarks of the library's speed: ``ddsp-gym bench perf``.

:mod:`~ddsp_gym.bench.perf` runs them (``run_perf``) from small parts: the timing
harness (:mod:`~ddsp_gym.bench.timing`), what to measure (:mod:`~ddsp_gym.bench.settings`),
plants, envs, fresh processes, SB3, the MR-STFT alone and other libraries (one module
each), and the files written (:mod:`~ddsp_gym.bench.report`). :mod:`~ddsp_gym.bench.commands`
adds ``ddsp-gym bench agents | perf | hw`` to the command line; the agent benchmarks
themselves live with the agents (``ddsp_gym.agents.benchmark``, ``ddsp_gym.agents.hw_bench``).
"""
