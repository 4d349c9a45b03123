"""How sure a match is: a posterior over a plant's knobs, p(knobs | target), by NUTS.

The model (issue 25, item 5), stated once here and in docs/matching.md:

- **Prior.** Each sampled knob's unit position u_i (its travel, 0..1) is uniform on
  [0, 1], independently: the knob box. A log knob (Hz, s) is therefore log-uniform in
  its physical range. NUTS runs in the unconstrained logit(u) space (numpyro's
  transform of a Uniform(0, 1) site). Knobs not sampled are *held* at given positions.
- **Features.** phi(u) = 10 log10(mel power + 10^(floor_db / 10)): the plant's render's
  log-mel spectrogram in dB (Hann STFT, ``n_fft``, ``hop``, ``n_mels``), with a smooth
  floor at ``floor_db`` so silence neither dominates the fit nor loses its gradient.
- **Observation.** y = phi(u_true) + eps, eps ~ Normal(0, noise_db^2) independently per
  (frame, mel band): the target's features are the truth's, plus Gaussian noise of a
  stated scale in dB.

The posterior is p(u | y) ~ prior(u) * prod Normal(y | phi(u), noise_db). On the plant's
own renders with noise drawn from this model (the simulation-based calibration of
``ddsp-gym bench posterior``) its intervals are calibrated when the sampler is right.
On a recording the model is an assumption: ``match --posterior`` sets ``noise_db`` to
the RMS feature residual of the best fit (:func:`residual_noise_db`), so a fit that
leaves 8 dB of mismatch gets intervals as wide as that mismatch allows.

Chains start at the best of a batch of prior draws refined by Adam (several distinct
starts: chains that land in different modes show up in R-hat), or at a given fit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ddsp_gym.features.spectral import mel_filterbank, power_spectrogram
from ddsp_gym.plants.base import AbstractPlant

# Central intervals reported per knob; 90 % is the one knobs.json carries.
INTERVALS = (0.5, 0.9)
# R-hat above this says the chains disagree (Vehtari et al. 2021 recommend 1.01 for
# final inferences; short runs here are judged at the classic 1.1).
RHAT_WARN = 1.1


@dataclass(frozen=True)
class ObservationModel:
    """The features and the noise of the observation model (module docstring).

    A 32-band log-mel spectrogram of 512-sample frames: coarse enough that a 0.25 s
    render gives a few hundred numbers, fine enough to hear pitch and brightness.
    ``noise_db`` 3 dB: a level difference listeners notice on a steady tone, so a
    setting within it of the target's features counts as "sounds the same".
    """

    n_fft: int = 1024
    hop: int = 256
    n_mels: int = 32
    floor_db: float = -60.0
    noise_db: float = 3.0

    def __post_init__(self) -> None:
        if self.n_fft < 16 or self.n_fft & (self.n_fft - 1):
            raise ValueError(f"n_fft must be a power of two >= 16, got {self.n_fft}")
        if not 0 < self.hop <= self.n_fft:
            raise ValueError(f"hop must be in 1..n_fft ({self.n_fft}), got {self.hop}")
        if not 1 <= self.n_mels <= self.n_fft // 2:
            raise ValueError(f"n_mels must be in 1..{self.n_fft // 2}, got {self.n_mels}")
        if not (np.isfinite(self.noise_db) and self.noise_db > 0):
            raise ValueError(f"noise_db must be a positive number of dB, got {self.noise_db}")


@dataclass(frozen=True)
class SamplerConfig:
    """NUTS settings: chains run vectorized (one process), each with its own start."""

    chains: int = 2
    warmup: int = 300
    samples: int = 300
    init_draws: int = 256  # prior draws the starts are chosen from
    init_steps: int = 60  # Adam steps refining each start (0: the draws as they are)
    max_tree_depth: int = 8
    target_accept: float = 0.8

    def __post_init__(self) -> None:
        for name in ("chains", "warmup", "samples", "init_draws", "max_tree_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.init_steps < 0:
            raise ValueError(f"init_steps must be >= 0, got {self.init_steps}")
        if self.init_draws < self.chains:
            raise ValueError(f"init_draws ({self.init_draws}) must be >= chains ({self.chains})")
        if not 0 < self.target_accept < 1:
            raise ValueError(f"target_accept must be in (0, 1), got {self.target_accept}")


@dataclass(frozen=True)
class Posterior:
    """Posterior draws of the sampled knobs (unit positions) and the chains' diagnostics."""

    plant: AbstractPlant
    names: tuple[str, ...]  # the sampled knobs, in the plant's order
    unit: np.ndarray  # (chains, draws, len(names)) unit positions
    r_hat: np.ndarray  # (len(names),) split R-hat
    n_eff: np.ndarray  # (len(names),) effective sample size
    divergences: int
    noise_db: float
    held: dict[str, float] = field(default_factory=dict)  # physical values of held knobs

    @property
    def flat_unit(self) -> np.ndarray:
        """All draws, chains pooled: (chains * draws, len(names))."""
        return self.unit.reshape(-1, len(self.names))

    def physical(self) -> np.ndarray:
        """All draws in knob units: (chains * draws, len(names))."""
        specs = {s.name: s for s in self.plant.knob_specs}
        flat = self.flat_unit
        return np.stack(
            [np.asarray(specs[n].to_physical(flat[:, i])) for i, n in enumerate(self.names)], 1
        )

    def summary(self) -> dict[str, dict[str, float]]:
        """Per knob, in knob units: median and the 50 % and 90 % central intervals.

        Quantiles are taken in unit space and mapped (the knob curves are monotonic,
        so quantiles commute with them), and the 90 % interval's width as a share of the
        knob's range in unit space (1.0: the prior's whole travel; 0.9: no information).
        """
        specs = {s.name: s for s in self.plant.knob_specs}
        out = {}
        for i, name in enumerate(self.names):
            q = np.quantile(self.flat_unit[:, i], [0.05, 0.25, 0.5, 0.75, 0.95])
            phys = [float(specs[name].to_physical(float(v))) for v in q]
            out[name] = {
                "median": phys[2],
                "q05": phys[0],
                "q25": phys[1],
                "q75": phys[3],
                "q95": phys[4],
                "width90_unit": float(q[4] - q[0]),
                "r_hat": float(self.r_hat[i]),
                "n_eff": float(self.n_eff[i]),
            }
        return out

    def converged(self) -> bool:
        """True when every knob's R-hat is below :data:`RHAT_WARN` and nothing diverged."""
        return bool(np.all(self.r_hat < RHAT_WARN)) and self.divergences == 0

    def to_json(self, model: ObservationModel, sampler: SamplerConfig) -> dict[str, Any]:
        """The knobs.json block: per-knob summary, diagnostics and the model stated."""
        return {
            "knobs": self.summary(),
            "held": self.held,
            "model": {
                "prior": "uniform on each knob's unit travel (log knobs: log-uniform)",
                "features": f"log-mel dB, n_fft {model.n_fft}, hop {model.hop}, "
                f"{model.n_mels} bands, smooth floor {model.floor_db:g} dB",
                "likelihood": "independent Gaussian per (frame, band)",
                "noise_db": self.noise_db,
            },
            "sampler": {
                "method": "NUTS (numpyro)",
                "chains": sampler.chains,
                "warmup": sampler.warmup,
                "samples": sampler.samples,
            },
            "divergences": self.divergences,
            "converged": self.converged(),
        }


def features(
    plant: AbstractPlant,
    model: ObservationModel,
    unit: jax.Array,
    key: jax.Array,
    audio_in: jax.Array | None = None,
) -> jax.Array:
    """phi(u): the render's log-mel dB with a smooth floor, (frames, n_mels)."""
    audio = plant.render(unit, key, audio_in)
    return audio_features(audio, plant.sample_rate, model)


def audio_features(audio: jax.Array, sample_rate: int, model: ObservationModel) -> jax.Array:
    """The observation model's features of any audio (a target, a render)."""
    power = power_spectrogram(jnp.asarray(audio, jnp.float32), model.n_fft, model.hop)
    # Only frames that lie wholly inside the audio: a centred frame padded with zeros
    # sees the render's cut-off as a click whose level depends on the phase there, and
    # that turns the likelihood of a pitch into a comb of modes cents apart.
    n = audio.shape[-1]
    first = -(-(model.n_fft // 2) // model.hop)
    last = (n - model.n_fft // 2) // model.hop
    if last < first:
        raise ValueError(
            f"{n} samples hold no whole {model.n_fft}-sample frame: use a smaller n_fft"
        )
    power = power[first : last + 1]
    # dB re a full-scale sine's peak bin (Hann: amplitude * n_fft / 4), so floor_db is
    # in dBFS whatever the frame size.
    full_scale = (model.n_fft / 4.0) ** 2
    mel = power @ mel_filterbank(sample_rate, model.n_fft, model.n_mels) / full_scale
    # + floor instead of max(., floor): the same dB above the floor, a gradient below it.
    return 10.0 * jnp.log10(mel + 10.0 ** (model.floor_db / 10.0))


def _split(plant: AbstractPlant, free: Sequence[str] | None) -> np.ndarray:
    """Indices of the sampled knobs; every knob when ``free`` is None."""
    names = plant.knob_names
    if free is None:
        return np.arange(len(names))
    unknown = [n for n in free if n not in names]
    if unknown or not free or len(set(free)) != len(free):
        raise ValueError(f"free knobs must be distinct names among {list(names)}, got {list(free)}")
    return np.array(sorted(names.index(n) for n in free))


def make_log_likelihood(
    plant: AbstractPlant,
    model: ObservationModel,
    free_idx: np.ndarray,
    key: jax.Array,
    audio_in: jax.Array | None = None,
) -> Callable[[jax.Array, jax.Array, jax.Array, jax.Array], jax.Array]:
    """log p(y | u) as a pure function (u_free, held_unit, y, noise_db) -> scalar."""

    def log_likelihood(u_free, held_unit, y, noise_db):
        unit = held_unit.at[free_idx].set(u_free)
        r = (y - features(plant, model, unit, key, audio_in)) / noise_db
        return -0.5 * jnp.sum(r**2) - r.size * jnp.log(noise_db)

    return log_likelihood


def check_plant(plant: Any) -> None:
    """A clear error for what cannot be sampled: no JAX plant, an effect without input."""
    if not isinstance(plant, AbstractPlant):
        raise ValueError(
            f"the posterior needs a differentiable JAX plant (AbstractPlant), got "
            f"{type(plant).__name__}: hardware and plugin backends have no gradient"
        )


def make_initializer(
    log_lik: Callable[..., jax.Array], d: int, sampler: SamplerConfig
) -> Callable[..., np.ndarray]:
    """A compiled function that picks chain starts; see :func:`initial_units`."""

    def loss(z, held_unit, y, noise_db):  # -log posterior in logit space (+ Jacobian)
        u = jax.nn.sigmoid(z)
        return -(log_lik(u, held_unit, y, noise_db) + jnp.sum(jnp.log(u * (1 - u))))

    opt = optax.adam(0.05)

    @jax.jit
    def score(draws, held_unit, y, noise_db):
        return jax.vmap(lambda u: log_lik(u, held_unit, y, noise_db))(draws)

    @jax.jit
    def refine(z, held_unit, y, noise_db):
        def one(z):
            def step(carry, _):
                z, state = carry
                g = jax.grad(loss)(z, held_unit, y, noise_db)
                updates, state = opt.update(g, state)
                return (z + updates, state), None

            (z, _), _ = jax.lax.scan(step, (z, opt.init(z)), None, length=sampler.init_steps)
            return z

        return jax.vmap(one)(z)

    def initial_units(held_unit, y, noise_db, key, start=None) -> np.ndarray:
        """Chain starts (chains, d) in unit space: the best prior draws, refined by Adam.

        The ``sampler.chains`` most likely of ``init_draws`` uniform draws (``start``,
        e.g. the match's fit, replaces the last of them), each refined by ``init_steps``
        Adam steps on the log posterior in logit space. Starts in distinct places let
        R-hat see chains stuck in different modes.
        """
        draws = jax.random.uniform(key, (sampler.init_draws, d), minval=0.02, maxval=0.98)
        scores = np.nan_to_num(np.asarray(score(draws, held_unit, y, noise_db)), nan=-np.inf)
        best = np.array(draws)[np.argsort(-scores)[: sampler.chains]]
        if start is not None:
            best[-1] = np.clip(np.asarray(start, np.float64), 0.02, 0.98)
        if sampler.init_steps == 0:
            return best
        z0 = np.log(best) - np.log1p(-best)
        z = np.asarray(refine(jnp.asarray(z0, jnp.float32), held_unit, y, noise_db))
        z = np.where(np.isfinite(z), z, z0)  # a refinement that blew up keeps its draw
        return 1.0 / (1.0 + np.exp(-z))

    return initial_units


def make_nuts(
    log_lik: Callable[..., jax.Array], sampler: SamplerConfig
) -> Callable[..., tuple[jax.Array, jax.Array]]:
    """A compiled function running ``sampler.chains`` NUTS chains side by side (vmap).

    (z0 (chains, d) logit starts, keys (chains,), y, held_unit, noise_db) ->
    (logit draws (chains, samples, d), divergent flags (chains, samples)). numpyro's
    functional NUTS (Hoffman & Gelman 2014, with its step size and diagonal mass matrix
    adaptation) on the potential -log p(z | y), z = logit(u): the Uniform(0, 1) prior
    becomes the Jacobian term sum log u (1 - u). The data are arguments, so one
    compilation serves every target of the same shape (the calibration's hundreds).
    """
    from numpyro.infer.hmc import hmc

    def potential_gen(y, held_unit, noise_db):
        def potential(z):
            u = jax.nn.sigmoid(z)
            jacobian = jnp.sum(jax.nn.log_sigmoid(z) + jax.nn.log_sigmoid(-z))
            return -(log_lik(u, held_unit, y, noise_db) + jacobian)

        return potential

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")

    def one_chain(z0, key, args):
        state = init_kernel(
            z0,
            sampler.warmup,
            target_accept_prob=sampler.target_accept,
            max_tree_depth=sampler.max_tree_depth,
            model_args=args,
            rng_key=key,
        )

        def step(state, _):
            state = sample_kernel(state, model_args=args)
            return state, (state.z, state.diverging)

        state, _ = jax.lax.scan(step, state, None, length=sampler.warmup)
        _, (z, diverging) = jax.lax.scan(step, state, None, length=sampler.samples)
        return z, diverging

    @jax.jit
    def chains(z0, keys, y, held_unit, noise_db):
        args = (y, held_unit, noise_db)
        return jax.vmap(one_chain, in_axes=(0, 0, None))(z0, keys, args)

    return chains


class PosteriorSampler:
    """NUTS for one plant, observation model and sampler config, compiled once.

    Reusable across targets (the calibration benchmark runs hundreds): numpyro's MCMC
    with ``jit_model_args`` keeps one compiled kernel while the data changes.
    """

    def __init__(
        self,
        plant: AbstractPlant,
        model: ObservationModel | None = None,
        sampler: SamplerConfig | None = None,
        free: Sequence[str] | None = None,
        key: jax.Array | None = None,
        audio_in: Any = None,
    ) -> None:
        check_plant(plant)
        self.plant = plant
        self.model = model or ObservationModel()
        self.sampler = sampler or SamplerConfig()
        self.free_idx = _split(plant, free)
        self.names = tuple(plant.knob_names[i] for i in self.free_idx)
        self.key = jax.random.PRNGKey(0) if key is None else key
        audio_in = plant.input_or_default(audio_in)
        self.audio_in = None if audio_in is None else jnp.asarray(audio_in, jnp.float32)
        self.log_lik = make_log_likelihood(
            plant, self.model, self.free_idx, self.key, self.audio_in
        )
        self._initial_units = make_initializer(self.log_lik, len(self.free_idx), self.sampler)
        self._grad = jax.jit(jax.grad(self.log_lik))
        self._features = jax.jit(
            lambda unit: features(plant, self.model, unit, self.key, self.audio_in)
        )
        self._chains = make_nuts(self.log_lik, self.sampler)
        self._check_gradient()

    def _check_gradient(self) -> None:
        """Fail here, with the plant named, when its render cannot be differentiated
        (a host callback, a hardware take) or its gradient is not finite at mid-travel."""
        d = len(self.plant.knob_names)
        mid = jnp.full(len(self.free_idx), 0.5, jnp.float32)
        y = jnp.zeros_like(self._features(jnp.full(d, 0.5, jnp.float32)))  # frames checked
        try:
            grad = self._grad(mid, jnp.full(d, 0.5, jnp.float32), y, jnp.float32(1.0))
        except (ValueError, TypeError, NotImplementedError) as err:
            raise ValueError(
                f"the {type(self.plant).__name__} render has no gradient, so NUTS cannot "
                f"sample its knobs ({err})"
            ) from err
        if not np.all(np.isfinite(np.asarray(grad))):
            raise ValueError(
                f"the {type(self.plant).__name__} render's gradient is not finite at "
                "mid-travel: NUTS cannot sample its knobs"
            )

    def features(self, unit: np.ndarray) -> jax.Array:
        """phi(unit) for this sampler's plant, key and input."""
        return self._features(jnp.asarray(unit, jnp.float32))

    def held_unit(self, held: dict[str, float] | None) -> jax.Array:
        """All knobs' unit positions: held ones at their physical ``held`` value."""
        specs = self.plant.knob_specs
        unit = np.full(len(specs), 0.5, np.float32)
        missing = (
            [s.name for i, s in enumerate(specs) if i not in self.free_idx and s.name not in held]
            if held is not None
            else [s.name for i, s in enumerate(specs) if i not in self.free_idx]
        )
        if missing:
            raise ValueError(f"knobs neither sampled nor held: {missing}")
        for i, spec in enumerate(specs):
            if held and spec.name in held and i not in self.free_idx:
                unit[i] = float(spec.to_unit(held[spec.name]))
        return jnp.asarray(unit)

    def run(
        self,
        y: jax.Array,
        seed: int = 0,
        held: dict[str, float] | None = None,
        noise_db: float | None = None,
        start: np.ndarray | None = None,
    ) -> Posterior:
        """Sample p(u | y) for target features ``y`` (:func:`audio_features` of a target).

        ``start``: unit positions of the sampled knobs (e.g. the match's fit) to start one
        chain from. ``noise_db`` overrides the model's (a recording's residual).
        """
        noise = self.model.noise_db if noise_db is None else float(noise_db)
        if not (np.isfinite(noise) and noise > 0):
            raise ValueError(f"noise_db must be a positive number of dB, got {noise_db}")
        y = jnp.asarray(y, jnp.float32)
        expected = self.features(np.full(len(self.plant.knob_names), 0.5)).shape
        if y.shape != expected:
            raise ValueError(f"target features have shape {y.shape}, the plant's {expected}")
        held_unit = self.held_unit(held)
        init_key, run_key = jax.random.split(jax.random.PRNGKey(seed))
        starts = self._initial_units(held_unit, y, jnp.float32(noise), init_key, start)
        grad = self._grad(jnp.asarray(starts[0], jnp.float32), held_unit, y, jnp.float32(noise))
        if not np.all(np.isfinite(np.asarray(grad))):
            raise ValueError(
                f"the {type(self.plant).__name__} render has no finite gradient at "
                f"{dict(zip(self.names, starts[0].tolist(), strict=True))}: NUTS cannot run"
            )
        z0 = np.log(starts) - np.log1p(-starts)
        keys = jax.random.split(run_key, self.sampler.chains)
        z, diverging = self._chains(jnp.asarray(z0, jnp.float32), keys, y, held_unit, noise)
        unit = 1.0 / (1.0 + np.exp(-np.asarray(z, np.float64)))
        return self._posterior(unit, np.asarray(diverging), held_unit, noise)

    def _posterior(
        self, unit: np.ndarray, diverging: np.ndarray, held_unit: jax.Array, noise: float
    ) -> Posterior:
        from numpyro.diagnostics import effective_sample_size, split_gelman_rubin

        r_hat = np.asarray(split_gelman_rubin(unit))
        r_hat = np.broadcast_to(r_hat, (unit.shape[-1],)).astype(np.float64)
        n_eff = np.asarray(effective_sample_size(unit), np.float64)
        specs = self.plant.knob_specs
        held = {
            s.name: float(s.to_physical(held_unit[i]))
            for i, s in enumerate(specs)
            if i not in self.free_idx
        }
        return Posterior(
            self.plant,
            self.names,
            unit,
            np.nan_to_num(r_hat, nan=np.inf),
            np.nan_to_num(n_eff),
            int(diverging.sum()),
            noise,
            held,
        )


def residual_noise_db(target_features: jax.Array, fit_features: jax.Array) -> float:
    """The RMS dB difference between a target's features and its best fit's.

    The noise scale ``match --posterior`` assumes for a recording: the fit's remaining
    mismatch, treated as the observation noise (floored at 0.5 dB, so an exact fit does
    not claim certainty beyond what float rendering supports).
    """
    r = np.asarray(target_features, np.float64) - np.asarray(fit_features, np.float64)
    return float(max(0.5, np.sqrt(np.mean(r**2))))


def save_corner_png(
    path: str | Path, posterior: Posterior, truth: dict[str, float] | None = None
) -> Path:
    """A corner plot of the draws in knob units (log axes for log knobs), with the 5 %,
    50 % and 95 % quantiles marked and ``truth`` (or the fit) as lines."""
    import corner
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    specs = {s.name: s for s in posterior.plant.knob_specs}
    # log knobs are plotted as log10(value): corner's histograms need linear bins.
    logs = [specs[n].curve == "log" for n in posterior.names]
    data = posterior.physical()
    data = np.where(logs, np.log10(data), data)
    labels = [
        f"log10 {n} [{specs[n].unit}]" if log else f"{n} [{specs[n].unit}]".replace(" []", "")
        for n, log in zip(posterior.names, logs, strict=True)
    ]
    truths = None
    if truth is not None:
        truths = [
            np.log10(truth[n]) if log else truth[n]
            for n, log in zip(posterior.names, logs, strict=True)
        ]
    # The marked setting stays in view (a fit may lie outside the draws); the padding
    # also gives a knob whose draws are all equal a range corner can plot.
    lows, highs = data.min(0), data.max(0)
    if truths is not None:
        lows, highs = np.minimum(lows, truths), np.maximum(highs, truths)
    pad = np.maximum(0.05 * (highs - lows), 1e-6)
    ranges = list(zip(lows - pad, highs + pad, strict=True))
    one_knob = data.shape[1] == 1  # corner 2.3 cannot overplot truths on one axis
    fig = corner.corner(
        data,
        labels=labels,
        quantiles=[0.05, 0.5, 0.95],
        show_titles=True,
        truths=None if one_knob else truths,
        range=ranges,
        title_fmt=".3g",
    )
    if one_knob and truths is not None:
        fig.axes[0].axvline(truths[0], color="#4682b4")
    path = Path(path)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def format_lines(posterior: Posterior, units: dict[str, str]) -> list[str]:
    """One line per knob for the command line: median, 90 % interval, R-hat."""
    lines = []
    for name, s in posterior.summary().items():
        unit = f" {units.get(name, '')}".rstrip()
        lines.append(
            f"{name}: median {s['median']:.4g}{unit}, 90 % interval "
            f"[{s['q05']:.4g}, {s['q95']:.4g}]{unit} (R-hat {s['r_hat']:.3f})"
        )
    return lines
