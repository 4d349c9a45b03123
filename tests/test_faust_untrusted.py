"""Untrusted Faust programs: their strings and names never run as Python.

A shared ``.dsp`` file puts text the plant does not control into the Faust compiler's
generated Python: labels, metadata (``[unit:...]``, ``[tooltip:...]``, any ``[key:value]``),
``declare`` values, foreign names (``ffunction``, ``fconstant``, ``fvariable``); the user
cache holds generated code anyone with the home folder can edit. Every payload here, were
it ever run, would create a marker file or append to :data:`SENTINEL`: each program
either builds and renders finite audio with neither happening, or is refused with
``FaustError``. Compiling needs DawDreamer (the ``dawdreamer`` fixture); the cache and
validator tests run everywhere.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddsp_gym.plants import make_plant
from ddsp_gym.plants.faust import (
    DEFAULT_FAUST_CODE,
    FaustError,
    _cached_source,
    _user_cache,
    check_jax_source,
    compile_to_jax,
    load_program,
    source_key,
)

SENTINEL: list[str] = []  # a payload that ran would append here

# Every string-carrying place of a Faust program: declare values (name, author, license,
# description, filename, any key), slider/nentry/button/checkbox/bargraph/group labels,
# [unit:], [tooltip:], [scale:]-neighbouring and arbitrary [key:value] metadata.
TEMPLATE = """\
declare name "{P}";
declare author "{P}";
declare license "{P}";
declare description "{P}";
declare filename "{P}";
declare anything "{P}";
import("stdfaust.lib");
gain = hgroup("g{P}", hslider("h{P}[unit:{P}][tooltip:{P}][style:knob][any:{P}]", 0.5, 0, 1, 0.01));
tone = vslider("v{P}[scale:log][unit:{P}]", 440, 110, 880, 1);
steps = nentry("n{P}[tooltip:{P}]", 1, 1, 3, 1);
gate = button("b{P}");
mute = checkbox("c{P}");
process = os.osc(tone) * gain * steps * (1 - mute) * (1 - gate) : hbargraph("m{P}", -1, 1);
"""


def payloads(marker: Path) -> dict[str, str]:
    """Python that would touch ``marker`` or append to SENTINEL, as Faust strings allow
    it (a Faust string holds no double quote: the "double quotes" one does not compile)."""
    touch = f"__import__('os').system('touch {marker}')"
    sentinel = f"__import__('sys').modules[{__name__!r}].SENTINEL.append('ran')"
    return {
        "close the call": f"'); import os; os.system('touch {marker}'); ('",
        "dunder import": touch,
        "triple quotes": f"''' + open('{marker}', 'w').write('x') + '''",
        "backslash quote": f"\\\\'); {sentinel} #",
        "escaped newline": f"x\\n{touch}",
        "raw newline": f"x\n{touch}\n",
        "trailing backslash": f"{touch}\\",
        "double quotes": f'"); import os; os.system("touch {marker}"); ("',
        "sentinel": sentinel,
    }


def assert_harmless(marker: Path) -> None:
    assert not marker.exists(), "a payload ran: the marker file exists"
    assert SENTINEL == [], "a payload ran: SENTINEL was appended to"


def test_the_payloads_are_live(tmp_path):
    # Run as Python, they do what the tests below check never happens.
    marker = tmp_path / "pwned"
    eval(payloads(marker)["dunder import"])
    assert marker.exists()
    try:
        eval(payloads(marker)["sentinel"])
        assert SENTINEL == ["ran"]
    finally:
        SENTINEL.clear()


def build_or_refuse(code: str) -> str:
    """'refused' (FaustError) or 'rendered' (finite audio at the knobs' midpoints)."""
    try:
        plant = make_plant("faust", code=code, duration=0.01)
    except FaustError:
        return "refused"
    audio = plant.render(jnp.full((plant.num_knobs,), 0.5), jax.random.PRNGKey(0))
    assert audio.shape == (plant.n_samples,) and bool(jnp.all(jnp.isfinite(audio)))
    return "rendered"


@pytest.fixture
def scratch_cache(tmp_path, monkeypatch) -> Path:
    """A user cache of this test's own, so no compiled or tampered file outlives it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


# ---- strings in a compiled program ---------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("close the call", "rendered"),
        ("dunder import", "rendered"),
        ("triple quotes", "rendered"),
        ("backslash quote", "rendered"),
        ("escaped newline", "rendered"),
        ("raw newline", "rendered"),
        ("trailing backslash", "refused"),  # the compiler's string literal runs on: no parse
        ("double quotes", "refused"),  # not a Faust string: the compiler refuses it
        ("sentinel", "rendered"),
    ],
)
def test_payload_in_every_string_is_data(name, expected, dawdreamer, scratch_cache):
    marker = scratch_cache / "pwned"
    payload = payloads(marker)[name]
    code = TEMPLATE.replace("{P}", payload)
    assert build_or_refuse(code) == expected
    assert_harmless(marker)
    # Compiled once, the program now loads from the user cache: checked again there.
    load_program.cache_clear()
    assert build_or_refuse(code) == expected
    assert_harmless(marker)


def test_metadata_arrives_as_the_programs_text(dawdreamer, scratch_cache):
    marker = scratch_cache / "pwned"
    payload = payloads(marker)["close the call"]
    plant = make_plant("faust", code=TEMPLATE.replace("{P}", payload), duration=0.01)
    specs = {s.name[0]: s for s in plant.knob_specs}
    assert sorted(specs) == ["h", "v"]  # hslider and vslider; the rest are fixed settings
    assert specs["h"].unit == payload and specs["h"].description == payload
    assert specs["v"].unit == payload and specs["v"].curve == "log"
    assert_harmless(marker)


@pytest.mark.parametrize(
    "declaration, name",
    [
        ('f = ffunction(float eval(float), <math.h>, "");', "eval"),
        ('f = ffunction(float exec(float), <math.h>, "");', "exec"),
        ('f = ffunction(float open(float), <stdio.h>, "");', "open"),
        ('f = ffunction(int exit(int), <stdlib.h>, "");', "exit"),
        ('f = ffunction(float input(float), <stdio.h>, "");', "input"),
        ('f = ffunction(float breakpoint(float), <math.h>, "");', "breakpoint"),
        ('f = ffunction(float print(float), <stdio.h>, "");', "print"),
        ('f = ffunction(float getattr(float), <math.h>, "");', "getattr"),
        ("f = *(fconstant(int __import__, <math.h>));", "__import__"),
        ("f = *(fvariable(int globals, <math.h>));", "globals"),
    ],
)
def test_foreign_names_never_reach_python_names(declaration, name, dawdreamer, scratch_cache):
    # The compiler writes a foreign function's or constant's name into the code as is.
    code = f'{declaration}\nprocess = hslider("x", 0.5, 0, 1, 0.01) : f;'
    with pytest.raises(FaustError, match=rf"the name '{name}'"):
        make_plant("faust", code=code, duration=0.01)


def test_fixed_names_are_data(scratch_cache):
    marker = scratch_cache / "pwned"
    for payload in payloads(marker).values():
        with pytest.raises(FaustError, match="are not buttons, checkboxes or number entries"):
            make_plant("faust", fixed={payload: 1.0})
    assert_harmless(marker)


# ---- generated code: the packaged file, a tampered user cache ------------------------


def packaged_source() -> str:
    source = _cached_source(source_key(DEFAULT_FAUST_CODE))
    assert source is not None
    return source


def test_the_packaged_default_program_passes_the_check():
    tree = check_jax_source(packaged_source())
    assert [n.name for n in tree.body if hasattr(n, "name")] == ["remainder", "FaustDSP"]


WIDE = 'import("stdfaust.lib");\nx = hslider("x", 0.5, 0, 1, 0.01);\n'
PROGRAMS = {  # the backend's math table, int and bit operators, select, casts
    "math": WIDE + "process = sin(x) + cos(x) + tan(x) + asin(x) + acos(x) + atan(x) "
    "+ atan2(x, 1) + exp(x) + log(x + 1) + log10(x + 1) + pow(x, 2) + sqrt(x) + abs(x) "
    "+ floor(x) + ceil(x) + rint(x) + fmod(x, 0.3) + remainder(x, 0.3) + min(x, 0.2) "
    "+ max(x, 0.2) + float(int(x * 5)) + (x > 0.2) + ((int(x * 8) & 3) | (int(x * 8) xor 1)) "
    "+ (int(x * 8) << 2) + (int(x * 9) % 4) + select3(int(x * 3), 1, 2, 3) + ma.tanh(x) "
    "+ ma.asinh(x) + ma.copysign(x, -1) + ma.isnan(x);",
    "tables": WIDE + "process = rdtable(waveform{1, 2, 3, 4}, int(x * 3)) + os.osc(440) "
    "+ rwtable(16, 0.0, int(os.phasor(16, 3)), _, int(x * 15));",
    "delays, bargraph": WIDE + "process = _ : de.fdelay(1024, x * 100) : ef.echo(1, 0.3, x) "
    ': hbargraph("level", -1, 1);',
    "reverb": WIDE + "process = _ <: re.stereo_freeverb(0.5, x, 0.5, 23) :> _;",
    "envelope": WIDE + 'process = os.sawtooth(220) * en.adsr(0.01, 0.1, x, 0.2, button("g"));',
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_the_check_passes_what_the_compiler_writes(name, dawdreamer):
    check_jax_source(compile_to_jax(PROGRAMS[name]))


def test_the_generated_module_runs_with_cut_builtins():
    program = load_program(DEFAULT_FAUST_CODE)
    available = program.cls.tick.__globals__["__builtins__"]
    for name in ("eval", "exec", "open", "__import__", "getattr", "globals", "compile"):
        assert name not in available
    assert {"range", "staticmethod", "int"} <= set(available)


def _tick_line(source: str, line: str) -> str:
    """``source`` with ``line`` run first in ``tick``."""
    head = "def tick(state: dict, inputs: jnp.array):\n"
    return source.replace(head, f"{head}\t\t{line}\n")


def tampered(marker: Path) -> dict[str, str]:
    """The packaged default program's code, edited as an attacker with the cache might."""
    source = packaged_source()
    touch = f"os.system('touch {marker}')"
    return {
        "import": f"import os\n{touch}\n{source}",
        "from import": f"from os import system\nsystem('touch {marker}')\n{source}",
        "module-level call": f"{source}\n__import__('os').system('touch {marker}')\n",
        "open in getJSON": source.replace(
            "return json.loads(json_str)", f"return open('{marker}', 'w')"
        ),
        "label injection": source.replace(
            '"cutoff", 1e+03', f'"cutoff"); import os; {touch}; ("x", 1e+03'
        ),
        "eval": _tick_line(source, "eval(\"__import__('os')\")"),
        "exec": _tick_line(source, f'exec("import os; {touch}")'),
        "compile": _tick_line(source, "compile('1', 'x', 'eval')"),
        "getattr": _tick_line(source, "getattr(np, 'load')"),
        "globals": _tick_line(source, "globals()['np']"),
        "vars": _tick_line(source, "vars(np)"),
        "subclasses": _tick_line(source, "().__class__.__base__.__subclasses__()"),
        "dunder name": _tick_line(source, "__builtins__['open']"),
        "self dict": _tick_line(source, "state.__dict__"),
        "np.save": _tick_line(source, f"np.save('{marker}', 0)"),
        "np.load": _tick_line(source, f"np.load('{marker}')"),
        "tofile": _tick_line(source, f"np.zeros(1).tofile('{marker}')"),
        "jax callback": _tick_line(source, "jax.debug.callback(print)"),
        "patch numpy": _tick_line(source, "np.sin = np.cos"),
        "bind a builtin": _tick_line(source, "open = np.zeros"),
        "patch the shim": source.replace("FAUSTFLOAT = jnp.float32", "nn.Module = None"),
        "rebind np": source.replace("FAUSTFLOAT = jnp.float32", "np = 0"),
        "lambda": _tick_line(source, "f = lambda: 0"),
        "comprehension": _tick_line(source, "[c for c in 'x']"),
        "f-string": _tick_line(source, "f'{state!r}'"),
        "star args": _tick_line(source, "jnp.stack(**state)"),
        "global": _tick_line(source, "global np"),
        "try": _tick_line(source, "try:\n\t\t\tpass\n\t\texcept Exception:\n\t\t\tpass"),
        "with": _tick_line(source, "with state:\n\t\t\tpass"),
        "del hook": source.replace(
            "\tdef getNumInputs(self):",
            f"\tdef __del__(self):\n\t\t{touch}\n\n\tdef getNumInputs(self):",
        ),
        "decorator": source.replace("@staticmethod", "@print"),
        "metaclass": source.replace(
            "class FaustDSP(nn.Module):", "class FaustDSP(nn.Module, metaclass=type):"
        ),
        "other base": source.replace("class FaustDSP(nn.Module):", "class FaustDSP(object):"),
        "second class": f"{source}\nclass Other(nn.Module):\n\tpass\n",
        "nested def": _tick_line(source, "def inner():\n\t\t\treturn 0"),
        "missing tick": source.replace("def tick(", "def tock("),
        "bytes": _tick_line(source, "b'x'"),
        "null byte": source.replace("lowpass_saw", "lowpass\0saw"),
    }


@pytest.mark.parametrize("edit", list(tampered(Path("/unused"))))
def test_a_tampered_user_cache_is_refused_not_run(edit, scratch_cache):
    marker = scratch_cache / "pwned"
    code = f"// a program compiled once, its cached JAX edited: {edit}\nprocess = 0;"
    _user_cache().mkdir(parents=True)
    (_user_cache() / f"{source_key(code)}.py").write_text(tampered(marker)[edit])
    with pytest.raises(FaustError, match="generated JAX code"):
        make_plant("faust", code=code, duration=0.01)
    assert_harmless(marker)


def test_an_untampered_user_cache_still_loads(scratch_cache):
    # The check passes what the compiler wrote (here the packaged file, copied).
    code = "// a program whose cached JAX is the default program's\nprocess = 0;"
    _user_cache().mkdir(parents=True)
    (_user_cache() / f"{source_key(code)}.py").write_text(packaged_source())
    plant = make_plant("faust", code=code)
    default = make_plant("faust")
    knobs, key = jnp.array([0.4, 0.6, 0.5]), jax.random.PRNGKey(0)
    np.testing.assert_array_equal(plant.render(knobs, key), default.render(knobs, key))


def test_a_malformed_ui_description_is_refused(scratch_cache):
    code = "// cached JAX whose UI JSON is not JSON\nprocess = 0;"
    source = packaged_source().replace('json_str = """{', 'json_str = """{{', 1)
    _user_cache().mkdir(parents=True)
    (_user_cache() / f"{source_key(code)}.py").write_text(source)
    with pytest.raises(FaustError, match="interface is malformed"):
        make_plant("faust", code=code)
