"""The JAX-native trainers as learners: installments, policies, checkpoints, TensorBoard.

``jax_ppo`` (:mod:`ddsp_gym.agents.jax_ppo`), ``apg`` (:mod:`ddsp_gym.agents.apg`) and
``hybrid_pg`` (:mod:`ddsp_gym.agents.hybrid_pg`) follow ``ddsp-gym bench rl``'s Learner
protocol (:mod:`ddsp_gym.agents.rl_bench`): ``learn(steps)`` trains on, ``policy()``
hands out a :class:`~ddsp_gym.agents.jax_policy.JaxPolicy` scored like the SB3 agents.
:func:`train` is their counterpart of :func:`ddsp_gym.agents.sb3.train` (``scripts/train.py``).

Steps count env steps (plant renders) as the SB3 agents do; an update's steps are all
counted, so a learner may train up to one update past what it was asked for.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import yaml

import ddsp_gym
from ddsp_gym.agents.jax_policy import JaxPolicy, save_policy
from ddsp_gym.catalog import JAX_RL_ALGOS

HYPERPARAMS_DIR = Path(__file__).resolve().parent / "hyperparams"
JAX_ALGOS = JAX_RL_ALGOS


def load_hyperparams(algo: str) -> dict[str, Any]:
    """The YAML hyperparameters of a JAX algorithm (``agents/hyperparams/<algo>.yaml``)."""
    if algo not in JAX_ALGOS:
        raise ValueError(f"unknown JAX algorithm {algo!r}; choose one of {JAX_ALGOS}")
    return dict(yaml.safe_load((HYPERPARAMS_DIR / f"{algo}.yaml").read_text()))


def build_config(cls: type, values: dict[str, Any], what: str) -> Any:
    """``cls(**values)`` with tuples for lists; unknown keys are a one-line error."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{what}: unknown hyperparameters {unknown}; known: {sorted(names)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


class JaxLearner:
    """One JAX trainer on one env from one seed, trained in installments.

    ``env_kwargs`` go to ``ddsp_gym.make_functional`` (as to ``gym.make``); the policy
    remembers them, and refuses to play an env made with another control or observation.
    """

    def __init__(
        self,
        algo: str,
        env_id: str,
        seed: int = 0,
        hyperparams: dict[str, Any] | None = None,
        env_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if algo not in JAX_ALGOS:
            raise ValueError(f"unknown JAX algorithm {algo!r}; choose one of {JAX_ALGOS}")
        self.algo, self.env_id, self.seed = algo, env_id, seed
        self.env_kwargs = dict(env_kwargs or {})
        values = load_hyperparams(algo) if hyperparams is None else dict(hyperparams)
        self.hyperparams = dict(values)
        self.fenv, self.env_params = ddsp_gym.make_functional(env_id, **self.env_kwargs)
        key, k_probe = jax.random.split(jax.random.PRNGKey(seed))
        self.schedule = None
        if algo == "jax_ppo":
            from ddsp_gym.agents import jax_ppo

            config = build_config(jax_ppo.PPOConfig, values, algo)
            self.trainer = jax_ppo.make_trainer(config, self.fenv, self.env_params)
            self._update = jax.jit(self.trainer.update)
        else:
            from ddsp_gym.agents import apg, hybrid_pg

            schedule = {
                k: values.pop(k)
                for k in list(values)
                if k in {f.name for f in dataclasses.fields(hybrid_pg.ScheduleConfig)}
            }
            if schedule and algo == "apg":
                raise ValueError(f"apg: {sorted(schedule)} are hybrid_pg's settings")
            config = build_config(apg.APGConfig, values, algo)
            self.trainer = apg.make_trainer(config, self.fenv, self.env_params)
            self._update = jax.jit(self.trainer.update)
            if algo == "hybrid_pg":
                sconfig = build_config(hybrid_pg.ScheduleConfig, schedule, algo)
                self.schedule = hybrid_pg.HybridSchedule.create(
                    sconfig, config.learning_rate, config.dither
                )
                self._probe = hybrid_pg.make_probe(self.fenv, self.env_params, k_probe, sconfig)
        self.config = config
        self.state = jax.jit(self.trainer.init)(key)
        self.steps = 0  # env steps played, updates and probes
        self.updates = 0
        self._asked = 0  # env steps asked for by learn()
        self.history: list[dict[str, float]] = []  # one entry per update (and per probe)

    @property
    def steps_per_update(self) -> int:
        return self.config.batch_steps

    def learn(self, steps: int) -> None:
        """Train until at least the steps asked for so far (this call's included) are played."""
        if steps < 0:
            raise ValueError(f"steps must be >= 0, not {steps}")
        self._asked += steps
        while self.steps < self._asked:
            self._one_update()

    def _one_update(self) -> None:
        if self.algo == "jax_ppo":
            self.state, metrics = self._update(self.state)
        else:
            dither, lr_scale = (
                (self.config.dither, 1.0)
                if self.schedule is None
                else (self.schedule.dither, self.schedule.lr_scale)
            )
            self.state, metrics = self._update(self.state, np.float32(dither), np.float32(lr_scale))
        self.updates += 1
        self.steps += self.steps_per_update
        entry = {k: float(v) for k, v in metrics._asdict().items() if k != "steps"}
        self.history.append({"steps": self.steps, **entry})
        if self.schedule is not None and self.updates % self.schedule.config.block == 0:
            self._probe_and_schedule()

    def _probe_and_schedule(self) -> None:
        """The hybrid's decision between blocks: probe, schedule, maybe roll back."""
        loss = float(self._probe(self.state.params))
        self.steps += self.schedule.config.probe_cost
        back = self.schedule.observe(loss, self.state.params, self.steps)
        if back is not None:
            self.state = self.state._replace(params=back)
        self.history.append(
            {
                "steps": self.steps,
                "probe_loss": loss,
                "dither": self.schedule.dither,
                "lr_scale": self.schedule.lr_scale,
                "rollbacks": float(self.schedule.monitor.rollbacks),
            }
        )

    def params(self) -> Any:
        """The parameters the policy plays: the hybrid's best on its probe, else the latest."""
        params = self.state.params
        return params if self.schedule is None else self.schedule.best(params)

    def policy(self) -> JaxPolicy:
        config = dataclasses.asdict(self.config)
        return JaxPolicy(
            name=self.algo,
            env_id=self.env_id,
            params=jax.device_get(self.params()),
            num_knobs=self.fenv.num_knobs,
            train_steps=self.steps,
            env_kwargs=self.env_kwargs,
            config={**config, "hidden": list(config["hidden"]), "seed": self.seed},
        )


def make_learner(algo: str) -> Any:
    """``(env_id, seed) -> JaxLearner`` of ``algo`` with its YAML hyperparameters and the
    env's registry defaults: the factory ``ddsp-gym bench rl`` registers."""

    def make(env_id: str, seed: int) -> JaxLearner:
        return JaxLearner(algo, env_id, seed)

    return make


LEARNERS = {algo: make_learner(algo) for algo in JAX_ALGOS}


# ---- training from the command line ------------------------------------------------------


class ScalarLog:
    """TensorBoard scalars through ``tensorboard``'s own writer (no torch needed); without
    the package, a note and nothing written."""

    def __init__(self, logdir: Path) -> None:
        try:
            from tensorboard.summary import Writer
        except ImportError:
            print("note: no TensorBoard logs (pip install tensorboard, or the [sb3] extra)")
            self.writer = None
            return
        self.writer = Writer(str(logdir))

    def write(self, entries: list[dict[str, float]], prefix: str) -> None:
        if self.writer is None:
            return
        for entry in entries:
            step = int(entry["steps"])
            for name, value in entry.items():
                if name != "steps" and math.isfinite(value):
                    self.writer.add_scalar(f"{prefix}/{name}", value, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def train(
    env_id: str,
    algo: str,
    steps: int,
    seed: int = 0,
    out_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    hyperparams: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    verbose: int = 0,
) -> JaxPolicy:
    """Train ``algo`` on ``env_id`` for ``steps`` env steps, as :func:`ddsp_gym.agents.sb3.train`.

    With ``out_dir``: TensorBoard logs in ``out_dir/tb``, a checkpoint every
    ``checkpoint_every`` steps in ``out_dir/checkpoints/<algo>_<steps>_steps.npz`` and
    the final policy at ``out_dir/model.npz`` (:func:`ddsp_gym.agents.jax_policy.load_policy`).
    """
    learner = JaxLearner(algo, env_id, seed, hyperparams, env_kwargs)
    log = ScalarLog(Path(out_dir) / "tb") if out_dir is not None else None
    every = checkpoint_every or steps
    start, logged = time.perf_counter(), 0
    while learner._asked < steps:
        learner.learn(min(every, steps - learner._asked))
        if log is not None:
            log.write(learner.history[logged:], algo)
            logged = len(learner.history)
        if out_dir is not None and checkpoint_every:
            name = f"{algo}_{learner.steps}_steps.npz"
            save_policy(learner.policy(), Path(out_dir) / "checkpoints" / name)
        if verbose:
            last = next(h for h in reversed(learner.history) if "mean_reward" in h)
            rate = learner.steps / (time.perf_counter() - start)
            print(
                f"{algo} {env_id}: {learner.steps:,} steps, mean reward "
                f"{last['mean_reward']:.3g}, {rate:,.0f} steps/s"
            )
    policy = learner.policy()
    if out_dir is not None:
        save_policy(policy, Path(out_dir) / "model.npz")
    if log is not None:
        log.close()
    return policy
