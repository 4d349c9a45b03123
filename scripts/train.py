"""Train an RL agent on a ddsp_gym env and score it on held-out target seeds.

    python scripts/train.py --env ddsp_gym/SineTuner-v1 --algo ppo --steps 20000
    python scripts/train.py --env ddsp_gym/SineTuner-v1 --algo jax_ppo --steps 200000

SB3 agents (ppo, sac, td3) and the JAX-native trainers (jax_ppo, apg, hybrid_pg).
Writes runs/<env>-<algo>/: the model (model.zip for SB3, model.npz for JAX),
checkpoints/, tb/ (TensorBoard) and eval.json (the benchmark's cell for this agent:
success rate on the held-out seeds, queries to success, best distance).
Hyperparameters: agents/hyperparams/<algo>.yml (the env id's entry;
jax_ppo.yaml, apg.yaml, hybrid_pg.yaml for the JAX trainers).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gymnasium as gym

import ddsp_gym  # noqa: F401  (registers the envs)
from ddsp_gym.agents.benchmark import eval_seeds, make_eval_env, summarize
from ddsp_gym.agents.sb3 import ALGOS, train
from ddsp_gym.catalog import JAX_RL_ALGOS
from ddsp_gym.runtime import tune_for_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, help="env id, e.g. ddsp_gym/SineTuner-v1")
    parser.add_argument("--algo", required=True, choices=ALGOS + JAX_RL_ALGOS)
    parser.add_argument("--steps", type=int, required=True, help="training env steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-seeds", type=int, default=20, help="held-out targets (20)")
    parser.add_argument("--eval-budget", type=int, default=200, help="steps per target (200)")
    parser.add_argument("--checkpoint-every", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=None, help="run folder")
    parser.add_argument(
        "--env-kwargs",
        type=json.loads,
        default=None,
        help='JAX trainers: gym.make keyword arguments as JSON, e.g. \'{"control": "delta"}\'',
    )
    args = parser.parse_args()
    if args.env_kwargs is not None and args.algo not in JAX_RL_ALGOS:
        parser.error("--env-kwargs is for the JAX trainers (jax_ppo, apg, hybrid_pg)")
    tune_for_cpu()
    out = args.out or Path("runs") / f"{args.env.split('/')[-1]}-{args.algo}"
    if args.algo in JAX_RL_ALGOS:
        from ddsp_gym.agents import jax_rl

        try:
            policy = jax_rl.train(
                args.env, args.algo, args.steps, args.seed, out, args.checkpoint_every,
                env_kwargs=args.env_kwargs, verbose=1,
            )  # fmt: skip
        except (ValueError, TypeError) as err:
            parser.exit(2, f"train.py: error: {err}\n")
        env = gym.make(args.env, max_episode_steps=args.eval_budget, **(args.env_kwargs or {}))
    else:
        policy = train(
            args.env, args.algo, args.steps, args.seed, out, args.checkpoint_every, verbose=1
        )
        env = make_eval_env(args.env, args.eval_budget, queries=False)
    results = [policy.solve(env, s, args.eval_budget) for s in eval_seeds(args.eval_seeds)]
    cell = summarize(
        args.env, args.algo, results, args.eval_budget, 0.0, env.unwrapped.task, args.steps
    )
    (out / "eval.json").write_text(json.dumps(cell, indent=1))
    print(
        f"{args.env} {args.algo}: {cell['successes']}/{cell['seeds']} held-out targets solved, "
        f"median best distance {cell['median_best_distance']:.3g} {cell['distance_unit']}; "
        f"model and logs in {out}/"
    )


if __name__ == "__main__":
    main()
