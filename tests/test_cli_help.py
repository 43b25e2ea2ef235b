"""`--help` of every command: examples, untruncated summaries, exit codes, and every environment
variable the README mentions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from semsearch.cli import cli

README = Path(__file__).resolve().parent.parent / "README.md"
# Environment variables of the project, of Ollama and OpenAI clients, NO_COLOR, and completion.
ENV_VAR = re.compile(r"\b_?(?:SEMSEARCH|OLLAMA|OPENAI)_[A-Z0-9_]+\b|\bNO_COLOR\b")
# Read by scripts in benchmarks/, not by any command.
NOT_A_COMMAND_SETTING = {"SEMSEARCH_BENCH_CACHE"}


def help_text(*args: str, width: int = 100) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], terminal_width=width)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_help_shows_examples(command):
    text = help_text(command)
    examples = text.split("Examples:", 1)[1].split("Options:", 1)[0]
    lines = [line.strip() for line in examples.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 3 and all(line.startswith(("semsearch ", "SEMSEARCH_")) for line in lines), lines


def test_the_command_list_is_not_truncated():
    listing = help_text(width=80).split("Commands:", 1)[1]  # one line each on an 80-column terminal
    rows = [line for line in listing.splitlines() if line.strip()]
    assert len(rows) == len(cli.commands)
    assert not any(row.rstrip().endswith("...") for row in rows), rows


def test_top_level_help_gives_exit_codes_and_completion():
    text = help_text()
    for code in ("0 ", "1 ", "2 ", "130 "):
        assert f"\n    {code}" in text
    assert "_SEMSEARCH_COMPLETE=bash_source semsearch" in text


def test_every_environment_variable_in_the_readme_is_in_some_help():
    named = set(ENV_VAR.findall(README.read_text(encoding="utf-8"))) - NOT_A_COMMAND_SETTING
    assert {"OLLAMA_HOST", "SEMSEARCH_INDEX", "NO_COLOR"} <= named  # the parse finds them
    helps = help_text() + "".join(help_text(command) for command in cli.commands)
    missing = sorted(name for name in named if name not in helps)
    assert not missing, f"README mentions {missing}, no --help does"


@pytest.mark.parametrize("command", ["search", "context"])
def test_search_and_context_help_say_what_scores_and_exit_codes_mean(command):
    text = help_text(command)
    assert "Exit status" in text and "cosine" in text and "bm25" in text and "--min-score" in text
