"""Faust plants: the Faust compiler's JAX output as a differentiable plant.

The default program runs from its packaged JAX source everywhere. Tests that compile
Faust (or compare with DawDreamer's own Faust renderer, the compiler's C++ path through
LLVM) need DawDreamer (the ``dawdreamer`` fixture): they skip, saying so, where it does
not import, and fail there under CI.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddsp_gym.plants import make_plant
from ddsp_gym.plants.faust import DEFAULT_FAUST_CODE, FaustError, compile_to_jax, source_key
from tests.conftest import make

needs_dawdreamer = pytest.mark.usefixtures("dawdreamer")

EFFECT = """\
import("stdfaust.lib");
drive = hslider("drive[unit:dB]", 0, 0, 24, 0.1) : ba.db2linear;
mix = hslider("mix", 1, 0, 1, 0.01);
bypass = checkbox("bypass");
process = _ <: _, (*(drive) : ma.tanh) : si.interpolate(mix) : *(1 - bypass);
"""


def test_knob_specs_come_from_the_sliders():
    plant = make_plant("faust")
    specs = {s.name: s for s in plant.knob_specs}
    assert list(specs) == ["cutoff", "level", "q"]  # nentry "freq" is a fixed setting
    assert (specs["cutoff"].low, specs["cutoff"].high, specs["cutoff"].curve) == (
        150.0,
        5000.0,
        "log",
    )
    assert specs["cutoff"].unit == "Hz" and specs["level"].unit == "dB"
    assert specs["q"].curve == "linear" and specs["q"].description == "resonance"
    assert not plant.needs_input


def test_render_is_finite_at_every_corner_and_vmaps():
    plant = make_plant("faust")
    corners = jnp.array(np.stack(np.meshgrid(*[[0.0, 1.0]] * 3)).reshape(3, -1).T, jnp.float32)
    audio = jax.jit(jax.vmap(plant.render, in_axes=(0, None)))(corners, jax.random.PRNGKey(0))
    assert audio.shape == (8, plant.n_samples) and bool(jnp.all(jnp.isfinite(audio)))
    single = plant.render(corners[3], jax.random.PRNGKey(0))
    np.testing.assert_allclose(audio[3], single, atol=2e-5)  # float32, batched vs single


def test_level_knob_scales_the_output_by_its_decibels():
    plant = make_plant("faust")
    key = jax.random.PRNGKey(0)
    quiet = plant.render(jnp.array([0.5, 0.0, 0.2]), key)  # level -24 dB
    loud = plant.render(jnp.array([0.5, 1.0, 0.2]), key)  # level 0 dB
    np.testing.assert_allclose(np.asarray(loud) * 10 ** (-24 / 20), quiet, atol=1e-6)


def test_fixed_settings_and_bad_names():
    low = make_plant("faust", fixed={"freq": 110})
    high = make_plant("faust", fixed={"freq": 440})
    key, knobs = jax.random.PRNGKey(0), jnp.array([1.0, 1.0, 0.0])
    # The saw's period follows the fixed frequency: autocorrelation peak at sr / f.
    for plant, f in ((low, 110), (high, 440)):
        x = np.asarray(plant.render(knobs, key))[800:]
        ac = np.correlate(x, x, "full")[x.size - 1 :]
        lag = 20 + int(np.argmax(ac[20:400]))
        assert lag == pytest.approx(16_000 / f, abs=1)
    with pytest.raises(FaustError, match=r"fixed names \['cutof'\].*those are \['freq'\]"):
        make_plant("faust", fixed={"cutof": 1.0})


def test_gradients_flow_to_every_knob():
    plant = make_plant("faust")
    key = jax.random.PRNGKey(0)
    grad = jax.grad(lambda k: jnp.sum(plant.render(k, key) ** 2))(jnp.array([0.4, 0.6, 0.5]))
    assert bool(jnp.all(jnp.isfinite(grad))) and bool(jnp.all(jnp.abs(grad) > 1e-3))


def test_unrolled_render_is_the_one_sample_loop_and_its_gradient_the_renders(monkeypatch):
    # The render runs FORWARD_UNROLL samples per loop iteration, its gradient the plain
    # loop: the same samples (to float32 rounding), and a gradient that is the
    # (unrolled) render's slope.
    from ddsp_gym.plants import faust

    assert faust.FORWARD_UNROLL > 1
    plant = make_plant("faust")
    key = jax.random.PRNGKey(0)
    knobs = jnp.array([0.4, 0.6, 0.5])
    fast = np.asarray(jax.jit(lambda k: plant.render(k, key))(knobs))
    monkeypatch.setattr(faust, "FORWARD_UNROLL", 1)
    plain = np.asarray(jax.jit(lambda k: plant.render(k, key))(knobs))
    np.testing.assert_allclose(fast, plain, atol=2e-5 * np.max(np.abs(plain)))
    monkeypatch.undo()

    weights = jnp.asarray(np.random.default_rng(0).standard_normal(plant.n_samples), jnp.float32)
    loss = jax.jit(lambda k: jnp.sum(plant.render(k, key) * weights))
    grad = np.asarray(jax.grad(loss)(knobs))
    h = 1e-3
    slope = [
        (float(loss(knobs.at[i].add(h))) - float(loss(knobs.at[i].add(-h)))) / (2 * h)
        for i in range(3)
    ]
    np.testing.assert_allclose(grad, slope, rtol=2e-2, atol=1e-2 * np.max(np.abs(slope)))


def test_matches_dawdreamers_own_faust_renderer(dawdreamer):
    """The same program through the Faust compiler's LLVM/C++ path (DawDreamer's
    FaustProcessor) gives the same samples (measured max error 3e-5 of 0.4 peak)."""
    plant = make_plant("faust")
    engine = dawdreamer.RenderEngine(plant.sample_rate, 64)
    faust = engine.make_faust_processor("faust")
    faust.set_dsp_string(plant.code)
    assert faust.compile()
    engine.load_graph([(faust, [])])
    rng = np.random.default_rng(0)
    for _ in range(3):
        knobs = rng.uniform(0, 1, 3).astype(np.float32)
        for name, value in plant.controls(jnp.asarray(knobs)).items():
            faust.set_parameter(f"/lowpass_saw/{name}", float(value))
        engine.render(plant.duration)
        reference = faust.get_audio()[0][: plant.n_samples]
        ours = np.asarray(plant.render(knobs, jax.random.PRNGKey(0)))
        np.testing.assert_allclose(ours, reference, atol=1e-4)


@needs_dawdreamer
def test_packaged_source_is_what_the_compiler_makes():
    """The packaged JAX source of the default program renders as a fresh compile does."""
    from ddsp_gym.plants import faust as faust_lib

    fresh = compile_to_jax(DEFAULT_FAUST_CODE)
    packaged = faust_lib._cached_source(source_key(DEFAULT_FAUST_CODE))
    assert packaged is not None
    tick = fresh[fresh.index("def tick") :]
    assert tick == packaged[packaged.index("def tick") :]


@needs_dawdreamer
def test_an_effect_program_processes_its_input(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # compile, cache in a scratch folder
    plant = make_plant("faust", code=EFFECT)
    assert plant.needs_input and [s.name for s in plant.knob_specs] == ["drive", "mix"]
    t = np.arange(plant.n_samples) / plant.sample_rate
    x = jnp.asarray(0.5 * np.sin(2 * np.pi * 200 * t), jnp.float32)
    key = jax.random.PRNGKey(0)
    dry = plant.render(jnp.array([1.0, 0.0]), key, x)  # mix 0: the dry input
    np.testing.assert_allclose(dry, x, atol=1e-6)
    wet = plant.render(jnp.array([1.0, 1.0]), key, x)  # tanh(15.85 x)
    np.testing.assert_allclose(wet, np.tanh(10 ** (24 / 20) * np.asarray(x)), atol=1e-4)
    muted = make_plant("faust", code=EFFECT, fixed={"bypass": 1}).render(
        jnp.array([1.0, 1.0]), key, x
    )
    assert float(jnp.max(jnp.abs(muted))) == 0.0
    # No input: the effect processes its default program, as if given it explicitly.
    program = jnp.asarray(plant.default_input())
    np.testing.assert_array_equal(
        plant.render(jnp.array([0.5, 0.5]), key), plant.render(jnp.array([0.5, 0.5]), key, program)
    )
    assert list((tmp_path / "ddsp_gym" / "faust").glob("*.py"))  # cached for next time


@needs_dawdreamer
@pytest.mark.parametrize(
    "code, message",
    [
        ("process = foo;", r"does not compile: line 1 : ERROR : undefined symbol : foo"),
        ("\n\n\nprocess = 1 : bar;", r"line 4 : ERROR : undefined symbol : bar"),
        ('import("stdfaust.lib");\nprocess = os.osc(440) ;;', r"line 2 : ERROR : syntax error"),
        ('import("stdfaust.lib");\nprocess = os.osc(440);', "has no hslider/vslider"),
    ],
)
def test_faust_errors_are_clear(code, message, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(FaustError, match=message):
        make_plant("faust", code=code)


@needs_dawdreamer
def test_faust_code_kwarg_builds_the_env(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    env = make("ddsp_gym/FaustPatch-v1", faust_code=EFFECT, expose_grad=True)
    assert env.action_space.shape == (2,) and env.unwrapped.plant.needs_input
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.zeros(2, np.float32))
    assert np.isfinite(reward) and info["reward_grad"].shape == (2,)


def test_gradient_agent_solves_the_default_program():
    from ddsp_gym.agents.gradient import GradientAgent

    solved = []
    for seed in (0, 2, 3):  # measured: 9 of seeds 0-9 solved, median 44 steps
        env = make("ddsp_gym/FaustPatch-v1", expose_grad=True, control="absolute")
        result = GradientAgent().solve(env, seed)
        solved.append(result.success and result.param_error < 0.03)
    assert all(solved)


def test_default_program_needs_no_dawdreamer_but_others_name_the_extra(monkeypatch, tmp_path):
    from ddsp_gym.backends.errors import PluginDependencyError
    from ddsp_gym.plants import faust as faust_lib

    monkeypatch.setitem(__import__("sys").modules, "dawdreamer", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # no user cache either
    faust_lib.load_program.cache_clear()
    try:
        plant = make_plant("faust")  # from the packaged JAX source
        assert plant.num_knobs == 3
        with pytest.raises(PluginDependencyError, match=r"ddsp_gym\[plugin\]"):
            make_plant("faust", code=EFFECT)
    finally:
        faust_lib.load_program.cache_clear()
