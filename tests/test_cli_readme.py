"""Every `recommender ...` command line of README.md and docs/*.md parses as written.

The examples of the README and of the pages under docs/ are the commands
users copy: each one, from the shell blocks (lines starting with
`recommender `, or after `&&`), the cron entry and the Airflow task, goes
through the real command line parser with the commands' callbacks replaced
(nothing runs) and paths not required to exist, so that an option a page
uses and the command lacks, a missing value or a misspelt subcommand fails
here instead of on a user's machine.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from recommender.cli import _app, cli

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
#: The pages whose code blocks are checked: the README, then docs/ in name order.
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^[ \t]*```(\w*)[ \t]*\n(.*?)^[ \t]*```", re.S | re.M)
#: Shell words after which the rest of a line is not the command's.
SHELL_STOPS = {">", ">>", "2>", "2>&1", "|", "||", "&&", ";", "&"}


def readme_command_lines(text: str) -> list[str]:
    """The `recommender ...` command lines of a Markdown page's code blocks."""
    found = []
    for language, body in FENCE.findall(text):
        body = body.replace("\\\n", " ")  # continued lines
        for line in body.splitlines():
            line = line.strip()
            if language in ("sh", "bash", "shell", "console"):
                found += [
                    p.strip() for p in line.split("&&") if p.strip().startswith("recommender ")
                ]
            elif language == "cron":
                entry = re.match(r"^(?:\S+\s+){5}(recommender .*)$", line)
                found += [entry.group(1)] if entry else []
            elif language == "python":
                found += re.findall(r"bash_command=[\"'](recommender [^\"']*)[\"']", line)
    return found


def command_words(line: str) -> list[str]:
    """The arguments after `recommender`: optional parts (`[--now TIME]`) kept,
    templates (`{{ ts_nodash }}`) filled, comments and redirections left out."""
    line = re.sub(r"\{\{.*?\}\}", "20210308T000000", line)
    line = re.sub(r"\[(--[^\[\]]*)\]", r"\1", line)
    words = shlex.split(line, comments=True)
    for index, word in enumerate(words):
        if word in SHELL_STOPS or word.startswith((">", "2>")):
            words = words[:index]
            break
    assert words[0] == "recommender", line
    return words[1:]


#: (page, command line) for every command line of every page.
PAGE_LINES = [
    (str(page.relative_to(REPO)), line)
    for page in PAGES
    for line in readme_command_lines(page.read_text(encoding="utf-8"))
]
LINES = [line for _, line in PAGE_LINES]
README_LINES = [line for page, line in PAGE_LINES if page == "README.md"]


def leaf_commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[Any]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from leaf_commands(command, (*path, name))
        else:
            yield (*path, name), command


@pytest.fixture
def parse(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], tuple[str, dict]]:
    """Parse a command line as `recommender` would, without running it: the
    called command's path and the values it got."""
    called: list[tuple[str, dict]] = []
    for path, command in leaf_commands(cli):

        def record(_path: tuple[str, ...] = path, **values: Any) -> None:
            called.append((" ".join(_path), values))

        monkeypatch.setattr(command, "callback", record)
        for param in command.params:
            if isinstance(param.type, click.Path) and param.type.exists:
                monkeypatch.setattr(param.type, "exists", False)  # the pages' paths are examples

    def run(words: list[str]) -> tuple[str, dict]:
        called.clear()
        try:
            cli.main(words, prog_name="recommender", standalone_mode=False)
        except click.UsageError as error:
            pytest.fail(f"recommender {shlex.join(words)}: {error.format_message()}")
        assert len(called) == 1, f"recommender {shlex.join(words)} ran {called}"
        return called[0]

    return run


def test_the_pages_have_the_command_lines_users_copy() -> None:
    assert len(PAGES) >= 2, PAGES
    assert len(LINES) >= 15, LINES
    assert any(line.startswith("recommender run -q -v -c ") for line in LINES)  # cron
    assert any(line.startswith("recommender run -v -c ") for line in LINES)  # Airflow
    assert any(line.startswith("recommender ingest ") for line in LINES)
    assert any(line.startswith("recommender batch ") and "--cluster" in line for line in LINES)
    # The front door: the quick start's run and the HTTP service.
    assert any(
        line.startswith("recommender run --config data/sample.toml") for line in README_LINES
    )
    assert any(
        line.startswith("recommender serve ") and "--public-url" in line for line in README_LINES
    )


def test_the_command_lines_are_found_in_every_kind_of_block() -> None:
    text = "\n".join(
        [
            "```sh",
            "python -m pip install . && recommender run --config a.toml",
            "recommender serve -c a.toml \\",
            "    --port 8000",
            "```",
            "```cron",
            "*/10 * * * * recommender run -q -c a.toml >> run.log 2>&1",
            "```",
            "```python",
            'task = BashOperator(bash_command="recommender run -v -c a.toml")',
            "```",
            "```text",
            "recommender run --not-a-command-line",
            "```",
        ]
    )
    assert readme_command_lines(text) == [
        "recommender run --config a.toml",
        "recommender serve -c a.toml      --port 8000",
        "recommender run -q -c a.toml >> run.log 2>&1",
        "recommender run -v -c a.toml",
    ]


@pytest.mark.parametrize(("page", "line"), PAGE_LINES)
def test_page_command_line_parses(page: str, line: str, parse) -> None:
    words = command_words(line)
    command, _ = parse(words)
    named = [w for w in words if not w.startswith("-")]
    assert command.split()[0] == named[0], (line, command)


@pytest.mark.parametrize(
    "words, command",
    [
        (["run", "-q", "-v", "-c", "net.toml"], "run"),
        (["batch", "--config", "net.toml", "-vv"], "batch"),
        (["recommend", "jt-070", "-v", "--json"], "recommend"),
        (["runs", "list", "-v"], "runs list"),
        (["runs", "-v", "show", "RUN", "-v"], "runs show"),
        (["serve", "--port", "0", "-v"], "serve"),
        (["ingest", "feed.xml", "--site", "a", "-q", "-v"], "ingest"),
        (["evaluate", "-v", "--no-lists"], "evaluate"),
        (["tune", "--mind-dir", "mind", "-v"], "tune"),
        (["simulate-traffic", "--articles", "a", "--out", "o", "--end", "2021", "-v"], None),
    ],
)
def test_verbose_is_accepted_after_every_subcommand(words: list[str], command, parse) -> None:
    called, _ = parse(words)
    assert called == (command or words[0])


def test_every_registered_command_has_verbose() -> None:
    """Registered later by any module, with any decorator: the group adds it."""
    missing = [
        " ".join(path)
        for path, command in leaf_commands(cli)
        if not any("--verbose" in param.opts for param in command.params)
    ]
    assert not missing
    assert sum("--verbose" in param.opts for param in cli.commands["batch"].params) == 1


def test_verbose_counts_add_up_across_the_command_line(parse, monkeypatch) -> None:
    levels: list[int] = []
    monkeypatch.setattr(_app, "configure_logging", levels.append)
    parse(["-v", "runs", "-v", "list", "-v"])
    assert levels[-1] == 3
    levels.clear()
    parse(["run", "-c", "net.toml"])
    assert levels[-1] == 0
    levels.clear()
    parse(["run", "-vv", "-c", "net.toml"])
    assert levels[-1] == 2


def test_a_mistyped_option_is_still_a_usage_error() -> None:
    done = CliRunner().invoke(cli, ["run", "--verbsoe"])
    assert done.exit_code == 2 and "No such option" in done.output
