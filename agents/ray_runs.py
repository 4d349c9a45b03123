"""Past one machine: ``bench rl`` runs and hyperparameter sweeps on Ray, RLlib's PPO.

The ``ray`` extra (``pip install 'ddsp_gym[ray]'``, docs/ray.md). Three uses:

* :func:`ray_runner`: each (env, algo, seed) run of ``ddsp-gym bench rl`` is a Ray task
  with one CPU; records come back as runs finish and go into the same rl_bench.json as
  local runs (a rerun resumes, as without Ray).
* :func:`run_sweep`: ``ddsp-gym sweep``, a Ray Tune hyperparameter search. Each trial
  trains an SB3 model (:func:`ddsp_gym.agents.sb3.make_model`) with the algo's YAML
  hyperparameters overridden by the trial's, and reports held-out success at evenly
  spaced points (:func:`ddsp_gym.agents.rl_bench.score_policy`).
* :func:`train_rllib_ppo`: RLlib's PPO on a registered env, by its module-prefixed id
  (``ddsp_gym:ddsp_gym/VolumeMatch-v1``): RLlib's env runners are separate processes
  that have not imported ddsp_gym, and gymnasium imports the module before the id is
  looked up.

Ray is imported only inside these functions: the module imports without it, so its
parameter parsing and its missing-Ray error work (and are tested) in the core install.
Without an address, Ray runs a local instance bound to 127.0.0.1 with no dashboard and
no usage statistics (:func:`init_ray`).
"""

from __future__ import annotations

import importlib.util
import math
import os
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from ddsp_gym.agents.rl_bench import Runner

RAY_EXTRA_HINT = "pip install 'ddsp_gym[ray]'"
LOOPBACK = "127.0.0.1"
# Ray reads these when it is imported; its workers inherit them from the driver.
_NO_USAGE_STATS = "RAY_USAGE_STATS_ENABLED"
# On Linux Ray resolves even an explicit 127.0.0.1 to the machine's routable address and
# listens on every interface; with this off (its name says Windows/macOS, but it is read
# on every OS) the node's address is the loopback one and every server binds to it.
_CLUSTER_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
DISTRIBUTIONS = ("uniform", "loguniform", "int", "logint", "choice")


class RayNotInstalledError(ImportError, ValueError):
    """Ray (the ``ray`` extra) is missing. A ValueError too, so the CLI prints one line."""


# Any registered id: every entry of a hyperparameter file has the same keys.
SWEEP_ENTRY = "ddsp_gym/SineTuner-v1"


def require_ray() -> None:
    """:class:`RayNotInstalledError` unless Ray can be imported; does not import it (Ray
    reads its settings when imported, and :func:`init_ray` sets them first)."""
    try:
        found = importlib.util.find_spec("ray") is not None
    except ValueError:  # sys.modules["ray"] is None: imports of it are blocked
        found = False
    if not found:
        raise RayNotInstalledError(f"Ray is not installed: {RAY_EXTRA_HINT} (docs/ray.md)")


def import_ray() -> Any:
    """The ``ray`` module, usage statistics off, or :class:`RayNotInstalledError`."""
    os.environ.setdefault(_NO_USAGE_STATS, "0")
    try:
        import ray
    except ImportError as err:
        raise RayNotInstalledError(
            f"Ray is not installed: {RAY_EXTRA_HINT} (docs/ray.md) [{err}]"
        ) from err
    return ray


def init_ray(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Connect to the Ray cluster at ``address`` (else ``RAY_ADDRESS``), or start a local
    instance of ``num_cpus`` CPUs (default: all) reachable from this machine only.

    A Ray already initialized in this process is used as it is. Returns ``ray``.
    """
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is None:
        os.environ[_CLUSTER_SWITCH] = "0"  # before Ray is imported: see _CLUSTER_SWITCH
    ray = import_ray()
    if ray.is_initialized():
        return ray
    if address is not None:
        ray.init(address=address)
        return ray
    context = ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        _node_ip_address=LOOPBACK,
        configure_logging=False,
    )
    node_ip = context.address_info["node_ip_address"]
    if node_ip != LOOPBACK:  # Ray was imported before _CLUSTER_SWITCH was set
        ray.shutdown()
        raise RuntimeError(
            f"local Ray came up on {node_ip}, not {LOOPBACK}: start it through "
            f"ddsp_gym.agents.ray_runs.init_ray before anything imports ray, or set "
            f"{_CLUSTER_SWITCH}=0"
        )
    return ray


# ---- bench rl on Ray ---------------------------------------------------------------------


def _run_one_on_worker(*args: Any) -> dict[str, Any]:
    """:func:`~ddsp_gym.agents.rl_bench.run_one` in a Ray worker, with the ``ddsp-gym``
    command's CPU settings (the worker is a fresh process)."""
    from ddsp_gym.runtime import tune_for_cpu

    tune_for_cpu()
    from ddsp_gym.agents.rl_bench import run_one

    return run_one(*args)


def ray_runner(address: str | None = None, num_cpus: int | None = None) -> Runner:
    """A :data:`~ddsp_gym.agents.rl_bench.Runner` that runs each (env, algo, seed) as a Ray
    task of one CPU and yields the records as they finish (so each is written at once)."""

    def run(
        todo: Sequence[tuple[str, str, int]],
        steps: int,
        eval_points: int,
        targets: int,
        budget: int,
    ) -> Iterator[dict[str, Any]]:
        if not todo:
            return
        ray = init_ray(address, num_cpus)
        # No retries: a run that fails fails the command, as it does locally.
        task = ray.remote(num_cpus=1, max_retries=0)(_run_one_on_worker)
        pending = [task.remote(e, a, s, steps, eval_points, targets, budget) for e, a, s in todo]
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield ray.get(done[0])
        finally:
            for ref in pending:  # interrupted or failed: stop the rest
                ray.cancel(ref, force=True)

    return run


# ---- sweeps ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamSpec:
    """One hyperparameter of a sweep: ``name`` (dots reach into dicts, as in
    ``policy_kwargs.net_arch``), a distribution and its arguments, or a fixed value."""

    name: str
    kind: str  # one of DISTRIBUTIONS, or "value"
    args: tuple[Any, ...]


def _yaml_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"cannot read {text!r}: {err}") from err


def parse_param(text: str) -> ParamSpec:
    """``NAME=DIST:ARGS`` or ``NAME=VALUE`` -> :class:`ParamSpec`.

    DIST: ``uniform:LOW:HIGH``, ``loguniform:LOW:HIGH``, ``int:LOW:HIGH``,
    ``logint:LOW:HIGH`` (both ends included), ``choice:A,B,...`` (each a YAML value:
    ``choice:[64,64],[256,256]`` is two lists). Anything else is one fixed YAML value.
    """
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep or not name or not spec:
        raise ValueError(f"--param {text!r}: expected NAME=DIST:ARGS or NAME=VALUE")
    kind, _, rest = spec.partition(":")
    if kind not in DISTRIBUTIONS:
        return ParamSpec(name, "value", (_yaml_value(spec),))
    if kind == "choice":
        options = _yaml_value(f"[{rest}]")
        if not options:
            raise ValueError(f"--param {text!r}: choice needs at least one value")
        return ParamSpec(name, kind, tuple(options))
    bounds = rest.split(":")
    if len(bounds) != 2:
        raise ValueError(f"--param {text!r}: {kind} takes LOW:HIGH")
    number = int if kind in ("int", "logint") else float
    try:
        low, high = (number(b) for b in bounds)
    except ValueError as err:
        raise ValueError(f"--param {text!r}: bounds must be {number.__name__}s") from err
    if not low < high or (kind.startswith("log") and low <= 0):
        raise ValueError(f"--param {text!r}: need 0 < LOW < HIGH (LOW < HIGH if not log)")
    return ParamSpec(name, kind, (low, high))


def tune_domain(spec: ParamSpec) -> Any:
    """The Ray Tune search space entry of ``spec``."""
    from ray import tune

    if spec.kind == "value":
        return spec.args[0]
    if spec.kind == "choice":
        return tune.choice(list(spec.args))
    low, high = spec.args
    return {
        "uniform": lambda: tune.uniform(low, high),
        "loguniform": lambda: tune.loguniform(low, high),
        "int": lambda: tune.randint(low, high + 1),  # Tune's upper bound is exclusive
        "logint": lambda: tune.lograndint(low, high + 1),
    }[spec.kind]()


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"policy_kwargs.net_arch": x}`` -> ``{"policy_kwargs": {"net_arch": x}}``."""
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        *parents, leaf = dotted.split(".")
        node = out
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return out


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` laid over it, dicts merged key by key."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def sb3_entry(algo: str, env_id: str) -> dict[str, Any]:
    """``env_id``'s entry of ``algo``'s hyperparameter file with ``policy_kwargs`` as a
    dict (RL Zoo writes it as a Python expression), so sweeps can set keys inside it."""
    from ddsp_gym.agents.sb3 import load_hyperparams, policy_kwargs_from

    entry = load_hyperparams(algo, env_id)
    if "policy_kwargs" in entry:
        entry["policy_kwargs"] = policy_kwargs_from(entry["policy_kwargs"])
    return entry


def check_params(algo: str, specs: Sequence[ParamSpec], env_id: str = SWEEP_ENTRY) -> None:
    """ValueError naming the first hyperparameter ``algo``'s SB3 class does not take, or
    a name given twice (before any trial starts, not in a remote traceback)."""
    import inspect

    names = [s.name for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"--param given twice for {', '.join(twice)}")
    from stable_baselines3 import PPO, SAC, TD3

    cls = {"ppo": PPO, "sac": SAC, "td3": TD3}[algo]
    known = set(inspect.signature(cls.__init__).parameters) - {"self", "env"}
    known |= set(sb3_entry(algo, env_id))  # + the file's own keys, e.g. n_envs
    for spec in specs:
        if spec.name.split(".")[0] not in known:
            raise ValueError(
                f"{algo} has no hyperparameter {spec.name.split('.')[0]!r}; "
                f"known: {', '.join(sorted(known))}"
            )


def _sweep_trial(
    config: dict[str, Any],
    env_id: str,
    algo: str,
    seed: int,
    steps: int,
    eval_points: int,
    targets: int,
    budget: int,
) -> None:
    """One Tune trial: train with the YAML hyperparameters under ``config``, reporting
    held-out success at each evaluation point (the last report is the trial's result)."""
    from ddsp_gym.runtime import tune_for_cpu

    tune_for_cpu()
    import gymnasium as gym
    from ray import tune

    from ddsp_gym.agents.rl_bench import SB3Learner, eval_steps, score_policy
    from ddsp_gym.agents.sb3 import make_model

    hyperparams = merge(sb3_entry(algo, env_id), nest(config))
    learner = SB3Learner(make_model(env_id, algo, seed, hyperparams), algo)
    env = gym.make(env_id, max_episode_steps=budget)
    trained = 0
    for point in eval_steps(steps, eval_points):
        learner.learn(point - trained)
        trained = point
        tune.report({"steps": point, **score_policy(learner.policy(), env, targets, budget)})
    env.close()


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars and tuples become Python numbers and lists."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def best_trial(trials: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The trial with the highest held-out success, ties to the lower median best
    distance, then to the earlier trial; None when no trial finished."""
    done = [t for t in trials if t.get("success") is not None]
    if not done:
        return None
    return min(
        done, key=lambda t: (-t["success"], t.get("median_best_distance", math.inf), t["trial"])
    )


def run_sweep(
    env_id: str,
    algo: str,
    specs: Sequence[ParamSpec],
    trials: int,
    steps: int,
    eval_points: int = 2,
    targets: int = 20,
    budget: int = 200,
    seed: int = 0,
    address: str | None = None,
    num_cpus: int | None = None,
) -> dict[str, Any]:
    """A Ray Tune search of ``trials`` configurations drawn from ``specs`` (seeded by
    ``seed``; each trial trains from ``seed`` too, so trials differ by hyperparameters
    only) -> ``{"trials": [...], "best": ...}``; each trial one CPU."""
    check_params(algo, specs, env_id)
    if trials < 1 or steps < 1:
        raise ValueError(f"trials and steps must be >= 1, not {trials} and {steps}")
    init_ray(address, num_cpus)
    # Tune's newer console output ignores verbose=0 and names the scratch folder below.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    trainable = tune.with_resources(
        tune.with_parameters(
            _sweep_trial, env_id=env_id, algo=algo, seed=seed, steps=steps,
            eval_points=eval_points, targets=targets, budget=budget,
        ),
        {"cpu": 1},
    )  # fmt: skip
    start = time.perf_counter()
    # Tune's own files (experiment state, per-trial logs) are scratch: the record we
    # keep is the results file, written from the ResultGrid below.
    with tempfile.TemporaryDirectory(prefix="ddsp_gym_tune_") as storage:
        tuner = tune.Tuner(
            trainable,
            param_space={s.name: tune_domain(s) for s in specs},
            tune_config=tune.TuneConfig(
                num_samples=trials, search_alg=BasicVariantGenerator(random_state=seed)
            ),
            run_config=tune.RunConfig(storage_path=storage, name="sweep", verbose=0),
        )
        grid = tuner.fit()
        records = [_trial_record(i, grid[i]) for i in range(len(grid))]
    records.sort(key=lambda r: r["trial"])
    return {"trials": records, "best": best_trial(records), "wall_s": time.perf_counter() - start}


def _trial_record(index: int, result: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"trial": index, "config": _plain(dict(result.config))}
    if result.error is not None:
        return {**record, "success": None, "error": str(result.error).strip().splitlines()[-1]}
    frame = result.metrics_dataframe
    curve = [
        {"steps": int(r["steps"]), "success": float(r["success"]),
         "median_best_distance": float(r["median_best_distance"])}
        for r in frame.to_dict("records")
    ]  # fmt: skip
    return {**record, **{k: v for k, v in curve[-1].items() if k != "steps"}, "curve": curve}


def format_sweep_markdown(document: Mapping[str, Any]) -> str:
    """The trials as a Markdown table, best first, with the command that made them."""
    trials = document["trials"]
    names = sorted({k for t in trials for k in t["config"]})
    lines = [
        "| trial | " + " | ".join(names) + " | held-out success | median best distance |",
        "|---" * (len(names) + 3) + "|",
    ]
    ranked = sorted(trials, key=lambda t: (t["success"] is None, -(t["success"] or 0)))
    for t in ranked:
        values = " | ".join(_cell(t["config"].get(n)) for n in names)
        if t["success"] is None:
            score = f"failed: {t.get('error', '?')} | -"
        else:
            score = f"{100 * t['success']:.0f} % | {t['median_best_distance']:.3g}"
        lines.append(f"| {t['trial']} | {values} | {score} |")
    best = document["best"]
    best_line = (
        "No trial finished."
        if best is None
        else f"Best: trial {best['trial']}, {_cell(best['config'])}, "
        f"{100 * best['success']:.0f} % held-out success."
    )
    return (
        f"{document['env']}, {document['algo']}, {document['steps']:,} env steps per trial, "
        f"{document['targets']} held-out targets of at most {document['budget']} steps.\n\n"
        + "\n".join(lines)
        + f"\n\n{best_line}\n\nMade with:\n\n    {document['command']}\n"
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().rstrip(".").strip()


# ---- RLlib -------------------------------------------------------------------------------


def rllib_env_id(env_id: str) -> str:
    """The module-prefixed id RLlib's remote env runners can make: gymnasium imports
    ``ddsp_gym`` (registering the envs) before it looks the id up."""
    return env_id if ":" in env_id else f"ddsp_gym:{env_id}"


def train_rllib_ppo(
    env_id: str,
    iterations: int,
    seed: int = 0,
    env_runners: int = 1,
    batch_size: int = 512,
    address: str | None = None,
    num_cpus: int | None = None,
) -> list[dict[str, Any]]:
    """Train RLlib's PPO on ``env_id`` for ``iterations`` iterations of ``batch_size`` env
    steps each -> one row per iteration (env steps so far, mean episode return).

    Settings follow the env's entry of agents/hyperparams/ppo.yml where RLlib has the same knob
    (learning rate, gamma, GAE lambda, clip, epochs, minibatch, [64, 64] MLP).
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, not {iterations}")
    init_ray(address, num_cpus)
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    hp = sb3_entry("ppo", env_id)
    config = (
        PPOConfig()
        .environment(rllib_env_id(env_id))
        .env_runners(num_env_runners=env_runners, num_envs_per_env_runner=1)
        .training(
            lr=hp["learning_rate"],
            gamma=hp["gamma"],
            lambda_=hp["gae_lambda"],
            clip_param=hp["clip_range"],
            num_epochs=hp["n_epochs"],
            minibatch_size=min(hp["batch_size"], batch_size),
            train_batch_size_per_learner=batch_size,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=hp["policy_kwargs"]["net_arch"]))
        .debugging(seed=seed)
    )
    algo = config.build_algo()
    rows = []
    try:
        for i in range(iterations):
            result = algo.train()
            runners = result.get("env_runners", {})
            rows.append(
                {
                    "iteration": i + 1,
                    "env_steps": int(result.get("num_env_steps_sampled_lifetime", 0)),
                    "episode_return_mean": float(runners.get("episode_return_mean", math.nan)),
                }
            )
    finally:
        algo.stop()
    return rows


def write_sweep(document: dict[str, Any], out: Path) -> Path:
    """``out`` (JSON) and its Markdown table beside it; returns ``out``."""
    from ddsp_gym.agents.benchmark import write_json_atomic

    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, document)
    out.with_suffix(".md").write_text(format_sweep_markdown(document))
    return out
