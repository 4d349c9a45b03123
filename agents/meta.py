"""Meta-AbS: a learned optimizer for the gradient agent, meta-trained on training targets.

What is learned, per env (:class:`MetaSettings`): the gradient agent's per-knob step
sizes (a diagonal preconditioner on top of Adam's own), its learning-rate decay, Adam's
momentum ``b1`` and, optionally, a start point in unit knob space. The inner optimizer
is the gradient agent's: Adam (optax) on ``-reward`` with an exponentially decaying,
floored step size (:class:`ddsp_gym.agents.gradient.GradientAgent`); with every per-knob
step size at ``learning_rate``, ``decay`` and ``b1=0.9`` it *is* that agent
(:func:`knob_adam`; the tests check it step by step).

How: the pure functional env (:class:`ddsp_gym.envs.functional.FunctionalDDSPEnv`) lets
``K`` inner steps run inside ``jax.lax.scan``; the meta-loss is the mean over the
``K`` queries of ``log1p(distance / success_threshold)`` on a batch of training
targets (scale-free across envs, and it rewards getting *and staying* under the success
threshold early, which is what success within a query budget asks). ``method="grad"``
differentiates that loss through the unrolled optax steps (``jax.grad`` through the
scan, second-order terms included) and updates the settings with optax Adam
("learning to learn by gradient descent", Andrychowicz et al. 2016). Where long
unrolls through a rippled landscape make that gradient chaotic (Metz et al. 2019,
"Understanding and correcting pathologies in the training of learned optimizers"),
``method="cma"`` runs CMA-ES (Hansen's ``cma``) over the same settings with the same
forward-only meta-loss. ``method="auto"`` picks one per env from the meta-gradient's
consistency across disjoint training batches (:func:`diagnose_meta_gradient`). Either
way the settings kept are the best checkpoint on all training targets, the hand-set
start included.

Targets: training targets are the env's own resets with seeds ``0..n-1``, each mapped
to its episode key exactly as ``env.reset(seed=s)`` maps it; held-out targets (the
benchmark's) are seeds ``EVAL_SEED_OFFSET + i``. :func:`train_seeds` refuses overlap.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax

from ddsp_gym.agents.base import QUERY_ENV_KWARGS, SolveResult
from ddsp_gym.agents.benchmark import EVAL_SEED_OFFSET
from ddsp_gym.agents.gradient import GradientAgent
from ddsp_gym.envs.compile import seed_chain
from ddsp_gym.envs.functional import EnvParams, EnvState, FunctionalDDSPEnv

SETTINGS_VERSION = 1
METHODS = ("grad", "cma", "auto")


# ---- the inner optimizer ------------------------------------------------------------


class KnobScheduleState(NamedTuple):
    count: jax.Array  # () int32: updates since the (re)start


def scale_by_knob_schedule(
    learning_rates: jax.Array | np.ndarray,
    decay: jax.Array | float,
    min_learning_rate: float,
) -> optax.GradientTransformation:
    """Multiply knob ``i``'s update by ``-max(lr_i * decay^t, min_lr)``.

    The gradient agent's ``optax.exponential_decay(lr, 1, decay, end_value=min_lr)``
    schedule, one learning rate per knob: a diagonal preconditioner on Adam's step.
    Differentiable in ``learning_rates`` and ``decay`` (they may be traced).
    """

    def init(params: Any) -> KnobScheduleState:
        del params
        return KnobScheduleState(jnp.zeros((), jnp.int32))

    def update(updates: Any, state: KnobScheduleState, params: Any = None):
        del params
        rates = jnp.maximum(
            jnp.asarray(learning_rates) * jnp.asarray(decay) ** state.count, min_learning_rate
        )
        return -rates * updates, KnobScheduleState(state.count + 1)

    return optax.GradientTransformation(init, update)


def knob_adam(
    learning_rates: jax.Array | np.ndarray,
    decay: jax.Array | float,
    b1: jax.Array | float,
    min_learning_rate: float = 1e-3,
) -> optax.GradientTransformation:
    """Adam with per-knob decaying step sizes: the gradient agent's optimizer, generalised.

    ``knob_adam(full(d, 0.1), 0.98, 0.9)`` equals the default
    ``GradientAgent()._optimizer()`` (``optax.adam`` with its schedule).
    """
    return optax.chain(
        optax.scale_by_adam(b1=b1),
        scale_by_knob_schedule(learning_rates, decay, min_learning_rate),
    )


# ---- the learned settings --------------------------------------------------------------


@dataclass
class MetaSettings:
    """Learned settings of the gradient agent for one env (JSON-serialisable).

    ``start`` is a start point in unit knob space ((d,) in [0, 1]) or None (the env's
    own random start, as the hand-set agent). ``training`` records how they were
    learned: method, seeds, unroll length, steps, meta-losses, wall time.
    """

    env_id: str
    knob_names: list[str]
    learning_rates: list[float]
    decay: float
    b1: float
    min_learning_rate: float = 1e-3
    start: list[float] | None = None
    training: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        d = len(self.knob_names)
        if len(self.learning_rates) != d:
            raise ValueError(
                f"{self.env_id}: {len(self.learning_rates)} learning rates for {d} knobs"
            )
        if self.start is not None and len(self.start) != d:
            raise ValueError(f"{self.env_id}: a start point of {len(self.start)} knobs, not {d}")
        if not all(r > 0 and np.isfinite(r) for r in self.learning_rates):
            raise ValueError(f"{self.env_id}: learning rates must be finite and > 0")
        if not (0.0 < self.decay <= 1.0 and 0.0 <= self.b1 < 1.0):
            raise ValueError(f"{self.env_id}: need 0 < decay <= 1 and 0 <= b1 < 1")

    @classmethod
    def hand_set(cls, env_id: str, knob_names: Sequence[str]) -> MetaSettings:
        """The hand-set :class:`GradientAgent` defaults, as settings (the meta-training's start)."""
        agent = GradientAgent()
        return cls(
            env_id=env_id,
            knob_names=list(knob_names),
            learning_rates=[agent.learning_rate] * len(knob_names),
            decay=agent.decay,
            b1=0.9,
            min_learning_rate=agent.min_learning_rate,
        )

    def optimizer(self) -> optax.GradientTransformation:
        return knob_adam(
            np.asarray(self.learning_rates), self.decay, self.b1, self.min_learning_rate
        )

    def to_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"version": SETTINGS_VERSION, **asdict(self)}, indent=1))
        return path

    @classmethod
    def from_json(
        cls, path: str | Path, env_id: str | None = None, knob_names: Sequence[str] | None = None
    ) -> MetaSettings:
        """Load settings; with ``env_id`` / ``knob_names``, refuse a file made for another env."""
        document = json.loads(Path(path).read_text())
        version = document.pop("version", None)
        if version != SETTINGS_VERSION:
            raise ValueError(f"{path}: settings version {version!r}, expected {SETTINGS_VERSION}")
        settings = cls(**document)
        if env_id is not None and settings.env_id != env_id:
            raise ValueError(f"{path}: settings learned on {settings.env_id}, not {env_id}")
        if knob_names is not None and list(knob_names) != settings.knob_names:
            raise ValueError(
                f"{path}: settings for knobs {settings.knob_names}, the env has {list(knob_names)}"
            )
        return settings


@dataclass
class MetaGradientAgent(GradientAgent):
    """The gradient agent run with learned :class:`MetaSettings` (same query accounting:
    one query per step, restarts after ``patience`` stalled steps)."""

    settings: MetaSettings | None = None
    name: str = "meta-gradient"

    @classmethod
    def from_file(cls, path: str | Path, env: gym.Env | None = None) -> MetaGradientAgent:
        """The agent of a settings file; with ``env``, checked to be that env's."""
        if env is None:
            return cls(settings=MetaSettings.from_json(path))
        base = env.unwrapped
        settings = MetaSettings.from_json(path, env.spec.id, knob_names_of(base))
        return cls(settings=settings)

    def _optimizer(self) -> optax.GradientTransformation:
        if self.settings is None:
            raise ValueError("MetaGradientAgent needs settings (MetaGradientAgent.from_file)")
        return self.settings.optimizer()

    def solve(self, env: gym.Env, seed: int, budget: int | None = None, **kwargs) -> SolveResult:
        if self.settings is None:
            raise ValueError("MetaGradientAgent needs settings (MetaGradientAgent.from_file)")
        if env.spec is not None and env.spec.id != self.settings.env_id:
            raise ValueError(f"settings learned on {self.settings.env_id}, not {env.spec.id}")
        if self.settings.start is not None and kwargs.get("start") is None:
            kwargs["start"] = 2.0 * np.asarray(self.settings.start, np.float64) - 1.0
        return super().solve(env, seed, budget, **kwargs)


def knob_names_of(base: Any) -> list[str]:
    """The env's knob names (the settings' identity check)."""
    return list(base.plant.knob_names)


# ---- targets ------------------------------------------------------------------------------


def episode_key(seed: int) -> jax.Array:
    """The episode key of ``env.reset(seed=seed)`` (the gym env's first split of its chain)."""
    _, key = jax.random.split(jnp.asarray(seed_chain(seed)))
    return key


def train_seeds(count: int, held_out: Sequence[int]) -> list[int]:
    """Training reset seeds ``0..count-1``, refused if any is a held-out seed."""
    seeds = list(range(count))
    overlap = sorted(set(seeds) & set(held_out))
    if overlap:
        raise ValueError(f"training seeds overlap the held-out ones: {overlap[:5]}")
    if count > EVAL_SEED_OFFSET:
        raise ValueError(f"at most {EVAL_SEED_OFFSET} training seeds (then held-out seeds begin)")
    return seeds


def episode_states(fenv: FunctionalDDSPEnv, params: EnvParams, seeds: Sequence[int]) -> EnvState:
    """Batched start states (leading axis = seed) of the episodes ``reset(seed=s)`` plays."""
    keys = jnp.stack([episode_key(s) for s in seeds])
    _, states = jax.vmap(fenv.reset_env, in_axes=(0, None))(keys, params)
    return states


# ---- the unrolled inner loop --------------------------------------------------------------


class Raw(NamedTuple):
    """Unconstrained meta-parameters: what the outer optimizer moves."""

    log_lr: jax.Array  # (d,) log step sizes
    decay_logit: jax.Array  # () decay = sigmoid
    b1_logit: jax.Array  # () b1 = sigmoid
    start_logit: jax.Array  # (d,) start = sigmoid (unit knobs); unused without a learned start


def _logit(p: float) -> float:
    return float(np.log(p) - np.log1p(-p))


def to_raw(settings: MetaSettings) -> Raw:
    d = len(settings.knob_names)
    start = np.full(d, 0.5) if settings.start is None else np.asarray(settings.start)
    start = np.clip(start, 1e-3, 1 - 1e-3)
    return Raw(
        jnp.log(jnp.asarray(settings.learning_rates, jnp.float32)),
        jnp.asarray(_logit(min(settings.decay, 1 - 1e-6)), jnp.float32),
        jnp.asarray(_logit(settings.b1), jnp.float32),
        jnp.asarray(np.log(start) - np.log1p(-start), jnp.float32),
    )


def unrolled_distances(
    fenv: FunctionalDDSPEnv,
    params: EnvParams,
    state: EnvState,
    start_action: jax.Array,
    learning_rates: jax.Array,
    decay: jax.Array,
    b1: jax.Array,
    steps: int,
    min_learning_rate: float = 1e-3,
) -> jax.Array:
    """(steps,) distances of the gradient agent's first ``steps`` queries on one target.

    The agent's loop without restarts: query ``reward_and_grad`` at the action, let
    :func:`knob_adam` take a step on ``-grad``, clip to [-1, 1]. Pure and differentiable
    in ``start_action``, ``learning_rates``, ``decay`` and ``b1``.
    """
    optimizer = knob_adam(learning_rates, decay, b1, min_learning_rate)

    def body(carry, _):
        action, opt_state = carry
        _, grad, (_, info) = fenv.reward_and_grad(state, action, params)
        updates, opt_state = optimizer.update(-grad, opt_state, action)
        action = jnp.clip(optax.apply_updates(action, updates), -1.0, 1.0)
        return (action, opt_state), info.distance

    start_action = jnp.asarray(start_action, jnp.float32)
    _, distances = jax.lax.scan(body, (start_action, optimizer.init(start_action)), None, steps)
    return distances


def meta_loss(
    raw: Raw,
    fenv: FunctionalDDSPEnv,
    params: EnvParams,
    states: EnvState,
    steps: int,
    learn_start: bool,
    min_learning_rate: float = 1e-3,
) -> jax.Array:
    """Mean over targets and queries of ``log1p(distance / success_threshold)``."""

    def one(state: EnvState) -> jax.Array:
        unit = jax.nn.sigmoid(raw.start_logit) if learn_start else state.knobs
        distances = unrolled_distances(
            fenv,
            params,
            state,
            2.0 * unit - 1.0,
            jnp.exp(raw.log_lr),
            jax.nn.sigmoid(raw.decay_logit),
            jax.nn.sigmoid(raw.b1_logit),
            steps,
            min_learning_rate,
        )
        return jnp.mean(jnp.log1p(jnp.maximum(distances, 0.0) / params.success_threshold))

    return jnp.mean(jax.vmap(one)(states))


# Jitted at module level with the env static: a second meta-training of the same env and
# unroll (a determinism check, another seed) reuses the compilation.
_STATIC = (1, 4, 5, 6)  # fenv, steps, learn_start, min_learning_rate
_loss_jit = jax.jit(meta_loss, static_argnums=_STATIC)
_value_and_grad_jit = jax.jit(jax.value_and_grad(meta_loss), static_argnums=_STATIC)


def from_raw(raw: Raw, template: MetaSettings, learn_start: bool) -> MetaSettings:
    return MetaSettings(
        env_id=template.env_id,
        knob_names=list(template.knob_names),
        learning_rates=[float(x) for x in np.exp(np.asarray(raw.log_lr, np.float64))],
        decay=float(jax.nn.sigmoid(raw.decay_logit)),
        b1=float(jax.nn.sigmoid(raw.b1_logit)),
        min_learning_rate=template.min_learning_rate,
        start=[float(x) for x in jax.nn.sigmoid(raw.start_logit)] if learn_start else None,
    )


# ---- meta-training ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MetaConfig:
    """How to meta-train: unroll length, training targets, outer steps and method."""

    method: str = "grad"
    unroll: int = 20  # K inner steps (queries) per target
    targets: int = 32  # training targets (reset seeds 0..targets-1)
    batch: int = 8  # targets per outer step
    meta_steps: int = 30  # outer steps (grad) or CMA-ES generations (cma)
    meta_learning_rate: float = 0.05
    learn_start: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {self.method!r}")
        if min(self.unroll, self.targets, self.batch, self.meta_steps) < 1:
            raise ValueError("unroll, targets, batch and meta_steps must be >= 1")
        if self.batch > self.targets:
            raise ValueError(f"batch {self.batch} > training targets {self.targets}")


def make_query_env(env_id: str) -> gym.Env:
    """The env query agents are scored on (absolute control, gradients exposed)."""
    return gym.make(env_id, expose_grad=True, **QUERY_ENV_KWARGS)


def meta_train(
    env_id: str,
    config: MetaConfig = MetaConfig(),
    held_out: Sequence[int] = (),
) -> MetaSettings:
    """Learn :class:`MetaSettings` for ``env_id`` on training targets disjoint from ``held_out``.

    Starts from the hand-set gradient agent's settings. Deterministic given
    ``config.seed`` (batches are drawn from a seeded generator; CMA-ES is seeded).
    """
    start_time = time.perf_counter()
    env = make_query_env(env_id)
    base = env.unwrapped
    fenv, params = base.functional, base.params
    seeds = train_seeds(config.targets, held_out)
    states = episode_states(fenv, params, seeds)
    template = MetaSettings.hand_set(env_id, knob_names_of(base))
    raw = to_raw(template)
    rng = np.random.default_rng(config.seed)

    def batch_states() -> EnvState:
        pick = np.sort(rng.choice(config.targets, config.batch, replace=False))
        return jax.tree_util.tree_map(lambda x: x[pick], states)

    def loss_fn(r: Raw, s: EnvState) -> jax.Array:
        return _loss_jit(r, fenv, params, s, config.unroll, config.learn_start,
                         template.min_learning_rate)  # fmt: skip

    def value_and_grad(r: Raw, s: EnvState) -> tuple[jax.Array, Raw]:
        return _value_and_grad_jit(r, fenv, params, s, config.unroll, config.learn_start,
                                   template.min_learning_rate)  # fmt: skip

    initial = float(loss_fn(raw, states))
    best = {"loss": initial, "raw": raw, "step": 0}

    def checkpoint(candidate: Raw, step: int) -> None:
        """Keep the settings with the lowest meta-loss on *all* training targets: a
        noisy batch gradient may make a late step worse (the hand-set start included)."""
        loss = float(loss_fn(candidate, states))
        if np.isfinite(loss) and loss < best["loss"]:
            best.update(loss=loss, raw=candidate, step=step)

    method, diagnosis = config.method, None
    if method == "auto":
        diagnosis = diagnose_meta_gradient(value_and_grad, raw, states, config.batch)
        method = diagnosis["method"]
    if method == "grad":
        losses = _train_by_gradient(raw, value_and_grad, batch_states, config, checkpoint)
    else:
        losses = _train_by_cma(raw, loss_fn, batch_states, config, checkpoint)
    learned = from_raw(best["raw"], template, config.learn_start)
    final = best["loss"]
    env.close()
    learned.training = {
        "method": method,
        "method_asked": config.method,
        "diagnosis": diagnosis,
        "unroll": config.unroll,
        "train_seeds": [seeds[0], seeds[-1]],
        "batch": config.batch,
        "meta_steps": config.meta_steps,
        "meta_learning_rate": config.meta_learning_rate,
        "learn_start": config.learn_start,
        "seed": config.seed,
        "meta_loss_hand_set": initial,
        "meta_loss_learned": final,
        "kept_step": best["step"],
        "batch_losses": losses,
        "wall_s": time.perf_counter() - start_time,
    }
    return learned


# The meta-gradient is trusted where batches agree on its direction and no batch's norm
# blows up: exploding, direction-flipping meta-gradients are the chaotic-unroll pathology
# (Metz et al. 2019), where CMA-ES on the forward loss does better.
MIN_COSINE = 0.3
MAX_NORM_RATIO = 100.0


def diagnose_meta_gradient(value_and_grad, raw: Raw, states: EnvState, batch: int) -> dict:
    """Meta-gradients at ``raw`` on up to 4 disjoint batches -> norms, mean pairwise
    cosine, and the method they call for ("grad" if consistent, else "cma")."""
    count = max(1, min(4, len(states.knobs) // batch))
    grads = []
    for b in range(count):
        part = jax.tree_util.tree_map(lambda x, b=b: x[b * batch : (b + 1) * batch], states)
        _, g = value_and_grad(raw, part)
        grads.append(np.asarray(jax.flatten_util.ravel_pytree(g)[0], np.float64))
    g = np.stack(grads)
    norms = np.linalg.norm(g, axis=1)
    finite = bool(np.all(np.isfinite(g)))
    pairs = [(i, j) for i in range(count) for j in range(i + 1, count)]
    cosines = [float(g[i] @ g[j] / (norms[i] * norms[j] + 1e-30)) for i, j in pairs]
    cosine = float(np.mean(cosines)) if cosines else 1.0
    ratio = float(norms.max() / max(np.median(norms), 1e-30)) if finite else float("inf")
    ok = finite and cosine >= MIN_COSINE and ratio <= MAX_NORM_RATIO
    return {
        "norms": norms.tolist(),
        "mean_cosine": cosine,
        "max_over_median_norm": ratio,
        "method": "grad" if ok else "cma",
    }


def _checkpoint_every(config: MetaConfig) -> int:
    return max(1, config.meta_steps // 8)


def _train_by_gradient(raw: Raw, value_and_grad, batch_states, config: MetaConfig, checkpoint):
    """Outer optax Adam on the meta-gradient through the unrolled inner steps; offers
    ``checkpoint(raw, step)`` the settings every few steps and at the end."""
    outer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(config.meta_learning_rate))
    opt_state = outer.init(raw)
    losses = []
    for step in range(1, config.meta_steps + 1):
        loss, grads = value_and_grad(raw, batch_states())
        # A non-finite meta-gradient (a chaotic unroll) skips the step, not poisons the settings.
        finite = all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(grads))
        if finite:
            updates, opt_state = outer.update(grads, opt_state, raw)
            raw = optax.apply_updates(raw, updates)
        losses.append(float(loss))
        if step % _checkpoint_every(config) == 0 or step == config.meta_steps:
            checkpoint(raw, step)
    return losses


def _train_by_cma(raw: Raw, loss_fn, batch_states, config: MetaConfig, checkpoint):
    """CMA-ES (``cma``) over the flattened raw settings, forward meta-loss only; offers
    ``checkpoint`` the distribution's mean every few generations and at the end."""
    import cma

    flat, unravel = jax.flatten_util.ravel_pytree(raw)
    es = cma.CMAEvolutionStrategy(
        np.asarray(flat, np.float64),
        0.3,
        {"seed": config.seed + 1, "verbose": -9, "maxiter": config.meta_steps},
    )
    # All of a generation's candidates in one vmapped call (one compilation per popsize).
    population_loss = jax.jit(jax.vmap(lambda f, b: loss_fn(unravel(f), b), in_axes=(0, None)))
    losses, generation = [], 0
    while not es.stop():
        generation += 1
        batch = batch_states()  # one batch per generation: candidates compared fairly
        candidates = es.ask()
        values = np.asarray(population_loss(jnp.asarray(np.stack(candidates), jnp.float32), batch))
        values = np.where(np.isfinite(values), values, 1e9)
        es.tell(candidates, values.tolist())
        losses.append(float(values.min()))
        if generation % _checkpoint_every(config) == 0 or es.stop():
            # The distribution's mean: less fitted to one batch's noise than the best candidate.
            checkpoint(unravel(jnp.asarray(es.mean, jnp.float32)), generation)
    return losses
