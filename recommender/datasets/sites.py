"""A :class:`~recommender.config.Config` for a data set's network of sites."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from recommender.config import Config, parse_config


def network_config(
    sites: Iterable[str],
    display_names: Mapping[str, str] | None = None,
    **sections: Mapping[str, Any],
) -> Config:
    """A validated config whose registry holds ``sites`` (display names from
    ``display_names``, else the key), plus any other ``sections`` such as
    ``features={"analyzer": "char_wb"}``."""
    names = display_names or {}
    data: dict[str, Any] = {
        "sites": {key: {"display_name": names.get(key, key)} for key in sorted(set(sites))}
    }
    data.update({name: dict(values) for name, values in sections.items()})
    return parse_config(data)


__all__ = ["network_config"]
