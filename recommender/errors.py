"""Typed errors, each with a message a user can act on.

The batch command maps them to distinct exit codes (see ``recommender.cli``).
"""

from __future__ import annotations


class RecommenderError(Exception):
    """Base class of the errors this package raises on purpose."""


class ConfigError(RecommenderError):
    """The TOML config is missing, unreadable or invalid (names file and field)."""


class SchemaError(RecommenderError):
    """An input file cannot be used at all (names the file and what is wrong).

    Single bad rows are not errors: they are rejected and reported, and the
    good rows go on.
    """


class InputError(RecommenderError):
    """The input as a whole is not fit to publish from (e.g. no valid articles,
    or too many rejected rows)."""


class ArtifactError(RecommenderError):
    """A saved model file is damaged, truncated or from another version."""


class NotFittedError(RecommenderError, RuntimeError):
    """A result was asked of a model that has not been fitted (or loaded) yet."""


class UnknownArticleError(RecommenderError, KeyError):
    """A model was asked for the list of an article id it has no list for."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""


class UnknownSiteError(RecommenderError, ValueError):
    """A site key that is not in the network's registry."""


class StoreError(RecommenderError):
    """The recommendation store is unreachable or not a store of this package."""


class ClusterError(RecommenderError):
    """The Dask cluster a run was pointed at is unreachable, has no workers, or
    lost what it could not recompute (names the scheduler's address)."""
