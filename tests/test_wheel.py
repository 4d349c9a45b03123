"""A built wheel, installed (not editable) in a fresh venv, is a working ddsp_gym."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import ddsp_gym

ROOT = Path(__file__).resolve().parent.parent

# Run inside the fresh venv from a folder outside the repository: every id makes and
# steps, the packaged data loads, and nothing is imported from the source tree.
_SMOKE = """
import json, sys
import gymnasium as gym
import numpy as np
import ddsp_gym
from ddsp_gym.agents.sb3 import load_hyperparams
from ddsp_gym.backends.knob_map import load_knob_map, packaged_maps

assert ddsp_gym.__file__.startswith(sys.prefix), ddsp_gym.__file__
played = {}
for env_id in ddsp_gym.ENV_IDS:
    env = gym.make(env_id)
    obs, _ = env.reset(seed=0)
    obs, reward, *_ = env.step(env.action_space.sample())
    assert np.isfinite(obs).all() and np.isfinite(reward)
    played[env_id] = float(reward)
maps = {name: len(load_knob_map(name).knobs) for name in packaged_maps()}
print(json.dumps({
    "played": played, "maps": maps,
    "ppo": {env_id: load_hyperparams("ppo", env_id)["n_envs"] for env_id in ddsp_gym.ENV_IDS},
    "version": ddsp_gym.__version__,
}))
"""


def _source_packages() -> set[str]:
    """Every package of the source tree, by its installed name."""
    names = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "ddsp_gym").rglob("__init__.py")
    }
    names |= {
        "ddsp_gym.agents"
        + "".join("." + part for part in p.parent.relative_to(ROOT / "agents").parts)
        for p in (ROOT / "agents").rglob("__init__.py")
    }
    return names


def _copy_of_the_tracked_files(dest: Path) -> Path:
    """The repository's files as a fresh clone has them: no build/ left by an earlier build
    (setuptools would package stale modules from it), no venv, no caches."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source, target = ROOT / name, dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(source.readlink())
        elif source.is_file():
            shutil.copy2(source, target)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = _copy_of_the_tracked_files(tmp_path_factory.mktemp("source"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(out)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    (path,) = out.glob("ddsp_gym-*.whl")
    return path


def test_the_wheel_holds_every_package_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {n.rsplit("/", 1)[0].replace("/", ".") for n in names if n.endswith("__init__.py")}
    assert packages == _source_packages()
    hyperparams = [f"agents/hyperparams/{algo}.yml" for algo in ("ppo", "sac", "td3")]
    page = [f"preference/static/{f}" for f in ("index.html", "app.js", "style.css")]
    packaged = ("physiology/lsl_local.cfg", "explore/ranges.json", *hyperparams, *page)
    for data in ("envs_registry.yaml", "py.typed", *packaged):
        assert f"ddsp_gym/{data}" in names, data
    registry = zipfile.ZipFile(wheel).read("ddsp_gym/envs_registry.yaml").decode()
    assert registry == (ROOT / "envs_registry.yaml").read_text()  # contents, not a link
    assert f"ddsp_gym-{ddsp_gym.__version__}.dist-info/METADATA" in names
    assert not any(n.startswith(("agents/", "tests/")) for n in names)


@pytest.mark.slow
def test_the_installed_wheel_plays_every_id_in_a_fresh_venv(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    install = subprocess.run(
        # The physiology extra (pylsl): BioFeedback-v1's default reward reads LSL.
        [str(python), "-m", "pip", "install", "-q", f"{wheel}[physiology]"],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    run = subprocess.run(
        [str(python), "-c", _SMOKE], cwd=tmp_path, capture_output=True, text=True, timeout=1200
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = __import__("json").loads(run.stdout.strip().splitlines()[-1])
    assert sorted(result["played"]) == sorted(ddsp_gym.ENV_IDS)
    assert result["maps"] and all(n > 0 for n in result["maps"].values())
    # The packaged RL Zoo files have an entry for every id.
    assert sorted(result["ppo"]) == sorted(ddsp_gym.ENV_IDS)
    assert result["version"] == ddsp_gym.__version__
    cli = venv / "bin" / "ddsp-gym"
    listed = subprocess.run([str(cli), "list"], capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0 and all(i in listed.stdout for i in ddsp_gym.ENV_IDS)
