"""Does an SB3 agent trained on learned votes find patches the hidden listener likes?

    python scripts/prefer_rlhf.py --steps 20000 --seeds 0 1 2

PPO trains on ddsp_gym/PreferencePatch-v1 (its default reward: the GP preference model
fit on 40 votes of the simulated rater, rater seed 0). After training, each policy
plays 10 evaluation episodes; the patch it ends on is scored on the rater's *hidden*
noiseless utility (TimbreUtility(0)) as a fraction of the best reachable utility, next
to a random policy's and to the 40-vote model's own best patch. Writes
results/prefer_rlhf.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import ddsp_gym  # noqa: F401  (registers the envs)
from ddsp_gym.preference.rater import TimbreUtility

ENV_ID = "ddsp_gym/PreferencePatch-v1"


def final_patches(env: gym.Env, policy, episodes: int) -> np.ndarray:
    """The unit knobs each evaluation episode ends on (episodes, d)."""
    out = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=10_000 + episode)
        done = False
        while not done:
            obs, _, terminated, truncated, _ = env.step(policy(obs))
            done = terminated or truncated
        out.append(np.asarray(env.unwrapped.state.knobs, np.float64))
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="PPO training steps")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes")
    parser.add_argument("-o", "--output", type=Path, default=Path("results"))
    args = parser.parse_args()
    import torch
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    utility = TimbreUtility(0)
    best = utility.best_reachable()
    env = gym.make(ENV_ID)
    source = env.unwrapped.reward_source
    rng = np.random.default_rng(0)
    random_final = final_patches(env, lambda obs: rng.uniform(-1, 1, 4).astype(np.float32),
                                 args.episodes)  # fmt: skip
    rows = {"random policy": [float(np.mean(utility(random_final))) / best]}
    rows["model's best patch (40 votes)"] = [float(utility(source.best_knobs[None])[0]) / best]
    rows["PPO"] = []
    seconds = []
    for seed in args.seeds:
        start = time.perf_counter()
        agent = PPO("MlpPolicy", env, seed=seed, device="cpu", n_steps=1024, batch_size=64)
        agent.learn(args.steps)
        seconds.append(time.perf_counter() - start)
        final = final_patches(env, lambda obs, a=agent: a.predict(obs, deterministic=True)[0],
                              args.episodes)  # fmt: skip
        rows["PPO"].append(float(np.mean(utility(final))) / best)
        print(f"seed {seed}: PPO's final patches {rows['PPO'][-1]:.3f} of best", flush=True)
    results = {"command": "python scripts/prefer_rlhf.py " + shlex.join(sys.argv[1:]),
               "steps": args.steps, "seeds": args.seeds, "episodes": args.episodes,
               "best_reachable": best, "fraction_of_best": rows,
               "train_seconds": seconds}  # fmt: skip
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "prefer_rlhf.json").write_text(json.dumps(results, indent=1))
    lines = [
        "# RLHF on simulated votes: PPO on ddsp_gym/PreferencePatch-v1",
        "",
        f"Made by `{results['command']}`. PPO ({args.steps} steps per seed, seeds "
        f"{args.seeds}) trains on the reward of a GP preference model fit on 40 votes of "
        "the simulated rater (seed 0); each policy's final patches over "
        f"{args.episodes} episodes are scored on the rater's hidden noiseless utility, "
        f"as a fraction of the best reachable ({best:.3f}).",
        "",
        "| policy | fraction of best (mean over episodes; per seed) |",
        "|---|---|",
    ]
    for name, values in rows.items():
        lines.append(
            f"| {name} | {np.mean(values):.3f} ({', '.join(f'{v:.3f}' for v in values)}) |"
        )
    (args.output / "prefer_rlhf.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
