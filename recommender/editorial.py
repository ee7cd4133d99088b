"""Editorial rules: pins and blocks that editors set on the lists.

The rules live in a small TOML file (``[editorial] rules`` in the config)
that editors keep by hand or with ``recommender pins ...`` / ``recommender
block ...``; the batch reads it at every run, refit or not, so a change
takes effect at the next refresh at most. A block also takes effect in
serving at once: the commands copy the blocks into the store
(:func:`publish_blocks`), and :class:`recommender.serving.Recommendations`
drops blocked items from every list it serves within its
``refresh_seconds``.

The file::

    [[pin]]
    id = "pin-1"                    # set by `recommender pins add`; unique
    article = "st-0042"             # the article shown
    slot = 1                        # its position in the block, 1 = first
    site = "japantoday"             # on this site's pages (leave out: every site)
    page = "jt-0070"                # or only on this page (an article id, "site:<key>")
    start = 2026-12-01T00:00:00Z    # optional window, UTC; end is exclusive
    end = 2026-12-25T00:00:00Z
    label = "Sponsored"             # shown on the item (optional)

    [[block]]
    id = "block-1"
    article = "st-0099"             # exactly one of: article, url, tag, category
    site = "japantoday"             # from this site's lists only (leave out: every list)
    reason = "retracted"            # for the record
    start = ...                     # optional window, as for pins

``url`` is a shell-style pattern matched against the article's URL
(``https://savvytokyo.com/sponsored/*``); ``tag`` one of the article's tags;
``category`` its category label or network category key. A pinned item still
obeys the page's other rules (eligible, not blocked, readable, an allowed
site); it counts towards the per-site and per-category caps, and pins that
alone exceed a cap are kept and reported in the run's summary
(:meth:`recommender.page_rules.PinTable.report`). Standard
library only: the serving path imports this module.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recommender.errors import ConfigError
from recommender.ids import is_valid_id


class RulesError(ConfigError):
    """The editorial rules file is unreadable or a rule is invalid (names the
    file, the rule and the field)."""


#: What a block matches on; exactly one per rule.
BLOCK_TARGETS = ("article", "url", "tag", "category")
_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Pin:
    id: str
    article: str
    slot: int
    site: str | None = None
    page: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    label: str | None = None

    def active_at(self, now: datetime) -> bool:
        return _in_window(self.start, self.end, now)

    def applies_to(self, source_id: str, site: str | None) -> bool:
        """Whether the pin is on the page ``source_id`` of ``site``."""
        if self.page is not None:
            return self.page == source_id
        return self.site is None or self.site == site


@dataclass(frozen=True)
class Block:
    id: str
    article: str | None = None
    url: str | None = None
    tag: str | None = None
    category: str | None = None
    site: str | None = None
    reason: str = ""
    start: datetime | None = None
    end: datetime | None = None

    def active_at(self, now: datetime) -> bool:
        return _in_window(self.start, self.end, now)

    @property
    def target(self) -> tuple[str, str]:
        for name in BLOCK_TARGETS:
            value = getattr(self, name)
            if value is not None:
                return name, value
        raise AssertionError("a block has a target")  # checked on load

    def matches_item(self, article_id: str, url: str, category: str = "") -> bool:
        """Whether an item (as serving sees it: id, URL, category label) is
        blocked; tags are not in a served item, so a tag block never matches
        here (the batch applies it)."""
        kind, value = self.target
        if kind == "article":
            return article_id == value
        if kind == "url":
            return fnmatch.fnmatchcase(url, value)
        if kind == "category":
            return category == value
        return False


@dataclass(frozen=True)
class EditorialRules:
    """The pins and blocks of one rules file (empty when there is none)."""

    pins: tuple[Pin, ...] = ()
    blocks: tuple[Block, ...] = ()
    path: Path | None = field(default=None, compare=False)

    def __bool__(self) -> bool:
        return bool(self.pins or self.blocks)

    def active_at(self, now: datetime) -> EditorialRules:
        """The rules whose window holds ``now``."""
        return replace(
            self,
            pins=tuple(p for p in self.pins if p.active_at(now)),
            blocks=tuple(b for b in self.blocks if b.active_at(now)),
        )

    def fingerprint(self) -> str:
        """A short hash of the rules (what a list can depend on)."""
        canonical = json.dumps(_as_data(self), sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def check_sites(self, sites: Iterable[str]) -> None:
        """Raise :class:`RulesError` for a rule naming a site not in ``sites``."""
        known = set(sites)
        for kind, rules in (("pin", self.pins), ("block", self.blocks)):
            for rule in rules:
                if rule.site is not None and rule.site not in known:
                    raise RulesError(
                        f"{self.path or '<rules>'}: {kind} {rule.id!r}: site: unknown site "
                        f"{rule.site!r}; known: {sorted(known)}"
                    )

    def pins_for(self, source_id: str, site: str | None) -> list[Pin]:
        """The pins of one page, in the order they take their slots: by slot,
        a page's own pin before its site's, its site's before the network's,
        then by the file's order."""
        mine = [(i, p) for i, p in enumerate(self.pins) if p.applies_to(source_id, site)]
        specificity = lambda p: 0 if p.page else 1 if p.site else 2  # noqa: E731
        mine.sort(key=lambda ip: (ip[1].slot, specificity(ip[1]), ip[0]))
        return [p for _, p in mine]

    def rule_ids(self) -> set[str]:
        return {p.id for p in self.pins} | {b.id for b in self.blocks}

    def with_rule(self, rule: Pin | Block) -> EditorialRules:
        taken = self.rule_ids()
        if rule.id in taken:
            raise RulesError(f"{self.path or '<rules>'}: a rule with id {rule.id!r} exists")
        if isinstance(rule, Pin):
            return replace(self, pins=(*self.pins, rule))
        return replace(self, blocks=(*self.blocks, rule))

    def without(self, rule_id: str) -> EditorialRules:
        pins = tuple(p for p in self.pins if p.id != rule_id)
        blocks = tuple(b for b in self.blocks if b.id != rule_id)
        if len(pins) + len(blocks) == len(self.pins) + len(self.blocks):
            raise RulesError(f"{self.path or '<rules>'}: no rule with id {rule_id!r}")
        return replace(self, pins=pins, blocks=blocks)

    def next_id(self, kind: str) -> str:
        taken = self.rule_ids()
        n = 1
        while f"{kind}-{n}" in taken:
            n += 1
        return f"{kind}-{n}"


def _in_window(start: datetime | None, end: datetime | None, now: datetime) -> bool:
    return (start is None or start <= now) and (end is None or now < end)


# -- reading ------------------------------------------------------------------
def load_rules(path: str | Path | None) -> EditorialRules:
    """The rules of ``path``; none for None or a file that does not exist
    (the commands create it). Raises :class:`RulesError` naming the file,
    the rule and the field of anything invalid."""
    if path is None:
        return EditorialRules()
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return EditorialRules(path=path)
    except tomllib.TOMLDecodeError as error:
        raise RulesError(f"{path}: not valid TOML: {error}") from None
    except OSError as error:
        raise RulesError(f"{path}: cannot read the rules: {error.strerror}") from None
    return parse_rules(data, source=path)


def parse_rules(data: Mapping[str, Any], *, source: str | Path = "<rules>") -> EditorialRules:
    """Rules from their TOML form (a dict with ``pin`` and ``block`` arrays)."""
    unknown = sorted(set(data) - {"pin", "block"})
    if unknown:
        raise RulesError(f"{source}: unknown table(s) {unknown}; known: 'pin', 'block'")
    pins = tuple(
        _pin(entry, f"{source}: pin #{n}")
        for n, entry in enumerate(_tables(data, "pin", source), 1)
    )
    blocks = tuple(
        _block(entry, f"{source}: block #{n}")
        for n, entry in enumerate(_tables(data, "block", source), 1)
    )
    seen: set[str] = set()
    for rule_id in [p.id for p in pins] + [b.id for b in blocks]:
        if rule_id in seen:
            raise RulesError(f"{source}: rule id {rule_id!r} is used twice")
        seen.add(rule_id)
    return EditorialRules(pins, blocks, source if isinstance(source, Path) else None)


def _tables(data: Mapping[str, Any], name: str, source: str | Path) -> list[dict[str, Any]]:
    entries = data.get(name, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise RulesError(f"{source}: {name}: must be an array of tables ([[{name}]])")
    return entries


def _pin(entry: dict[str, Any], where: str) -> Pin:
    values = _fields(entry, Pin, where)
    for name in ("id", "article"):
        if name not in values:
            raise RulesError(f"{where}: {name}: missing")
    if "slot" not in values:
        raise RulesError(f"{where} ({values['id']}): slot: missing")
    slot = values["slot"]
    if isinstance(slot, bool) or not isinstance(slot, int) or not 1 <= slot <= 200:
        raise RulesError(f"{where} ({values['id']}): slot: must be a whole number 1-200")
    if "label" in values and (not values["label"] or len(values["label"]) > 40):
        raise RulesError(f"{where} ({values['id']}): label: must be 1-40 characters")
    pin = Pin(**values)
    if pin.page is not None and pin.site is not None:
        raise RulesError(f"{where} ({pin.id}): give site or page, not both")
    return pin


def _block(entry: dict[str, Any], where: str) -> Block:
    values = _fields(entry, Block, where)
    if "id" not in values:
        raise RulesError(f"{where}: id: missing")
    targets = [name for name in BLOCK_TARGETS if name in values]
    if len(targets) != 1:
        raise RulesError(
            f"{where} ({values['id']}): give exactly one of {', '.join(BLOCK_TARGETS)}"
            f" (got {', '.join(targets) or 'none'})"
        )
    return Block(**values)


_TEXT_LIMIT = 500


def _fields(entry: dict[str, Any], kind: type, where: str) -> dict[str, Any]:
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise RulesError(f"{where}: unknown field(s) {unknown}; known: {sorted(known)}")
    values: dict[str, Any] = {}
    rule = entry.get("id", "?")
    for name, value in entry.items():
        at = f"{where} ({rule}): {name}"
        if name in ("start", "end"):
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise RulesError(
                    f"{at}: must be a date-time with a time zone (2026-12-01T00:00:00Z)"
                )
            values[name] = value.astimezone(UTC)
        elif name == "slot":
            values[name] = value
        elif not isinstance(value, str) or len(value) > _TEXT_LIMIT:
            raise RulesError(f"{at}: must be text (at most {_TEXT_LIMIT} characters)")
        else:
            values[name] = value
    if "id" in values and not _RULE_ID.match(values["id"]):
        raise RulesError(f"{where}: id: {values['id']!r} must be letters, digits, '.', '_', '-'")
    for name in ("article", "site"):
        if name in values and not is_valid_id(values[name]):
            raise RulesError(f"{where} ({rule}): {name}: {values[name]!r} is not a valid id")
    if "page" in values and not is_valid_id(values["page"]):
        raise RulesError(f"{where} ({rule}): page: {values['page']!r} is not a valid page id")
    if values.get("start") and values.get("end") and values["end"] <= values["start"]:
        raise RulesError(f"{where} ({rule}): end: must be after start")
    return values


# -- writing ------------------------------------------------------------------
def _as_data(rules: EditorialRules) -> dict[str, list[dict[str, Any]]]:
    def plain(rule: Pin | Block) -> dict[str, Any]:
        return {f.name: v for f in fields(rule) if (v := getattr(rule, f.name)) not in (None, "")}

    data: dict[str, list[dict[str, Any]]] = {}
    if rules.pins:
        data["pin"] = [plain(p) for p in rules.pins]
    if rules.blocks:
        data["block"] = [plain(b) for b in rules.blocks]
    return data


def _toml_value(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    escaped = "".join(
        "\\\\"
        if c == "\\"
        else '\\"'
        if c == '"'
        else f"\\u{ord(c):04x}"
        if ord(c) < 0x20 or ord(c) == 0x7F
        else c
        for c in str(value)
    )
    return f'"{escaped}"'  # a TOML basic string, in UTF-8


def dumps_rules(rules: EditorialRules) -> str:
    """The rules as TOML (what :func:`load_rules` reads back equal)."""
    lines = [
        "# Editorial rules: pins and blocks (see `recommender pins --help`,",
        "# `recommender block --help` and docs/editorial.md).",
    ]
    for kind, entries in _as_data(rules).items():
        for entry in entries:
            lines += ["", f"[[{kind}]]"]
            lines += [f"{name} = {_toml_value(value)}" for name, value in entry.items()]
    return "\n".join(lines) + "\n"


def save_rules(rules: EditorialRules, path: str | Path) -> None:
    """Write the rules to ``path`` atomically (the old file stays whole
    until the new one is complete)."""
    path = Path(path)
    text = dumps_rules(rules)
    parse_rules(tomllib.loads(text), source=path)  # never write what cannot be read
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, path)


# -- serving's copy of the blocks ------------------------------------------------
def blocks_payload(rules: EditorialRules) -> str:
    """The blocks serving enforces, as the JSON the store keeps."""
    return json.dumps(_as_data(replace(rules, pins=())).get("block", []), default=_iso)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    raise TypeError(type(value).__name__)


def blocks_from_payload(payload: str | None) -> tuple[Block, ...]:
    """The blocks of :func:`blocks_payload`'s JSON (none for None)."""
    if not payload:
        return ()
    return rules_from_json({"block": json.loads(payload)}, source="<store>").blocks


def rules_to_json(rules: EditorialRules) -> dict[str, Any]:
    """The rules as plain JSON values (times as ISO 8601 text)."""
    return json.loads(json.dumps(_as_data(rules), default=_iso))


def rules_from_json(data: Mapping[str, Any], *, source: str = "<rules>") -> EditorialRules:
    """The rules of :func:`rules_to_json`'s form."""
    parsed: dict[str, Any] = {}
    for kind in ("pin", "block"):
        entries = []
        for entry in data.get(kind, []):
            entry = dict(entry)
            for name in ("start", "end"):
                if isinstance(entry.get(name), str):
                    entry[name] = datetime.fromisoformat(entry[name])
            entries.append(entry)
        parsed[kind] = entries
    return parse_rules(parsed, source=source)


def drop_blocked(
    items: Sequence[Any], blocks: Sequence[Block], site: str | None, now: datetime
) -> tuple[Any, ...] | None:
    """``items`` (with ``article_id``, ``url``, ``category``) without those a
    block active at ``now`` drops from a list of ``site``'s page; None when
    none is dropped."""
    active = [b for b in blocks if b.active_at(now) and (b.site is None or b.site == site)]
    if not active:
        return None
    kept = tuple(
        item
        for item in items
        if not any(b.matches_item(item.article_id, item.url, item.category) for b in active)
    )
    return kept if len(kept) < len(items) else None


__all__ = [
    "BLOCK_TARGETS",
    "Block",
    "EditorialRules",
    "Pin",
    "RulesError",
    "blocks_from_payload",
    "blocks_payload",
    "drop_blocked",
    "dumps_rules",
    "load_rules",
    "parse_rules",
    "rules_from_json",
    "rules_to_json",
    "save_rules",
]
