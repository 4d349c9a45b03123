"""README.md works as pasted: each ```python block runs in a fresh interpreter, and each
command of the shell blocks names a real subcommand, flag, Makefile target or extra.

Shell commands are not run (several are long benchmarks or need a device): a
``ddsp-gym`` line is parsed by the real command-line parser and its subcommand answers
``--help``; ``python scripts/X.py`` answers ``--help``; ``make`` targets and ``pip``
extras must exist. The env table must list exactly the registered ids, and relative
links in README.md and docs/*.md must point at files that exist.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import ddsp_gym
from ddsp_gym.cli import build_parser
from tests.conftest import require, subprocess_env

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MAX_README_LINES = 260
SHELL_LANGUAGES = ("bash", "sh", "shell", "console")
FENCE = re.compile(r"^```(\w*)\s*$")


def fenced_blocks(path: Path, languages: tuple[str, ...]) -> list[tuple[int, str]]:
    """(first line number, code) of each fenced block in ``path`` tagged with one of
    ``languages``."""
    blocks, language, start, lines = [], None, 0, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = FENCE.match(line)
        if match and language is None:
            language, start, lines = match.group(1), number + 1, []
        elif line.strip() == "```" and language is not None:
            if language in languages:
                blocks.append((start, "\n".join(lines) + "\n"))
            language = None
        elif language is not None:
            lines.append(line)
    assert language is None, f"{path.name}: a code block opened at line {start - 1} never closes"
    return blocks


def shell_commands(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, argv) of every command in the shell blocks of ``path``: line
    continuations joined, comments and ``$`` prompts dropped."""
    commands = []
    for start, code in fenced_blocks(path, SHELL_LANGUAGES):
        pending, first = "", start
        for offset, line in enumerate(code.splitlines()):
            if not pending:
                first = start + offset
            line = line.removeprefix("$ ")
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            argv = shlex.split(pending + line, comments=True)
            pending = ""
            if argv:
                commands.append((first, argv))
    return commands


def _ddsp_gym() -> list[str]:
    """The installed ``ddsp-gym`` entry point beside this interpreter, else the module."""
    script = Path(sys.executable).with_name("ddsp-gym")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ddsp_gym.cli"]


PYTHON_BLOCKS = fenced_blocks(README, ("python",))
COMMANDS = shell_commands(README)


def test_readme_is_at_most_260_lines():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; move detail to docs/"


def test_readme_has_python_and_shell_blocks():
    assert len(PYTHON_BLOCKS) >= 3
    assert any(argv[0] == "ddsp-gym" for _, argv in COMMANDS)


@pytest.mark.parametrize(
    "code", [code for _, code in PYTHON_BLOCKS], ids=[f"line{n}" for n, _ in PYTHON_BLOCKS]
)
def test_python_block_runs_as_pasted(code, tmp_path):
    """Each block alone, in a fresh interpreter, in an empty folder: exit status 0."""
    if "stable_baselines3" in code:
        require("stable_baselines3", "the README's SB3 example needs the sb3 extra")
    if "progress_bar=True" in code:
        require("rich", "SB3's progress bar needs rich (the sb3 extra)")
    script = tmp_path / "readme_block.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"exit {done.returncode}:\n{code}\n{done.stderr[-4000:]}"


def _subcommand_path(argv: list[str]) -> list[str]:
    """The leading words of ``argv`` that name (nested) subcommands of the parser."""
    parser, path = build_parser(), []
    for word in argv:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions or word not in actions[0].choices:
            break
        parser = actions[0].choices[word]
        path.append(word)
    return path


DDSP_GYM_COMMANDS = [(n, argv[1:]) for n, argv in COMMANDS if argv[0] == "ddsp-gym"]


@pytest.mark.parametrize(
    "args", [a for _, a in DDSP_GYM_COMMANDS], ids=[f"line{n}" for n, _ in DDSP_GYM_COMMANDS]
)
def test_ddsp_gym_command_parses_and_its_subcommand_answers_help(args):
    path = _subcommand_path(args)
    assert path, f"`ddsp-gym {shlex.join(args)}` names no subcommand"
    try:
        build_parser().parse_args(args)
    except SystemExit as err:  # argparse's way of refusing arguments
        pytest.fail(f"`ddsp-gym {shlex.join(args)}` does not parse (exit {err.code})")
    done = subprocess.run(
        [*_ddsp_gym(), *path, "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_other_shell_commands_name_real_targets_scripts_and_extras():
    """`make X`: a Makefile target; `python scripts/X.py` and `python -m module`: answer
    --help (and a `--conf-file` exists); `pip install -e '.[a]'`: a declared extra. Any
    other program must be a known one."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for number, argv in COMMANDS:
        program = argv[0]
        where = f"README.md line {number}: {shlex.join(argv)}"
        if program == "make":
            for target in argv[1:]:
                assert re.search(rf"^{re.escape(target)}:", makefile, re.M), where
        elif program == "python" and argv[1] == "-m":  # a module's command line
            if "--conf-file" in argv:
                assert (ROOT / argv[argv.index("--conf-file") + 1]).is_file(), where
            done = subprocess.run(
                [sys.executable, "-m", argv[2], "--help"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, f"{where}\n{done.stderr[-2000:]}"
        elif program == "python":
            script = ROOT / argv[1]
            assert script.is_file(), where
            done = subprocess.run(
                [sys.executable, str(script), "--help"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, f"{where}\n{done.stderr[-2000:]}"
        elif program == "pip":
            for extras in re.findall(r"\[([\w,-]+)\]", " ".join(argv)):
                for extra in extras.split(","):
                    assert re.search(rf"^{extra} = \[", pyproject, re.M), where
        else:
            assert program in ("ddsp-gym", "apt-get"), where


def test_env_table_lists_exactly_the_registered_envs():
    listed = re.findall(r"^\| `(ddsp_gym/[\w-]+)` \|", README.read_text(encoding="utf-8"), re.M)
    assert sorted(listed) == sorted(ddsp_gym.ENV_IDS)


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.name)
def test_relative_links_point_at_existing_files(path):
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        file = (path.parent / target.split("#")[0]).resolve()
        assert file.exists(), f"{path.name} links to {target}, which does not exist"
