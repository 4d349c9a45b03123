"""A Gaussian-process preference model: a smooth utility over knob vectors fit on A/B votes.

The latent utility f over unit knob vectors has a Gaussian-process prior (zero mean,
squared-exponential kernel). A vote "a" says f(a) > f(b) with the logistic
(Bradley-Terry) likelihood sigmoid((f(a) - f(b)) / temperature), so a few inconsistent
votes bend the model instead of contradicting it. The posterior over f at the heard
patches is not Gaussian; the Laplace approximation (Newton's method to its mode, a
Gaussian with the Hessian there: Chu & Ghahramani 2005, "Preference learning with
Gaussian processes") gives a mean and a standard deviation anywhere in the knob box.

"both_bad" carries information: each of the two patches loses a comparison against a
virtual reference patch whose utility is the prior mean, 0 (the utility of a typical
patch). So "both bad" pushes both below the typical patch, while saying nothing about
which of the two is better.

The kernel's length scale and amplitude are chosen per fit, among a small grid, by the
Laplace approximation of the evidence (the marginal likelihood of the votes), so the
model is as smooth as the votes allow. Small numpy code: at the tens of votes a person
gives, n <= 2 * votes patches make every matrix tiny (a fit takes milliseconds).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.linalg import cho_factor, cho_solve

if TYPE_CHECKING:
    from ddsp_gym.preference.search import Vote

LENGTH_SCALES: tuple[float, ...] = (0.15, 0.25, 0.4, 0.7)
AMPLITUDES: tuple[float, ...] = (0.5, 1.0, 2.0)
TEMPERATURE = 1.0  # the likelihood's scale; the amplitudes above are relative to it
_JITTER = 1e-6  # added to the kernel's diagonal, relative to its variance
_MAX_NEWTON = 50


def rbf(x: np.ndarray, y: np.ndarray, length_scale: float, amplitude: float) -> np.ndarray:
    """Squared-exponential kernel matrix (n, m) between rows of ``x`` (n, d), ``y`` (m, d)."""
    sq = np.sum(x**2, 1)[:, None] + np.sum(y**2, 1)[None, :] - 2.0 * x @ y.T
    return amplitude**2 * np.exp(-0.5 * np.maximum(sq, 0.0) / length_scale**2)


def comparisons(votes: Sequence[Vote]) -> tuple[np.ndarray, np.ndarray]:
    """The distinct patches (n, d) and the comparison matrix (m, n) of ``votes``.

    Each row k of the matrix is one comparison "winner beats loser": +1 at the winner,
    -1 at the loser, so (A f)_k > 0 when the model agrees. A "both_bad" vote gives two
    rows, each patch losing to the virtual reference (utility 0): -1 at the patch only.
    """
    index: dict[tuple[float, ...], int] = {}
    for vote in votes:
        for patch in (vote.a, vote.b):
            index.setdefault(tuple(float(x) for x in patch), len(index))
    rows = []
    for vote in votes:
        i, j = index[tuple(map(float, vote.a))], index[tuple(map(float, vote.b))]
        if vote.outcome == "both_bad":
            rows += [{i: -1.0}, {j: -1.0}]
        elif i != j:  # a patch against itself says nothing
            winner, loser = (i, j) if vote.outcome == "a" else (j, i)
            rows.append({winner: 1.0, loser: -1.0})
    matrix = np.zeros((len(rows), len(index)))
    for k, row in enumerate(rows):
        for col, value in row.items():
            matrix[k, col] = value
    return np.array(list(index), dtype=np.float64).reshape(len(index), -1), matrix


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)


@dataclass(frozen=True)
class PreferenceModel:
    """A fitted model: posterior mean and standard deviation of the utility anywhere."""

    points: np.ndarray  # (n, d) the heard patches
    latent: np.ndarray  # (n,) the posterior mode of the utility at them
    alpha: np.ndarray  # (n,) K^-1 latent, so mean(x) = k(x, points) @ alpha
    precision: np.ndarray  # (n, n) (K + W^-1)^-1 = W (I + K W)^-1, for the variance
    length_scale: float
    amplitude: float
    log_evidence: float
    # The space the kernel measures distance in: None, the knob box itself, or a map of
    # unit knobs (m, d) -> descriptors (m, k), e.g. a render's sound features
    # (:class:`~ddsp_gym.preference.sound_features.SoundFeatures`).
    embed: Callable[[np.ndarray], np.ndarray] | None = None
    features: np.ndarray | None = None  # (n, k) embed(points), computed once per fit

    def _z(self, points: np.ndarray) -> np.ndarray:
        points = np.atleast_2d(points)
        return points if self.embed is None else self.embed(points)

    def mean(self, points: np.ndarray) -> np.ndarray:
        """Posterior mean utility of ``points`` (m, d) -> (m,)."""
        if not len(self.points):
            return np.zeros(len(points))
        return self._kernel(points) @ self.alpha

    def std(self, points: np.ndarray) -> np.ndarray:
        """Posterior standard deviation of the utility at ``points`` (m, d) -> (m,)."""
        if not len(self.points):
            return np.full(len(points), self.amplitude)
        k = self._kernel(points)
        var = self.amplitude**2 - np.einsum("mi,ij,mj->m", k, self.precision, k)
        return np.sqrt(np.maximum(var, 0.0))

    def difference(self, points: np.ndarray, anchor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of f(points) - f(anchor), (m,) each.

        What a vote between a candidate and ``anchor`` is about: near the anchor the two
        utilities are strongly correlated, so the difference's deviation goes to zero (a
        vote on two near-identical sounds teaches little) even where each alone is unsure.
        """
        z_x, z_a = self._z(points), self._z(anchor)
        k_x, k_a = self._kernel_z(z_x), self._kernel_z(z_a)
        mean = k_x @ self.alpha - float(k_a[0] @ self.alpha)
        prior = rbf(z_x, z_a, self.length_scale, self.amplitude)[:, 0]
        if len(self.points):
            var_x = self.amplitude**2 - np.einsum("mi,ij,mj->m", k_x, self.precision, k_x)
            var_a = self.amplitude**2 - float(k_a[0] @ self.precision @ k_a[0])
            cov = prior - k_x @ self.precision @ k_a[0]
        else:
            var_x, var_a, cov = np.full(len(points), self.amplitude**2), self.amplitude**2, prior
        return mean, np.sqrt(np.maximum(var_x + var_a - 2.0 * cov, 0.0))

    def _kernel(self, points: np.ndarray) -> np.ndarray:
        return self._kernel_z(self._z(points))

    def _kernel_z(self, z: np.ndarray) -> np.ndarray:
        if not len(self.points):
            return np.zeros((len(z), 0))
        heard = self.points if self.features is None else self.features
        return rbf(z, heard, self.length_scale, self.amplitude)


def _link(z: np.ndarray, lapse: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log likelihood, its derivative and the Fisher information of each comparison.

    The probability that the comparison k is answered as recorded is
    p = lapse / 2 + (1 - lapse) * sigmoid(z): with probability ``lapse`` the answer is a
    coin toss (an inattentive vote), so a vote far against the model costs at most
    log(lapse / 2) instead of growing without bound and dragging the utility with it.
    This log likelihood is not concave, so the Newton steps use the Fisher information
    p'^2 / (p (1 - p)) (always positive) as the curvature; with no lapse it equals the
    logistic model's exact curvature s (1 - s).
    """
    s = _sigmoid(z)
    if not np.any(lapse):
        return _log_sigmoid(z), 1.0 - s, s * (1.0 - s)
    p = lapse / 2 + (1.0 - lapse) * s
    with np.errstate(divide="ignore"):  # log(0) = -inf where a comparison has no lapse
        log_p = np.logaddexp(np.log(lapse / 2), np.log1p(-lapse) + _log_sigmoid(z))
    dp = (1.0 - lapse) * s * (1.0 - s)
    # A row without a lapse ("both_bad") can round p to 0 or 1 far out; there the
    # logistic model's own slope and curvature are the limits.
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(p > 0, dp / p, 1.0 - s)
        fisher = np.where((p > 0) & (p < 1), dp**2 / (p * (1.0 - p)), s * (1.0 - s))
    return log_p, slope, fisher


def _laplace(
    kernel: np.ndarray, comps: np.ndarray, lapse: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Mode ``f``, alpha = K^-1 f, W and the Laplace log evidence for one kernel matrix."""
    n = len(kernel)
    lapse = np.zeros(len(comps)) if lapse is None else lapse
    chol = cho_factor(kernel + _JITTER * np.trace(kernel) / n * np.eye(n), lower=True)

    def objective(f: np.ndarray) -> float:
        log_p = _link(comps @ f / TEMPERATURE, lapse)[0]
        return float(np.sum(log_p) - 0.5 * f @ cho_solve(chol, f))

    f = np.zeros(n)
    value = objective(f)
    for _ in range(_MAX_NEWTON):
        _, slope, curvature = _link(comps @ f / TEMPERATURE, lapse)
        grad = comps.T @ slope / TEMPERATURE
        hess = comps.T @ (comps * curvature[:, None]) / TEMPERATURE**2
        # Newton: (K^-1 + W)^-1 (W f + grad) = K (I + W K)^-1 (W f + grad).
        step = kernel @ np.linalg.solve(np.eye(n) + hess @ kernel, hess @ f + grad) - f
        # A full step can overshoot (and with a lapse the posterior is not concave):
        # halve it until the log posterior does not fall.
        for _ in range(30):
            new_value = objective(f + step)
            if new_value >= value - 1e-12:
                break
            step *= 0.5
        f, value, done = f + step, new_value, abs(new_value - value) < 1e-9
        if done:
            break
    curvature = _link(comps @ f / TEMPERATURE, lapse)[2]
    hess = comps.T @ (comps * curvature[:, None]) / TEMPERATURE**2
    _, logdet = np.linalg.slogdet(np.eye(n) + kernel @ hess)
    return f, cho_solve(chol, f), hess, value - 0.5 * logdet


def one_blas_thread() -> Any:
    """A context in which BLAS runs on one thread.

    The model's matrices are at most a few hundred wide: a multithreaded BLAS spends far
    more on waking and syncing its threads than on the work, and on a busy machine its
    spinning threads made one fit take 100x longer (11 s instead of 0.1 s, measured).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def fit(
    votes: Sequence[Vote],
    n_knobs: int,
    length_scales: Sequence[float] = LENGTH_SCALES,
    amplitudes: Sequence[float] = AMPLITUDES,
    embed: Callable[[np.ndarray], np.ndarray] | None = None,
    lapse: float = 0.0,
) -> PreferenceModel:
    """The preference model of ``votes``, its kernel chosen by the Laplace evidence.

    ``embed`` (unit knobs (m, d) -> (m, k)) makes the kernel measure distance between
    the patches' descriptors instead of their knob positions (see :class:`PreferenceModel`).
    ``lapse`` is the share of A/B votes taken to be coin tosses (see :func:`_link`);
    "both_bad" is a deterministic answer of the rater and gets none.
    """
    if not 0.0 <= lapse < 1.0:
        raise ValueError(f"lapse must be in [0, 1), got {lapse}")
    with one_blas_thread():
        return _fit(votes, n_knobs, length_scales, amplitudes, embed, lapse)


def _fit(
    votes: Sequence[Vote],
    n_knobs: int,
    length_scales: Sequence[float],
    amplitudes: Sequence[float],
    embed: Callable[[np.ndarray], np.ndarray] | None = None,
    lapse: float = 0.0,
) -> PreferenceModel:
    points, comps = comparisons(votes)
    # A/B comparisons have two entries in their row, "both_bad" ones (against the
    # virtual reference) one.
    lapses = np.where(np.count_nonzero(comps, axis=1) == 2, lapse, 0.0)
    if not len(points):
        empty = np.zeros((0, n_knobs))
        return PreferenceModel(empty, np.zeros(0), np.zeros(0), np.zeros((0, 0)),
                               length_scales[0], amplitudes[0], 0.0, embed)  # fmt: skip
    if points.shape[1] != n_knobs:
        raise ValueError(f"the votes compare {points.shape[1]}-knob patches, not {n_knobs}")
    features = None if embed is None else np.asarray(embed(points), np.float64)
    z = points if features is None else features
    best: PreferenceModel | None = None
    for length_scale in length_scales:
        for amplitude in amplitudes:
            kernel = rbf(z, z, length_scale, amplitude)
            f, alpha, hess, evidence = _laplace(kernel, comps, lapses)
            if best is None or evidence > best.log_evidence:
                precision = hess @ np.linalg.inv(np.eye(len(points)) + kernel @ hess)
                best = PreferenceModel(
                    points, f, alpha, 0.5 * (precision + precision.T), length_scale, amplitude,
                    evidence, embed, features,
                )  # fmt: skip
    assert best is not None
    return best
