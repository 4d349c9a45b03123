"""A plant built from Faust source: the Faust compiler's JAX output, made a pure render.

The Faust compiler (as DawDreamer embeds it: ``dawdreamer.faust.box.boxFromDSP``
and ``boxToSource(box, "jax", ...)``) turns a Faust program into a Python class
whose ``tick(state, inputs)`` computes one sample with ``jax.numpy``. This module
runs that ``tick`` under ``lax.scan`` with the program's UI elements bound to
the plant's knobs, so the render is pure, jit-able, vmap-able and
differentiable in every knob.

Knobs are the program's sliders (``hslider``/``vslider``): the knob's name is
the slider's short name, its range the slider's ``min``/``max``, its curve
``log`` where the slider declares ``[scale:log]``, its unit the ``[unit:...]``
metadata. Buttons, checkboxes and number entries are fixed settings (``fixed``,
default their initial values; a button is 0 unless fixed). A program with audio
inputs is an effect; several outputs are averaged to mono.

The generated code is cached by the source's SHA-256: the packaged sources in
``faust_jax/`` (so the default program runs without DawDreamer installed), then
the user cache (``$XDG_CACHE_HOME/ddsp_gym/faust``); a source found in neither
is compiled with DawDreamer (the ``plugin`` extra).

Faust programs are shared as files, and their strings (labels, ``[tooltip:...]`` and
other metadata, ``declare`` values) and foreign names (``ffunction``, ``fconstant``,
``fvariable``) reach the generated Python: a label ending in a backslash unbalances its
string literal, a foreign function's name is emitted as a call. So the generated module,
compiled or read from either cache, runs only after :func:`check_jax_source` has
accepted its syntax tree (the shape the compiler emits, the names and attributes its
code generator can write), with builtins cut to what that code uses; its UI description
is JSON, parsed as data.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.base import AbstractPlant

# The default program: a sawtooth through a resonant low-pass (faust libraries:
# os.sawtooth is saw2ptr, a polynomial-transition saw; fi.resonlp is a bilinear
# 2nd-order low-pass, both by J. O. Smith). Cutoff stays below 0.35 x 16 kHz so
# tan(pi fc / sr) in the bilinear transform stays far from its pole at sr / 2.
DEFAULT_FAUST_CODE = """\
import("stdfaust.lib");
declare name "lowpass_saw";
freq = nentry("freq[unit:Hz]", 220, 55, 880, 1);
cutoff = hslider("cutoff[unit:Hz][scale:log]", 1000, 150, 5000, 0.01);
q = hslider("q[tooltip:resonance]", 1, 0.5, 6, 0.01);
level = hslider("level[unit:dB]", -6, -24, 0, 0.1) : ba.db2linear;
process = os.sawtooth(freq) * 0.5 : fi.resonlp(cutoff, q, level);
"""

_PACKAGED = "faust_jax"
_SLIDERS = ("hslider", "vslider")
_FIXED = ("button", "checkbox", "nentry")


class FaustError(ValueError):
    """Faust source that does not compile, or a plant configuration that does not fit it."""


def source_key(code: str) -> str:
    """The cache key of a Faust source: its SHA-256, hex."""
    return hashlib.sha256(code.encode()).hexdigest()


def _user_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ddsp_gym" / "faust"


def _cached_source(key: str) -> str | None:
    packaged = resources.files("ddsp_gym.plants") / _PACKAGED / f"{key}.txt"
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    user = _user_cache() / f"{key}.py"
    return user.read_text(encoding="utf-8") if user.is_file() else None


def compile_to_jax(code: str) -> str:
    """Faust source -> the Faust compiler's JAX source (a class ``FaustDSP``).

    Raises:
        FaustError: the compiler's own message (line and cause) for a bad program.
        PluginDependencyError: DawDreamer, which embeds the compiler, is missing.
    """
    from ddsp_gym.backends.plugin import import_dawdreamer

    import_dawdreamer()
    from dawdreamer.faust import createLibContext, destroyLibContext
    from dawdreamer.faust.box import boxFromDSP, boxToSource

    createLibContext()
    try:
        box = boxFromDSP(code)
        source = boxToSource(box, "jax", "FaustDSP")
    except RuntimeError as err:
        raise FaustError(f"the Faust program does not compile: {_compiler_message(err)}") from None
    finally:
        destroyLibContext()
    return source if isinstance(source, str) else source.decode()


def _compiler_message(err: Exception) -> str:
    """The compiler's message with line numbers of the user's source: DawDreamer puts
    one line of its own before the program (measured: an error on line 1 is reported
    as ``dawdreamer:2``)."""
    return re.sub(r"dawdreamer:(\d+)", lambda m: f"line {int(m.group(1)) - 1}", str(err).strip())


def jax_source(code: str) -> str:
    """The JAX source of ``code``, from a cache or compiled (and then cached)."""
    key = source_key(code)
    cached = _cached_source(key)
    if cached is not None:
        return cached
    header = "".join(f"# {line}\n" for line in code.splitlines())
    source = f"# Faust compiler output (JAX) for the Faust source:\n{header}\n" + compile_to_jax(
        code
    )
    try:
        _user_cache().mkdir(parents=True, exist_ok=True)
        (_user_cache() / f"{key}.py").write_text(source, encoding="utf-8")
    except OSError:  # a read-only home: compile again next time
        pass
    return source


class _Module:
    """Stands in for ``flax.linen.Module``, the base class of the generated code.

    The generated ``build_interface`` calls ``add_slider``/``add_button``/... to
    put each UI element's value into the state; here they read the plant's
    controls (traced) and fixed settings instead of Flax parameters.
    """

    def __init__(self, sample_rate: int, values: dict[str, Any]):
        self.sample_rate = sample_rate
        self.soundfile_dirs: list[str] = []
        self._values = values  # zone (Faust variable name) -> value

    def _set(self, state: dict, zone: str) -> None:
        state[zone] = self._values[zone]

    def add_slider(self, state, zone, ui_path, label, init, a_min, a_max, scale_mode="linear"):
        self._set(state, zone)

    def add_button(self, state, zone, ui_path, label):
        self._set(state, zone)

    def add_checkbox(self, state, zone, ui_path, label):
        self._set(state, zone)

    def add_nentry(self, state, zone, ui_path, label, init, a_min, a_max, step_size, scale=""):
        self._set(state, zone)

    def add_soundfile(self, *args, **kwargs):
        raise FaustError("Faust soundfile primitives are not supported in a plant")


class _Shim:
    """The ``nn`` namespace the generated code expects (only ``Module`` is used)."""

    Module = _Module


# What the Faust compiler's JAX backend (as DawDreamer embeds it) writes, and all a
# generated module may use: numpy/jax.numpy for its math (the backend's table of C math
# functions, its casts and array helpers), ``json.loads`` for its UI description, the
# ``nn.Module`` base (here :class:`_Module`) and its ``add_*`` calls.
_ARRAY_FUNCTIONS = frozenset(
    {
        *("abs", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2", "arctanh"),
        *("ceil", "copysign", "cos", "cosh", "exp", "exp2", "exp10", "floor", "isinf"),
        *("isnan", "log", "log10", "log2", "maximum", "minimum", "mod", "power", "remainder"),
        *("rint", "round", "sin", "sinh", "sqrt", "tan", "tanh"),
        *("array", "bool", "float32", "float64", "int32", "int64", "roll", "stack", "where"),
        "zeros",
    }
)
_MODULE_ATTRIBUTES: dict[str, frozenset[str]] = {
    "jnp": _ARRAY_FUNCTIONS,
    "np": _ARRAY_FUNCTIONS,
    "json": frozenset({"loads"}),
    "dataclasses": frozenset({"field"}),
    "nn": frozenset({"Module"}),
    "self": frozenset(
        {"sample_rate", "add_slider", "add_button", "add_checkbox", "add_nentry", "add_soundfile"}
    ),
}
# Attributes of values (arrays' ``.astype``, ``.at[i].set``; the UI path list's calls).
_METHODS = frozenset({"astype", "at", "set", "append", "pop"})
_BUILTINS = frozenset(
    {
        *("abs", "bool", "dict", "float", "int", "len", "list", "max", "min", "range", "str"),
        *("staticmethod", "tuple"),
    }
)
# The names a module may use without binding them ("self" is bound, as an argument).
_GLOBALS = _MODULE_ATTRIBUTES.keys() | _BUILTINS
_CLASS = "FaustDSP"
_CLASS_METHODS = frozenset(
    {"getNumInputs", "getNumOutputs", "initialize", "getJSON", "build_interface", "tick"}
)
_NODES = frozenset(
    {
        *(ast.Module, ast.FunctionDef, ast.ClassDef, ast.arguments, ast.arg, ast.keyword),
        *(ast.Return, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For, ast.While, ast.If),
        *(ast.Expr, ast.Pass, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.IfExp, ast.Compare),
        *(ast.Call, ast.Constant, ast.Attribute, ast.Subscript, ast.Slice, ast.Name),
        *(ast.Dict, ast.List, ast.Tuple, ast.Load, ast.Store, ast.And, ast.Or, ast.Not),
        *(ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift),
        *(ast.RShift, ast.BitOr, ast.BitXor, ast.BitAnd, ast.Invert, ast.UAdd, ast.USub),
        *(ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE),
    }
)
_CONSTANTS = (str, int, float, bool, type(None))


def check_jax_source(source: str) -> ast.Module:
    """The syntax tree of generated JAX source, if it has only the compiler's shape.

    One class ``FaustDSP(nn.Module)`` with the methods a plant calls, module-level
    assignments and functions (``FAUSTFLOAT``, ``remainder``); no imports, lambdas,
    comprehensions, f-strings, ``with``/``try``/``global``; names only those it binds, the
    namespace's modules and a few builtins (so not ``eval``, ``exec``, ``open``,
    ``getattr``, ``__import__``, ...); no name or attribute starting with ``__``, no
    attribute outside the lists above (so not ``np.load`` or ``jnp.save``), and no
    assignment to an attribute (so no patching of numpy or the shim). Strings stay
    constants: nothing allowed evaluates one.

    Raises:
        FaustError: the first construct outside that shape, with its line.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError) as err:
        message = getattr(err, "msg", str(err))
        hint = " (a label ending in a backslash does this)" if "unterminated" in message else ""
        raise FaustError(
            f"the generated JAX code does not parse{_where(err)}: {message}{hint}"
        ) from None
    _check_shape(tree)
    bound = _bound_names(tree)
    for node in ast.walk(tree):
        problem = _node_problem(node, bound)
        if problem:
            raise _refused(problem, node)
    return tree


def _where(node: Any) -> str:
    line = getattr(node, "lineno", None)
    return f" (line {line})" if line else ""


def _refused(problem: str, node: Any = None) -> FaustError:
    return FaustError(f"the generated JAX code is refused{_where(node)}: {problem}")


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _check_shape(tree: ast.Module) -> None:
    """Module: docstrings, assignments, functions and the one class; class: docstrings,
    (annotated) assignments and methods; only ``@staticmethod``; nothing defined inside
    a function."""
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    if [c.name for c in classes] != [_CLASS]:
        raise _refused(f"it defines the classes {[c.name for c in classes]}, not one {_CLASS}")
    cls = classes[0]
    for node in tree.body:
        if node is not cls and not (
            _is_docstring(node) or isinstance(node, ast.Assign | ast.FunctionDef)
        ):
            raise _refused(f"{type(node).__name__} statement at module level", node)
    base = ast.dump(ast.Attribute(ast.Name("nn", ast.Load()), "Module", ast.Load()))
    if cls.decorator_list or cls.keywords or [ast.dump(b) for b in cls.bases] != [base]:
        raise _refused(f"class {_CLASS} is not a plain subclass of nn.Module", cls)
    for node in cls.body:
        if not (
            _is_docstring(node) or isinstance(node, ast.Assign | ast.AnnAssign | ast.FunctionDef)
        ):
            raise _refused(f"{type(node).__name__} statement in class {_CLASS}", node)
    missing = _CLASS_METHODS - {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
    if missing:
        raise _refused(f"class {_CLASS} lacks the methods {sorted(missing)}", cls)
    for function in (n for n in tree.body + cls.body if isinstance(n, ast.FunctionDef)):
        for node in (n for statement in function.body for n in ast.walk(statement)):
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                raise _refused(f"the nested definition {node.name!r}", node)
        for decorator in function.decorator_list:
            if not (isinstance(decorator, ast.Name) and decorator.id == "staticmethod"):
                raise _refused(f"the decorator {ast.unparse(decorator)!r}", decorator)


def _bound_names(tree: ast.Module) -> set[str]:
    """Every name the module binds: assignment and loop targets, arguments, definitions."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            bound.add(node.name)
    return bound


def _node_problem(node: ast.AST, bound: set[str]) -> str | None:
    """Why ``node`` is outside the generated code's vocabulary, or None."""
    if type(node) not in _NODES:
        return f"{type(node).__name__} syntax, which the Faust compiler never writes"
    if isinstance(node, ast.Name):
        if isinstance(node.ctx, ast.Store):
            return _binding_problem(node.id)
        if node.id.startswith("__") or node.id not in bound | _GLOBALS:
            return f"the name {node.id!r}, which the module neither defines nor may use"
    if isinstance(node, ast.arg):
        return _binding_problem(node.arg)
    if isinstance(node, ast.FunctionDef | ast.ClassDef):
        return _binding_problem(node.name)
    if isinstance(node, ast.Attribute):
        return _attribute_problem(node)
    if isinstance(node, ast.Constant) and not isinstance(node.value, _CONSTANTS):
        return f"a {type(node.value).__name__} constant"
    if isinstance(node, ast.keyword) and node.arg is None:
        return "a ** argument"
    return None


def _binding_problem(name: str) -> str | None:
    """A bound name is never a dunder, a namespace module or a builtin: so a name the
    module loads is its own or one of :data:`_GLOBALS`, whatever scope binds it."""
    if name.startswith("__"):
        return f"it binds the dunder name {name!r}"
    if name in _GLOBALS - {"self"} or hasattr(builtins, name):
        return f"it rebinds {name!r}"
    return None


def _attribute_problem(node: ast.Attribute) -> str | None:
    if not isinstance(node.ctx, ast.Load):
        return f"it assigns the attribute {node.attr!r}"
    owner = node.value.id if isinstance(node.value, ast.Name) else None
    if node.attr not in _MODULE_ATTRIBUTES.get(owner, _METHODS):
        return f"the attribute {ast.unparse(node)!r}"
    return None


def _namespace() -> dict[str, Any]:
    """The generated module's globals: its modules, the ``nn`` shim, and builtins cut
    to :data:`_BUILTINS` (``__build_class__`` too, which a ``class`` statement calls)."""
    allowed = {name: getattr(builtins, name) for name in _BUILTINS}
    return {
        "__builtins__": {**allowed, "__build_class__": builtins.__build_class__},
        "__name__": "ddsp_gym.plants.faust_generated",
        "jnp": jnp,
        "np": np,
        "json": json,
        "dataclasses": dataclasses,
        "nn": _Shim,
    }


def _load_class(source: str, filename: str) -> type:
    """Check, then run, generated JAX source; its class ``FaustDSP``."""
    tree = check_jax_source(source)
    namespace = _namespace()
    try:
        exec(compile(tree, filename, "exec"), namespace)
    except Exception as err:
        raise FaustError(f"the generated JAX code fails to load: {err!r}") from None
    return namespace[_CLASS]


@dataclass(frozen=True)
class UIElement:
    """One UI element of a Faust program."""

    zone: str  # the generated code's variable (e.g. "fHslider0")
    kind: str  # hslider | vslider | button | checkbox | nentry
    name: str  # the short name: the knob's name
    init: float
    low: float
    high: float
    meta: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class FaustProgram:
    """A compiled Faust program: its generated class and its UI."""

    cls: type
    n_inputs: int
    n_outputs: int
    ui: tuple[UIElement, ...]


def _walk_ui(items: list[dict]) -> list[UIElement]:
    found = []
    for item in items:
        if "items" in item:
            found += _walk_ui(item["items"])
        elif item["type"] in _SLIDERS + _FIXED:
            meta = tuple((k, str(v)) for m in item.get("meta", []) for k, v in m.items())
            found.append(
                UIElement(
                    zone=item["varname"],
                    kind=item["type"],
                    name=item.get("shortname", item["label"]),
                    init=float(item.get("init", 0.0)),
                    low=float(item.get("min", 0.0)),
                    high=float(item.get("max", 1.0)),
                    meta=meta,
                )
            )
    return found


@functools.lru_cache(maxsize=32)
def load_program(code: str) -> FaustProgram:
    """Compile (or fetch from the cache) and load a Faust program."""
    cls = _load_class(jax_source(code), f"<faust {source_key(code)[:12]}>")
    probe = cls.__new__(cls)
    try:
        ui = _walk_ui(probe.getJSON()["ui"])
        n_inputs, n_outputs = int(probe.getNumInputs()), int(probe.getNumOutputs())
    except FaustError:
        raise
    except Exception as err:
        raise FaustError(f"the generated JAX code's interface is malformed: {err!r}") from None
    return FaustProgram(cls, n_inputs, n_outputs, tuple(ui))


def _knob_spec(element: UIElement) -> KnobSpec:
    meta = dict(element.meta)
    log = meta.get("scale") == "log" and element.low > 0
    description = meta.get("tooltip", f"Faust {element.kind} {element.name!r}")
    return KnobSpec(
        element.name,
        element.low,
        element.high,
        "log" if log else "linear",
        meta.get("unit", ""),
        description,
    )


@dataclass(frozen=True)
class FaustPlant(AbstractPlant):
    """A plant whose sound is a Faust program (see the module docstring).

    ``code`` is the Faust source; ``fixed`` sets buttons, checkboxes and number
    entries by short name (a mapping, or pairs); ``output_gain`` scales the
    mono output; ``program_kind`` is the default input of an effect program.
    """

    code: str = DEFAULT_FAUST_CODE
    fixed: Any = ()
    output_gain: float = 1.0
    program_kind: str = "mix"  # an effect's default input (ddsp_gym.program)

    def __post_init__(self) -> None:
        pairs = self.fixed.items() if isinstance(self.fixed, dict) else self.fixed
        object.__setattr__(self, "fixed", tuple(sorted((str(k), float(v)) for k, v in pairs)))
        program = self.program  # compile now: a bad program fails at make time
        if not any(e.kind in _SLIDERS for e in program.ui):
            raise FaustError("the Faust program has no hslider/vslider: a plant needs knobs")
        if program.n_outputs == 0:
            raise FaustError("the Faust program has no outputs")
        settable = {e.name: e for e in program.ui if e.kind in _FIXED}
        unknown = sorted(set(dict(self.fixed)) - set(settable))
        if unknown:
            raise FaustError(
                f"fixed names {unknown} are not buttons, checkboxes or number entries of the "
                f"program; those are {sorted(settable)}"
            )

    @property
    def program(self) -> FaustProgram:
        return load_program(self.code)

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return tuple(_knob_spec(e) for e in self.program.ui if e.kind in _SLIDERS)

    @property
    def needs_input(self) -> bool:
        return self.program.n_inputs > 0

    def default_input(self) -> np.ndarray | None:
        if not self.needs_input:
            return None
        from ddsp_gym.program import program_signal

        return program_signal(self.program_kind, self.sample_rate, self.n_samples)

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        program, n = self.program, self.n_samples
        fixed = dict(self.fixed)
        values = {
            e.zone: (
                controls[e.name]
                if e.kind in _SLIDERS
                else jnp.float32(fixed.get(e.name, 0.0 if e.kind == "button" else e.init))
            )
            for e in program.ui
        }
        dsp = program.cls.__new__(program.cls)
        _Module.__init__(dsp, self.sample_rate, values)
        if program.n_inputs:
            audio_in = jnp.asarray(self.input_or_default(audio_in), jnp.float32)
            x = jnp.broadcast_to(audio_in[:n], (program.n_inputs, n))
        else:
            x = jnp.zeros((0, n), jnp.float32)
        state = dsp.build_interface(dsp.initialize(x, n), x, n)
        state = jax.tree.map(lambda v: jnp.asarray(v, _dtype(v)), state)
        state = _complete_state(dsp.tick, state, x[:, 0])
        y = _tick_outputs(dsp.tick, state, x.T)  # (n, n_outputs)
        return self.output_gain * jnp.mean(y, axis=1)


# Samples per iteration of the render's loop. The generated ``tick`` works on tiny
# arrays (a filter's 3 past values, shifted with ``jnp.roll`` every sample): one sample
# per iteration costs a dozen small XLA:CPU kernels; several let XLA fuse across them.
# The default program's render, profiled: batch 1 0.12 -> 0.06 ms, batch 32 3.3 -> 1.3 ms
# at 4 (8 was slower at batch 1). Its gradient gained at most ~10 % unrolled at batch 32
# and was 5x slower at batch 1, so it keeps the one-sample loop (:func:`_tick_outputs`).
FORWARD_UNROLL = 4


def _scan_ticks(tick, state: dict, inputs: Array, unroll: int = 1) -> Array:
    return jax.lax.scan(tick, state, inputs, unroll=unroll)[1]


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _tick_outputs(tick, state: dict, inputs: Array) -> Array:
    """``tick`` run over ``inputs`` (n, n_inputs) from ``state`` -> outputs (n, n_outputs).

    Unrolled (:data:`FORWARD_UNROLL`) where no gradient is taken; differentiated
    through the plain loop, whose samples are the same to float32 rounding.
    """
    return _scan_ticks(tick, state, inputs, FORWARD_UNROLL)


def _tick_outputs_fwd(tick, state: dict, inputs: Array):
    return jax.vjp(functools.partial(_scan_ticks, tick), state, inputs)


def _tick_outputs_bwd(tick, vjp, cotangent: Array):
    return vjp(cotangent)


_tick_outputs.defvjp(_tick_outputs_fwd, _tick_outputs_bwd)


def _dtype(value: Any):
    """Float64 constants of the generated code become float32 (the plants' precision)."""
    dtype = jnp.result_type(value)
    if jnp.issubdtype(dtype, jnp.floating):
        return jnp.float32
    if jnp.issubdtype(dtype, jnp.integer):
        return jnp.int32
    return dtype


def _complete_state(tick, state: dict, inputs: Array) -> dict:
    """Add the state entries ``tick`` writes without ``initialize`` declaring them
    (bargraphs) and give every entry the dtype ``tick`` returns, so the scan's
    carry keeps one type."""
    out, _ = jax.eval_shape(tick, dict(state), inputs)
    return {
        k: jnp.asarray(state.get(k, jnp.zeros(s.shape, s.dtype)), s.dtype) for k, s in out.items()
    }
