"""Embedding reward: shipped models offline, cosine distance, the JAX proxy, the
SpokenTimbre env (espeak-ng targets)."""

from __future__ import annotations

import shutil

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ddsp_gym  # noqa: F401  (registers the envs)
from ddsp_gym.embedding import (
    EMBEDDING_SIZE,
    EmbeddingUnavailable,
    cosine_distance,
    embed,
    proxy_distance,
)
from ddsp_gym.embedding import models as models_module
from ddsp_gym.embedding.agreement import rank_agreement
from ddsp_gym.embedding.reward import EmbeddingReward

SR = 16000
T = np.arange(8000) / SR
SINE = np.sin(2 * np.pi * 220 * T).astype(np.float32)
SQUARE = np.sign(np.sin(2 * np.pi * 220 * T)).astype(np.float32)
NOISE = np.random.default_rng(0).normal(size=8000).astype(np.float32)
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="no espeak-ng")


@pytest.mark.parametrize("model", ["sound", "voice"])
def test_shipped_model_embeds_deterministically(model):
    a, b = embed(SINE, SR, model), embed(SINE.copy(), SR, model)
    assert a.shape == (EMBEDDING_SIZE[model],) and a.dtype == np.float32
    assert np.all(np.isfinite(a)) and np.linalg.norm(a) > 0
    np.testing.assert_array_equal(a, b)
    # Both models normalise the level first.
    assert cosine_distance(a, embed(0.1 * SINE, SR, model)) < 1e-3


@pytest.mark.parametrize("model", ["sound", "voice"])
def test_cosine_distance_orders_sounds(model):
    sine, square, noise = (embed(x, SR, model) for x in (SINE, SQUARE, NOISE))
    assert cosine_distance(sine, sine) == pytest.approx(0.0, abs=1e-6)
    assert cosine_distance(sine, square) > 0.05
    assert cosine_distance(sine, noise) > 0.05


def test_cosine_distance_and_embed_refuse_bad_input():
    with pytest.raises(ValueError, match="shape"):
        cosine_distance(np.ones(3), np.ones(4))
    assert cosine_distance(np.zeros(3), np.ones(3)) == 1.0
    with pytest.raises(ValueError, match="finite"):
        embed(np.array([0.0, np.nan]), SR)
    with pytest.raises(ValueError, match="unknown embedding model"):
        embed(SINE, SR, "speech")


def test_missing_package_names_the_install_line(monkeypatch):
    import importlib

    original = importlib.import_module

    def fake(name, *args, **kwargs):
        if name.startswith("aisfx"):
            raise ModuleNotFoundError("No module named 'aisfx'")
        return original(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", fake)
    models_module._sound_model.cache_clear()
    try:
        with pytest.raises(EmbeddingUnavailable, match=r"aisfx.*pip install --no-deps aisfx"):
            embed(SINE, SR, "sound")
    finally:
        monkeypatch.undo()
        models_module._sound_model.cache_clear()


def test_proxy_is_zero_on_itself_level_invariant_and_ordered():
    assert float(proxy_distance(SINE, SINE, SR)) == pytest.approx(0.0, abs=1e-4)
    assert float(proxy_distance(0.2 * SINE, SINE, SR)) == pytest.approx(0.0, abs=1e-3)
    assert float(proxy_distance(SINE, SQUARE, SR)) > 1.0
    assert float(proxy_distance(SINE, NOISE, SR)) > float(proxy_distance(SINE, SQUARE, SR))


def test_proxy_gradient_matches_finite_differences():
    """d proxy / d knobs of the formant plant (SpokenTimbre's) vs central differences."""
    from ddsp_gym.plants import make_plant

    plant = make_plant("formant")
    key = jax.random.PRNGKey(0)
    target = plant.render(jnp.full(6, 0.7), key, None)
    f = jax.jit(lambda u: proxy_distance(plant.render(u, key, None), target, SR))
    u = jnp.array([0.3, 0.4, 0.5, 0.6, 0.45, 0.35])
    grad = np.asarray(jax.grad(f)(u))
    eps = 3e-3
    fd = [(float(f(u.at[i].add(eps))) - float(f(u.at[i].add(-eps)))) / (2 * eps) for i in range(6)]
    np.testing.assert_allclose(grad, fd, rtol=0.05, atol=0.02)
    assert np.linalg.norm(grad) > 1.0


def test_rank_agreement():
    assert rank_agreement([1, 2, 3, 4], [10, 20, 30, 40]).spearman == pytest.approx(1.0)
    assert rank_agreement([1, 2, 3, 4], [4, 3, 2, 1]).spearman == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="at least 3"):
        rank_agreement([1, 2], [1, 2])


def test_embedding_reward_rates_against_the_target():
    source = EmbeddingReward(model="both", sample_rate=SR)
    with pytest.raises(RuntimeError, match="begin_episode"):
        source.rate(SINE, {})
    source.begin_episode(SINE, target_known=False)
    same, other = source.rate(SINE, {}), source.rate(NOISE, {})
    assert same.distance == pytest.approx(0.0, abs=1e-5) and same.success
    assert other.distance > 0.05 and other.reward == -other.distance and not other.success
    assert set(other.info) == {"sound_distance", "voice_distance"}
    with pytest.raises(ValueError, match="model must be"):
        EmbeddingReward(model="speech")


@needs_espeak
def test_spoken_words_render():
    from ddsp_gym.embedding.spoken import speak, spoken_bank

    word = speak("heed", SR, 8000)
    assert word.shape == (8000,) and np.max(np.abs(word[:400])) > 1e-3  # silence trimmed
    bank = spoken_bank(["heed", "boo"], SR, 8000)
    assert bank.shape == (2, 8000) and not np.allclose(bank[0], bank[1])
    np.testing.assert_array_equal(bank[0], word)  # deterministic
    with pytest.raises(ValueError, match="empty"):
        speak(" ", SR, 8000)


@needs_espeak
def test_spoken_timbre_env_draws_words_and_reports_the_proxy_gradient():
    env = gym.make("ddsp_gym/SpokenTimbre-v1", expose_grad=True)
    targets = []
    for seed in range(6):
        env.reset(seed=seed)
        targets.append(env.unwrapped.target_audio())
    env.reset(seed=0)
    np.testing.assert_array_equal(env.unwrapped.target_audio(), targets[0])  # seeded
    assert len({t.tobytes() for t in targets}) > 1  # the bank: several words
    _, reward, _, _, info = env.step(env.action_space.sample())
    assert np.isfinite(reward) and info["distance"] > 0
    assert info["grad_source"] == "proxy" and np.all(np.isfinite(info["reward_grad"]))
    env.close()


@needs_espeak
def test_spoken_timbre_takes_a_target_and_the_embedding_reward(tmp_path):
    from ddsp_gym.audio_io import save_audio
    from ddsp_gym.embedding.spoken import speak

    wav = save_audio(tmp_path / "word.wav", speak("boy", SR, 8000), SR)
    env = gym.make("ddsp_gym/SpokenTimbre-v1", target=str(wav), reward={"source": "embedding"})
    env.reset(seed=0)
    _, reward, _, _, info = env.step(env.action_space.sample())
    assert reward == pytest.approx(-info["distance"])
    assert 0 < info["reward_source"]["sound_distance"] < 2
    env.close()


def test_a_target_bank_draws_a_row_per_episode_and_bad_targets_are_refused():
    bank = np.stack([SINE, SQUARE, NOISE])
    env = gym.make("ddsp_gym/FormantVowel-v1", target=bank)
    seen = set()
    for seed in range(8):
        env.reset(seed=seed)
        row = env.unwrapped.target_audio()
        assert any(np.array_equal(row, b[: row.size]) for b in bank)
        seen.add(row.tobytes())
    assert len(seen) > 1
    env.close()
    with pytest.raises(ValueError, match="finite samples"):
        gym.make("ddsp_gym/FormantVowel-v1", target=np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="spoken"):
        gym.make("ddsp_gym/FormantVowel-v1", target={"words": ["heed"]})
