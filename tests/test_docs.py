"""The documentation holds together: README.md and the pages of docs/.

Every relative link and image of README.md and docs/*.md points to a file
(or folder) of the repository and, with a ``#fragment``, to a heading of the
target page as GitHub names its anchors. Every page of docs/ is linked from
README.md or the docs index, and README.md stays a front door (under 200
lines). The configuration reference lists every section and key of
``recommender.config`` with its default, and no key the code does not know.

The link check is a function over a page's text (:func:`broken_links`), so
that it can be shown to fail on a page with broken links.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args, get_origin
from urllib.parse import unquote

import pytest
from pydantic import BaseModel

from recommender.config import Config

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
INDEX = DOCS / "README.md"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
CONFIGURATION = DOCS / "configuration.md"
#: The README is the front door; the rest belongs in docs/.
MAX_README_LINES = 200

FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n]*\n.*?^[ \t]*\1[ \t]*$", re.S | re.M)
#: A code span; it may wrap onto the next line, not across a blank one.
CODE_SPAN = re.compile(r"`(?:[^`\n]|\n(?![ \t]*\n))+`")
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^[ \t]{0,3}\[[^\]]+\]:[ \t]*<?(\S+?)>?(?:[ \t]|$)", re.M)
HTML_LINK = re.compile(r"<(?:a|img|source)\b[^>]*?\b(?:href|src)=[\"']([^\"']+)[\"']", re.I)
HTML_ANCHOR = re.compile(r"<a\b[^>]*?\b(?:id|name)=[\"']([^\"']+)[\"']", re.I)
HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$", re.M)
SCHEME = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")


def prose(text: str) -> str:
    """``text`` without its fenced code blocks, and each code span reduced to
    ``code``: what is left is where links and headings can be."""
    return CODE_SPAN.sub("`code`", FENCE.sub("", text))


def links(text: str) -> list[str]:
    """Every link and image target of a Markdown text, in order."""
    text = prose(text)
    found = [(m.start(), m.group(1)) for m in INLINE_LINK.finditer(text)]
    found += [(m.start(), m.group(1)) for m in REFERENCE.finditer(text)]
    found += [(m.start(), m.group(1)) for m in HTML_LINK.finditer(text)]
    return [target for _, target in sorted(found)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text (code spans as they
    are, links as their text, no HTML tags), lower-cased, without punctuation
    but ``-`` and ``_``, each space a ``-``."""
    parts = re.split(r"(`[^`]*`)", heading)
    for index in range(0, len(parts), 2):  # outside code spans
        text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", parts[index])
        parts[index] = re.sub(r"<[^>]+>", "", text)
    return re.sub(r"[^\w\- ]", "", "".join(parts).lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a Markdown page: one per heading (a repeated heading gets
    ``-1``, ``-2``, ... as on GitHub) and the HTML anchors it declares."""
    bare = FENCE.sub("", text)
    found: set[str] = set()
    seen: dict[str, int] = {}
    for heading in HEADING.findall(bare):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found | set(HTML_ANCHOR.findall(bare))


def broken_links(text: str, page: Path, root: Path) -> list[str]:
    """The relative links of ``text`` (the content of ``page``, a file under
    ``root``) that point to no file or folder under ``root``, or to a heading
    its Markdown target does not have; each with the reason."""
    problems = []
    for target in links(text):
        if SCHEME.match(target):
            continue  # http(s), mailto: not this test's business
        path_part, _, fragment = target.partition("#")
        path_part = unquote(path_part)
        if not path_part:  # a heading of this very page
            if fragment and unquote(fragment) not in anchors(text):
                problems.append(f"{target}: no heading #{fragment} in {page.name}")
            continue
        if path_part.startswith("/"):
            resolved = (root / path_part.lstrip("/")).resolve()
        else:
            resolved = (page.parent / path_part).resolve()
        if not resolved.is_relative_to(root.resolve()):
            problems.append(f"{target}: outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
        elif (
            fragment
            and resolved.suffix == ".md"
            and unquote(fragment) not in anchors(resolved.read_text(encoding="utf-8"))
        ):
            problems.append(f"{target}: no heading #{fragment} in {resolved.name}")
    return problems


# -- the checker itself -----------------------------------------------------------


@pytest.mark.parametrize(
    "heading, expected",
    [
        ("The HTTP service: `recommender serve`", "the-http-service-recommender-serve"),
        ("3. Incremental runs", "3-incremental-runs"),
        (
            "Performance: a million articles, incremental runs, cold start",
            "performance-a-million-articles-incremental-runs-cold-start",
        ),
        (
            "From a Python backend (Django, Flask, FastAPI)",
            "from-a-python-backend-django-flask-fastapi",
        ),
        ("`[sites.<key>]`: the site registry", "siteskey-the-site-registry"),
        (
            "Past one machine: on a [Dask](https://dask.org) cluster",
            "past-one-machine-on-a-dask-cluster",
        ),
        ("snake_case *and* emphasis", "snake_case-and-emphasis"),
    ],
)
def test_slug_is_githubs_anchor(heading: str, expected: str) -> None:
    assert slug(heading) == expected


def test_repeated_headings_and_code_blocks() -> None:
    text = '# Runs\n\n## Runs\n\n```sh\n# not a heading\n```\n\n<a id="top"></a>\n'
    assert anchors(text) == {"runs", "runs-1", "top"}


def test_broken_links_are_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## A heading\n")
    (tmp_path / "picture.png").write_bytes(b"")
    page = tmp_path / "docs" / "page.md"
    text = "\n".join(
        [
            "# Page",
            "[fine](other.md), [fine too](other.md#a-heading), [here](#page),",
            "![picture](../picture.png), [a folder](../docs/), [web](https://example.com/x.md),",
            "[missing](nope.md), [bad anchor](other.md#no-such-heading), [self](#nowhere),",
            "![no picture](picture.png), [outside](../../elsewhere.md),",
            "[ref]: missing-ref.md",
            '<img src="gone.png">',
            "```md",
            "[in a code block](not-checked.md)",
            "```",
            "`[in a code span](not-checked.md)`",
        ]
    )
    assert broken_links(text, page, tmp_path) == [
        "nope.md: no such file",
        "other.md#no-such-heading: no heading #no-such-heading in other.md",
        "#nowhere: no heading #nowhere in page.md",
        "picture.png: no such file",
        "../../elsewhere.md: outside the repository",
        "missing-ref.md: no such file",
        "gone.png: no such file",
    ]


def test_a_link_whose_text_is_code_is_still_checked(tmp_path: Path) -> None:
    text = "[`[mix.weights]`](#nowhere) and [`notebooks/`](notebooks/)"
    assert broken_links(text, tmp_path / "page.md", tmp_path) == [
        "#nowhere: no heading #nowhere in page.md",
        "notebooks/: no such file",
    ]


# -- the repository's pages ----------------------------------------------------------


def test_the_docs_pages_are_there() -> None:
    names = {page.name for page in PAGES if page.parent == DOCS}
    assert {
        "README.md",
        "serving.md",
        "operations.md",
        "ingest.md",
        "configuration.md",
        "how-it-works.md",
        "evaluation.md",
        "notebooks.md",
        "development.md",
    } <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert broken_links(text, page, REPO) == []


def test_the_readme_is_a_front_door() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < MAX_README_LINES, f"README.md has {len(lines)} lines; move text to docs/"


def test_every_docs_page_is_linked_from_the_readme_or_the_index() -> None:
    def linked_from(page: Path) -> set[Path]:
        found = set()
        for target in links(page.read_text(encoding="utf-8")):
            path_part = unquote(target.partition("#")[0])
            if path_part and not SCHEME.match(target):
                found.add((page.parent / path_part).resolve())
        return found

    from_readme = linked_from(README)
    assert INDEX.resolve() in from_readme, "README.md does not link the docs index"
    linked = from_readme | linked_from(INDEX)
    unlinked = [p.name for p in PAGES if p.parent == DOCS and p.resolve() not in linked]
    assert unlinked == []


# -- the configuration reference -------------------------------------------------------

SECTION_HEADING = re.compile(r"^#{2,3} `\[([\w.<>]+)\]`", re.M)
KEY_ROW = re.compile(r"^\|\s*`(\w+)`\s*\|\s*([^|]*?)\s*\|", re.M)


def _section_model(kind: Any) -> type[BaseModel] | None:
    """The section class of a field's annotation (``dict[str, X]`` gives X)."""
    if get_origin(kind) is dict:
        kind = get_args(kind)[1]
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def config_sections(model: type[BaseModel] = Config, prefix: str = "") -> dict[str, Any]:
    """Each TOML table of the config (``sites.<key>``, ``mix.weights``, ...) and
    its section class."""
    found = {}
    for name, field in model.model_fields.items():
        section = _section_model(field.annotation)
        if section is None:
            continue
        path = prefix + name + (".<key>" if get_origin(field.annotation) is dict else "")
        found[path] = section
        found |= config_sections(section, path + ".")
    return found


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + "}"
    raise TypeError(f"no TOML spelling for {value!r}")


def documented_default(field: Any) -> str | None:
    """A key's default as the reference spells it; None for a table of its own."""
    if field.is_required():
        return "required"
    default = field.get_default(call_default_factory=True)
    if isinstance(default, BaseModel):
        return None
    return "absent" if default is None else toml_value(default)


def reference_tables(text: str) -> dict[str, dict[str, str]]:
    """Section -> {key: default cell} of the configuration reference."""
    parts = SECTION_HEADING.split(FENCE.sub("", text))
    return {
        section: {key: cell.replace("`", "") for key, cell in KEY_ROW.findall(body)}
        for section, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def reference_problems(text: str) -> list[str]:
    """How the reference ``text`` differs from ``recommender.config``: tables
    and keys missing or unknown, defaults that are not the code's."""
    tables = reference_tables(text)
    sections = config_sections()
    problems = [f"[{name}]: not documented" for name in sections if name not in tables]
    problems += [f"[{name}]: no such table" for name in tables if name not in sections]
    for name, model in sections.items():
        if name not in tables:
            continue
        documented = tables[name]
        problems += [
            f"[{name}] {key}: not documented" for key in model.model_fields if key not in documented
        ]
        problems += [
            f"[{name}] {key}: no such key" for key in documented if key not in model.model_fields
        ]
        for key, field in model.model_fields.items():
            expected = documented_default(field)
            if key in documented and expected is not None and documented[key] != expected:
                problems.append(f"[{name}] {key}: default {documented[key]}, not {expected}")
    return problems


def test_the_configuration_reference_lists_every_key_with_its_default() -> None:
    assert reference_problems(CONFIGURATION.read_text(encoding="utf-8")) == []


def test_the_configuration_check_notices_a_wrong_reference() -> None:
    text = CONFIGURATION.read_text(encoding="utf-8")
    text = text.replace("| `keep_runs` | `5` |", "| `keep_runs` | `7` |")
    text = re.sub(
        r"^\| `min_relevance` \|.*\n", "| `min_relevence` | `0.1` | a typo |\n", text, flags=re.M
    )
    text = text.replace("## `[run]`: the batch run", "## `[runs]`: the batch run")
    assert reference_problems(text) == [
        "[run]: not documented",
        "[runs]: no such table",
        "[mix] min_relevance: not documented",
        "[mix] min_relevence: no such key",
        "[store] keep_runs: default 7, not 5",
    ]
