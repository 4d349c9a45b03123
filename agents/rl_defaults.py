"""Which env settings does a standard RL algorithm learn with? Measured, not guessed.

``python scripts/rl_defaults.py`` trains SB3 PPO (fixed settings: :data:`PPO_SETTINGS`)
on the native vector env for each (env, candidate, seed) and scores the deterministic
policy at checkpoints on the held-out targets (reset seeds 10000, 10001, ...: the
agent benchmark's), one episode each. Beside them, random search on the same targets
with the same number of plant queries per target as an episode's steps.

A *candidate* is a set of env keyword arguments (control, observation, reward
settings), always spelled out in full, so a run measures the same env whatever the
registry's defaults are at the time. Results go to ``results/rl_defaults.json`` after
every run (a rerun of the same command skips the runs already there) and
``results/rl_defaults.md``: per run and checkpoint the held-out success, and per env
and candidate the interquartile mean (IQM) over seeds, the statistic the target
("IQM >= 95 % within 1M steps") is stated in.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from ddsp_gym.agents import provenance
from ddsp_gym.agents.benchmark import EVAL_SEED_OFFSET, eval_seeds, write_json_atomic


# Every candidate states all the settings it is about, so its runs stay comparable
# when the registry's defaults change.
def _candidate(control: str, observation: str = "summaries", **extra: Any) -> dict[str, Any]:
    moves = {"absolute": {}, "delta": {"max_delta": 0.1}}.get(
        control, {"max_delta": 0.5, "min_delta": 0.001}
    )
    return {
        "control": control,
        **moves,
        "observation": observation,
        "reward_shape": "linear",
        "success_bonus": 0.0,
        **extra,
    }


CANDIDATES: dict[str, dict[str, Any]] = {
    "absolute": _candidate("absolute"),
    "delta": _candidate("delta"),
    "log_delta": _candidate("log_delta"),
    "log_delta+diff": _candidate("log_delta", "difference"),
    "log_delta+diff+bonus": _candidate("log_delta", "difference", success_bonus=1.0),
    "delta+logdiff+logr": _candidate("delta", "log_difference", reward_shape="log"),
    "log_delta+logdiff": _candidate("log_delta", "log_difference"),
    "log_delta+logdiff+logr": _candidate("log_delta", "log_difference", reward_shape="log"),
    "log_delta+logdiff+logr+bonus": _candidate(
        "log_delta", "log_difference", reward_shape="log", success_bonus=5.0
    ),
}

# SB3 PPO as the baseline measured it: 64 envs, 128 steps each per update,
# minibatches of 2048, gamma 0.95, an MLP [64, 64]; SB3's defaults otherwise.
PPO_SETTINGS: dict[str, Any] = {
    "n_envs": 64,
    "n_steps": 128,
    "batch_size": 2048,
    "n_epochs": 10,
    "learning_rate": 3e-4,
    "gamma": 0.95,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "policy_kwargs": {"net_arch": [64, 64]},
}
# Other PPO settings, asked for as "CANDIDATE@PRESET": "small" makes 8x as many updates
# of a given number of env steps (1,024 steps per update instead of 8,192).
PPO_PRESETS: dict[str, dict[str, Any]] = {
    "issue": PPO_SETTINGS,
    "small": {**PPO_SETTINGS, "n_envs": 32, "n_steps": 32, "batch_size": 256},
}
HELD_OUT_TARGETS = 50
TARGET_SUCCESS = 0.95


@dataclass(frozen=True)
class RunSpec:
    """One training run: PPO on ``env_id`` made with ``candidate``'s kwargs."""

    env_id: str
    candidate: str
    seed: int
    steps: int
    checkpoints: tuple[int, ...]

    @property
    def key(self) -> tuple:
        return (self.env_id, self.candidate, self.seed, self.steps)


def split_candidate(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """ "CANDIDATE[@PRESET]" -> (env kwargs, PPO settings)."""
    kwargs_name, _, preset = name.partition("@")
    if kwargs_name not in CANDIDATES or (preset or "issue") not in PPO_PRESETS:
        raise ValueError(
            f"unknown candidate {name!r}; known: {list(CANDIDATES)}, "
            f"optionally @ one of {list(PPO_PRESETS)}"
        )
    return CANDIDATES[kwargs_name], PPO_PRESETS[preset or "issue"]


def run_key(run: dict[str, Any]) -> tuple:
    return (run["env"], run["candidate"], run["seed"], run["steps"])


def checkpoints_for(steps: int, every: int) -> tuple[int, ...]:
    """Evaluation points: every ``every`` steps and at the end."""
    points = list(range(every, steps, every)) if every else []
    return tuple(sorted({*points, steps}))


def evaluate_held_out(
    predict, env_id: str, env_kwargs: dict[str, Any], targets: int = HELD_OUT_TARGETS
) -> dict[str, Any]:
    """Score a deterministic policy on the held-out targets, one episode each.

    ``predict(obs (N, obs_size)) -> actions (N, d)``. All targets play at once in the
    native vector env: env ``i`` reset with seed ``EVAL_SEED_OFFSET + i`` plays the
    episode a single env reset with that seed plays (the agent benchmark's targets).
    Returns successes, steps to success (median over the solved targets) and the final
    distance (median) of each target's episode.
    """
    venv = gym.make_vec(
        env_id, num_envs=targets, vectorization_mode="vector_entry_point", **env_kwargs
    )
    obs, _ = venv.reset(seed=eval_seeds(targets))
    done = np.zeros(targets, bool)
    success = np.zeros(targets, bool)
    length = np.zeros(targets, int)
    final = np.full(targets, np.nan)
    while not done.all():
        obs, _, terminated, truncated, info = venv.step(np.asarray(predict(obs), np.float32))
        ended = (terminated | truncated) & ~done
        length[~done] += 1
        success[ended] = terminated[ended]
        final[ended] = info["distance"][ended]
        done |= ended
    venv.close()
    solved = length[success]
    return {
        "successes": int(success.sum()),
        "targets": targets,
        "success_rate": float(success.mean()),
        "median_steps_to_success": float(np.median(solved)) if solved.size else None,
        "median_final_distance": float(np.median(final)),
    }


def random_search_reference(env_id: str, targets: int = HELD_OUT_TARGETS) -> dict[str, Any]:
    """Random search on the same held-out targets with an episode's steps as its budget."""
    from ddsp_gym.agents.benchmark import make_eval_env
    from ddsp_gym.agents.random_search import RandomSearchAgent

    budget = int(gym.spec(env_id).max_episode_steps)
    env = make_eval_env(env_id, budget)
    agent = RandomSearchAgent()
    results = [agent.solve(env, seed, budget) for seed in eval_seeds(targets)]
    env.close()
    return {
        "env": env_id,
        "budget": budget,
        "successes": int(sum(r.success for r in results)),
        "targets": targets,
    }


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean (rliable's, as ``bench rl`` reports): the mean of the middle
    half; with 5 seeds, the middle 3."""
    from rliable import metrics

    return float(metrics.aggregate_iqm(np.asarray(values, np.float64)))


def train_run(spec: RunSpec, progress: bool = True) -> dict[str, Any]:
    """Train PPO for ``spec`` and evaluate at its checkpoints -> the run's record."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecMonitor

    from ddsp_gym.envs.sb3 import make_sb3_vec_env

    torch.set_num_threads(1)
    env_kwargs, ppo = split_candidate(spec.candidate)
    settings = dict(ppo)
    n_envs = settings.pop("n_envs")
    venv = VecMonitor(make_sb3_vec_env(spec.env_id, n_envs, **env_kwargs))
    model = PPO("MlpPolicy", venv, seed=spec.seed, device="cpu", verbose=0, **settings)
    evaluations: list[dict[str, Any]] = []
    bar = tqdm(
        total=spec.steps,
        desc=f"{spec.env_id.split('/')[-1]} {spec.candidate} s{spec.seed}",
        unit="step",
        unit_scale=True,
        leave=False,
        disable=not progress,
    )

    def evaluate(steps: int) -> None:
        def predict(obs):
            return model.predict(obs, deterministic=True)[0]

        result = evaluate_held_out(predict, spec.env_id, env_kwargs)
        evaluations.append({"steps": steps, **result})
        bar.set_postfix(success=f"{result['successes']}/{result['targets']}")

    class Checkpoints(BaseCallback):
        """Advances the bar; evaluates once the step count passes each checkpoint."""

        def __init__(self) -> None:
            super().__init__()
            self.pending = list(spec.checkpoints)

        def _on_step(self) -> bool:
            bar.update(self.model.n_envs)
            while self.pending and self.num_timesteps >= self.pending[0]:
                evaluate(self.pending.pop(0))
            return True

    start = time.perf_counter()
    callback = Checkpoints()
    model.learn(total_timesteps=spec.steps, callback=callback)
    for steps in callback.pending:  # checkpoints past the last full rollout
        evaluate(steps)
    bar.close()
    venv.close()
    return {
        "env": spec.env_id,
        "candidate": spec.candidate,
        "env_kwargs": env_kwargs,
        "seed": spec.seed,
        "steps": spec.steps,
        "trained_steps": int(model.num_timesteps),
        "ppo": ppo,
        "evaluations": evaluations,
        "wall_s": time.perf_counter() - start,
    }


def load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {"runs": [], "random_search": []}
    return json.loads(path.read_text())


def run_study(
    envs: Sequence[str],
    candidates: Sequence[str],
    seeds: Sequence[int],
    steps: int,
    eval_every: int,
    out: str | Path = "results/rl_defaults.json",
    command: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every (env, candidate, seed) not already in ``out``; write JSON and Markdown
    after each run. Returns the document."""
    for name in candidates:
        split_candidate(name)
    out = Path(out)
    document = load(out)
    version = provenance.code_version()
    for env_id in envs:
        if not any(r["env"] == env_id for r in document["random_search"]):
            reference = random_search_reference(env_id)
            document["random_search"].append({**reference, provenance.VERSION_KEY: version})
            _write(out, document)
    done = {run_key(r) for r in document["runs"]}
    specs = [
        RunSpec(e, c, s, steps, checkpoints_for(steps, eval_every))
        for e in envs
        for c in candidates
        for s in seeds
    ]
    todo = [s for s in specs if s.key not in done]
    for spec in tqdm(todo, desc="runs", disable=not progress):
        record = train_run(spec, progress)
        record = {**record, "command": command, provenance.VERSION_KEY: version}
        document["runs"] = provenance.put(document["runs"], record, run_key)
        _write(out, document)
    return document


def _write(out: Path, document: dict[str, Any]) -> None:
    document = {
        "eval_seed_offset": EVAL_SEED_OFFSET,
        "held_out_targets": HELD_OUT_TARGETS,
        **document,
    }
    write_json_atomic(out, document)
    out.with_suffix(".md").write_text(format_report(document))


def summary_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (env, candidate, steps, checkpoint): per-seed successes and their IQM."""
    groups: dict[tuple, list[tuple[int, int, int]]] = {}
    for run in document["runs"]:
        for ev in run["evaluations"]:
            key = (run["env"], run["candidate"], run["steps"], ev["steps"])
            groups.setdefault(key, []).append((run["seed"], ev["successes"], ev["targets"]))
    rows = []
    for (env_id, candidate, budget, at), seeds in groups.items():
        seeds.sort()
        rates = [s / t for _, s, t in seeds]
        rows.append(
            {
                "env": env_id,
                "candidate": candidate,
                "budget": budget,
                "at": at,
                "seeds": [s for s, _, _ in seeds],
                "successes": [s for _, s, _ in seeds],
                "targets": seeds[0][2],
                "iqm": iqm(rates),
            }
        )
    return rows


def format_report(document: dict[str, Any]) -> str:
    """The Markdown report: summary per env and candidate, then every run."""
    rows = summary_rows(document)
    random = {r["env"]: r for r in document.get("random_search", [])}
    commands = list(dict.fromkeys(r["command"] for r in document["runs"] if r.get("command")))
    lines = [
        "# RL defaults: SB3 PPO per env and candidate settings",
        "",
        "Deterministic policy, one episode on each of "
        f"{document.get('held_out_targets', HELD_OUT_TARGETS)} held-out targets (reset seeds "
        f"{EVAL_SEED_OFFSET}...). Success per seed at each checkpoint; IQM: the interquartile "
        "mean of the seeds' success rates. Random search: the same targets, as many plant "
        "queries per target as an episode has steps (absolute knobs, plain reward).",
        "",
        "## Candidates (env keyword arguments)",
        "",
    ]
    used = list(dict.fromkeys(r["candidate"] for r in document["runs"]))
    for name in used:
        run = next(r for r in document["runs"] if r["candidate"] == name)
        lines.append(
            f"- `{name}`: `{json.dumps(run['env_kwargs'])}`, PPO `{json.dumps(run['ppo'])}`"
        )
    lines += [
        "",
        "## Held-out success",
        "",
        "| env | candidate | run length | at steps | successes per seed | IQM | random search |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda r: (r["env"], r["candidate"], r["budget"], r["at"])):
        ref = random.get(row["env"])
        ref_text = f"{ref['successes']}/{ref['targets']} ({ref['budget']} q)" if ref else "-"
        per_seed = ", ".join(f"{s}" for s in row["successes"])
        lines.append(
            f"| {row['env'].split('/')[-1]} | {row['candidate']} | {row['budget']:,} "
            f"| {row['at']:,} | {per_seed} (of {row['targets']}) | {row['iqm']:.0%} "
            f"| {ref_text} |"
        )
    lines += ["", "Made with:", ""]
    lines += [f"    {c}" for c in commands] or ["    (no runs yet)"]
    return "\n".join(lines) + "\n"
