"""One TOML file holds the site registry and every knob of the engine.

Relative paths in the file (input data, store, model artifact) are resolved
against the folder of the config file, so a run gives the same result from
any working directory. Every field has a default that serves the bundled
sample except the site registry, which a network must describe.

Example::

    [sites.savvytokyo]
    display_name = "Savvy Tokyo"
    url = "https://savvytokyo.com"
    category_map = { "Food & Drink" = "food" }

    [mix]
    k = 12
    max_per_site = 4
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, TypeGuard, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from recommender import tokenize_ja
from recommender.errors import ConfigError

_SITE_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


class _Section(BaseModel):
    # Unknown keys are errors: a typo in a knob must not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteConfig(_Section):
    """One site of the network.

    ``category_map`` maps the site's own category labels to network-wide
    category keys, so that "Food & Drink" on one site and "Food" on another
    count as the same category for features and caps. Labels without an entry
    stay site-specific.

    ``languages``: the languages this site's pages show (default: its own
    ``language``); an article in another language is never in its lists.
    ``avoid_categories``: network category keys (or labels) of pages on
    which this site's articles must never appear (brand safety).
    """

    display_name: str = Field(min_length=1)
    url: str = ""
    language: str = "en"
    categories: list[str] = Field(default_factory=list)
    category_map: dict[str, str] = Field(default_factory=dict)
    languages: list[str] = Field(default_factory=list)
    avoid_categories: list[str] = Field(default_factory=list)
    default_image_url: str = ""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("default_image_url")
    @classmethod
    def _image_url(cls, value: str) -> str:
        if value and not re.match(r"^https?://[^/\s]+\S*$", value):
            raise ValueError(f"must be an absolute http(s) URL or empty, got {value!r}")
        return value


class DataConfig(_Section):
    """Input files: CSV, JSONL or Parquet (optionally gzip-compressed)."""

    articles: list[Path] = Field(default_factory=list)
    events: list[Path] = Field(default_factory=list)


class FeaturesConfig(_Section):
    """Parameters of :class:`recommender.features.ArticleVectorizer`.

    ``ja_analyzer``: how Japanese articles (``language = "ja"``, or their
    site's) are read, in their own block of columns: ``"char"`` character
    2-3-grams (the default: on livedoor they keep more same-site neighbours,
    share 0.877 against 0.832 for either word tokeniser, 0.789 against 0.750
    with boilerplate removed), ``"fugashi"`` or ``"sudachi"`` words (the
    ``ja`` extra; about 1.8x faster). The other settings of the text
    (``analyzer``, ``ngram_range``, ``stop_words``) are those of every other
    language.
    """

    title_weight: NonNegativeFloat = 1.0
    body_weight: NonNegativeFloat = 1.0
    category_weight: NonNegativeFloat = 0.5
    analyzer: Literal["word", "char", "char_wb"] = "word"
    ngram_range: tuple[int, int] = (1, 1)
    min_df: int = Field(default=1, ge=1)
    max_df: float = Field(default=0.5, gt=0, le=1)
    max_features: int | None = Field(default=None, ge=1)
    stop_words: Literal["english"] | None = "english"
    sublinear_tf: bool = True
    ja_analyzer: Literal["char", "fugashi", "sudachi"] = "char"

    @field_validator("ja_analyzer")
    @classmethod
    def _tokenizer_installed(cls, value: str) -> str:
        if value != "char" and not tokenize_ja.available(value):
            raise ValueError(
                f"ja_analyzer = {value!r} needs the {value} tokenizer, which is not installed: "
                "install the ja extra: pip install 'recommender[ja]' (or use \"char\")"
            )
        return value

    @field_validator("ngram_range")
    @classmethod
    def _ngram_order(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= value[0] <= value[1]:
            raise ValueError(f"must be [min, max] with 1 <= min <= max, got {list(value)}")
        return value


class SimilarityConfig(_Section):
    """Cross-site neighbours.

    ``k`` neighbours per article, each more similar than ``min_similarity``.
    ``allowed`` maps a source site to the sites its pages may recommend; a
    site not listed may recommend every *other* site. ``None`` (the default)
    allows every cross-site pair. ``max_block_mb``: memory of the score blocks
    in flight, in MiB. ``kernel``: the sparse product (``auto``: the fastest
    available, Numba's fused kernel, else MKL when installed, else SciPy;
    see :mod:`recommender.kernels`). ``n_jobs``:
    threads (< 1: one per core). ``reserve``: neighbours kept beyond the
    ``k`` (not shown) so that an update can replace the ones it loses
    (changed or removed articles) without recomputing the list.
    """

    k: int = Field(default=30, ge=1, le=1000)
    reserve: int = Field(default=10, ge=0, le=1000)
    min_similarity: NonNegativeFloat = 0.02
    allowed: dict[str, list[str]] | None = None
    max_block_mb: PositiveFloat = 256.0
    kernel: Literal["auto", "numba", "mkl", "scipy"] = "auto"
    n_jobs: int = -1


class TrendingConfig(_Section):
    """Time-decayed, smoothed popularity and click-through rates
    (see :mod:`recommender.trending`).

    ``half_life_hours``: an event (view, impression, click) this many hours
    old counts half as much as one now. ``prior_views``: strength of the
    smoothing of view rates, in views; an article's view rate is pulled
    toward the network's mean rate as if it had this many extra views at
    that rate. ``prior_impressions``: the same for click-through rates, in
    impressions at the network's current CTR; impressions without a click
    count against an article. ``freshness``: judge each article's clicks
    against the CTR the network gives articles of the same age today, so a
    new article starts where new articles stand. The last two only act on
    logs with impressions and clicks; a log of views only scores as before.

    ``autotune``: at each refit on a log with impressions, fit the CTR prior
    to the log (empirical Bayes) and choose the half-life and freshness by a
    back-test on its last ``autotune_holdout_hours`` (see
    :mod:`recommender.autotune`); with fewer than
    ``autotune_min_clicked_impressions`` clicked impressions there, a
    setting that measured level with a smoothed CTR (freshness off, 96 h,
    the fitted prior). Updates keep the refit's choice. A log of views only
    keeps the settings above.
    """

    half_life_hours: PositiveFloat = 24.0
    prior_views: PositiveFloat = 20.0
    prior_impressions: PositiveFloat = 100.0
    freshness: bool = True
    k: int = Field(default=50, ge=1)
    autotune: bool = True
    autotune_holdout_hours: PositiveFloat = 24.0
    autotune_min_clicked_impressions: int = Field(default=200, ge=1)


class Weights(_Section):
    relevance: NonNegativeFloat = 0.45
    trend: NonNegativeFloat = 0.4
    freshness: NonNegativeFloat = 0.15

    @model_validator(mode="after")
    def _some_weight(self) -> Weights:
        if self.relevance + self.trend + self.freshness <= 0:
            raise ValueError("at least one of relevance, trend, freshness must be > 0")
        return self


class MixConfig(_Section):
    """The final lists.

    ``k`` items per list; at most ``max_per_site`` from one site and
    ``max_per_category`` from one category; titles at least
    ``dedupe_threshold`` similar count as near-duplicates (cosine of
    character 3-grams); articles older than ``max_age_days`` or unpublished are
    never shown. Freshness halves every ``freshness_half_life_days``. An item
    counts as "related" when its relevance is at least ``min_relevance``.
    ``trending_pool``: how many of the network's trending articles compete
    with each page's neighbours.

    Page types: every article gets its list, every site a home-page list
    (``site:<key>``). ``section_pages``: every site also gets a list per
    category label its articles carry (``section:<key>:<label>``), ranked
    by relevance to the section's articles and trend. ``related_lists``:
    every article also gets a related-only list (``related:<id>``: its
    candidates by relevance alone, none below ``min_relevance``), for
    placements with ``source = "related"``; it doubles the mixing work.
    """

    k: int = Field(default=12, ge=1, le=200)
    weights: Weights = Field(default_factory=Weights)
    max_per_site: int = Field(default=5, ge=1)
    max_per_category: int = Field(default=3, ge=1)
    max_age_days: PositiveFloat = 90.0
    freshness_half_life_days: PositiveFloat = 7.0
    dedupe_threshold: float = Field(default=0.7, gt=0, le=1)
    min_relevance: NonNegativeFloat = 0.1
    trending_pool: int = Field(default=60, ge=0)
    section_pages: bool = True
    related_lists: bool = False


class EditorialConfig(_Section):
    """``[editorial]``: where the editors' pins and blocks are kept (see
    :mod:`recommender.editorial`). Read at every run; not part of the
    model's settings, so a change never forces a refit."""

    rules: Path | None = None


class PlacementConfig(_Section):
    """How one placement (``data-recommender-placement``) shows its block.

    ``layout``: ``text`` (the seed page's list of labels, titles and sites),
    ``grid`` (thumbnails in ``columns`` columns) or ``sidebar`` (a vertical
    list with small thumbnails). ``k``: items shown (``None``: the request's
    or the service's default). ``columns``: the grid's columns on a wide
    screen (fewer on a narrow one). ``source``: which list the block shows:
    ``mix`` (the page's own list: an article's, a section's or the home
    page's), ``trending`` (the site's trending mix, whatever the page) or
    ``related`` (the article's related-only list; needs ``[mix]
    related_lists``).
    """

    layout: Literal["text", "grid", "sidebar"] = "text"
    k: int | None = Field(default=None, ge=1, le=200)
    columns: int = Field(default=3, ge=1, le=6)
    source: Literal["mix", "trending", "related"] = "mix"


_VARIANT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class ExperimentConfig(_Section):
    """``[experiments.<name>]``: an A/B test on one placement (see
    :mod:`recommender.experiments`). ``variants``: name -> share of page
    views (the first is the control unless ``control`` names another);
    ``planned_impressions``: impressions per variant the test was sized for
    (a report before it warns that it is a peek)."""

    placement: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    variants: dict[str, PositiveFloat]
    planned_impressions: int = Field(default=10_000, ge=1)
    control: str | None = None
    mix: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _two_variants(self) -> ExperimentConfig:
        if len(self.variants) < 2:
            raise ValueError("an experiment needs at least 2 variants")
        if self.control is not None and self.control not in self.variants:
            raise ValueError(f"control {self.control!r} is not one of the variants")
        bad = [name for name in self.variants if not _VARIANT_NAME.match(name)]
        if bad:
            raise ValueError(f"variant {bad[0]!r}: use letters, digits, '_', '.' or '-'")
        unknown = [name for name in self.mix if name not in self.variants]
        if unknown:
            raise ValueError(f"mix.{unknown[0]}: not one of the variants {list(self.variants)}")
        if self.control_variant in self.mix:
            raise ValueError(
                f"mix.{self.control_variant}: the control shows the [mix] lists; "
                "give settings to the other variants"
            )
        return self

    @property
    def control_variant(self) -> str:
        return self.control if self.control is not None else next(iter(self.variants))

    def variant_mix(self, base: MixConfig, variant: str) -> MixConfig:
        """``base`` with the variant's ``[experiments.<name>.mix.<variant>]``."""
        merged = base.model_dump()
        for key, value in self.mix.get(variant, {}).items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        return MixConfig.model_validate(merged)


class StoreConfig(_Section):
    """Where the lists are published. ``url``: ``sqlite:///relative/path``,
    ``sqlite:////absolute/path`` or a plain file path. ``keep_runs``: how many
    published runs are kept for rollback. ``model_path``: where the fitted
    model artifact is written (optional). ``compact_fraction``: a run that
    updates the saved model writes only its changed lists, as a layer over
    the last full run, until the layer would hold more than this fraction of
    that run's lists; then it writes every list."""

    url: str = "sqlite:///recommendations.sqlite"
    keep_runs: int = Field(default=5, ge=1)
    model_path: Path | None = None
    compact_fraction: float = Field(default=0.25, ge=0, le=1)


class RunConfig(_Section):
    """``now``: the run's reference time for decay and freshness (ISO 8601 with
    a UTC offset); absent means the current time. ``max_rejected_fraction``: a
    run whose inputs reject more than this fraction of rows fails instead of
    publishing lists built from a broken export. ``cluster``: compute the
    neighbours and lists on a Dask cluster (see :mod:`recommender.distributed`)
    instead of in this process: a scheduler's address (``tcp://host:8786``) or
    ``local:N`` for N worker processes on this machine; absent means no cluster.
    ``cluster_timeout_seconds``: how long to wait for the scheduler to answer
    and for its first worker before the run fails. ``refit_after_hours``:
    with ``store.model_path`` set, a run *updates* the saved model instead of
    refitting it while its vocabulary is younger than this (new and changed
    articles are transformed, only the lists they affect are recomputed and
    only changed lists are written); absent means every run refits."""

    now: datetime | None = None
    max_rejected_fraction: float = Field(default=0.2, ge=0, le=1)
    cluster: str | None = None
    cluster_timeout_seconds: PositiveFloat = 30.0
    refit_after_hours: PositiveFloat | None = None

    @field_validator("cluster")
    @classmethod
    def _cluster_address(cls, value: str | None) -> str | None:
        return None if value is None else validate_cluster_address(value)

    @field_validator("now")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2021-03-08T00:00:00Z")
        return value


_LOCAL_CLUSTER = re.compile(r"^local:(\d+)$")
_SCHEDULER_ADDRESS = re.compile(
    r"^(?:(?:tcp|tls|ws|wss|ucx)://)?(?:[^\s:/\[\]]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$"
)


def validate_cluster_address(value: str) -> str:
    """``value`` if it names a Dask cluster: ``local:N`` (N >= 1 worker
    processes on this machine) or a scheduler's address, ``host:port`` or
    ``scheme://host:port`` (scheme tcp, tls, ws, wss or ucx); else ValueError."""
    local = _LOCAL_CLUSTER.match(value)
    if local:
        if int(local.group(1)) < 1:
            raise ValueError(f"{value!r}: a local cluster needs at least 1 worker, e.g. local:2")
        return value
    if not _SCHEDULER_ADDRESS.match(value):
        raise ValueError(
            f"{value!r} is not a Dask scheduler address: expected local:N, host:port "
            "or tcp://host:port"
        )
    return value


def local_cluster_workers(address: str) -> int | None:
    """N of a ``local:N`` cluster address; None for a scheduler's address."""
    local = _LOCAL_CLUSTER.match(address)
    return int(local.group(1)) if local else None


def allowed_site_pairs(
    site_keys: Sequence[str], allowed: Mapping[str, Sequence[str]] | None
) -> dict[str, list[str]]:
    """For each of ``site_keys``, the sites its pages may recommend: those
    ``allowed`` lists for it (its own site only when listed explicitly),
    else every *other* site. The one place this rule is written."""
    explicit = allowed or {}
    return {
        site: list(explicit[site]) if site in explicit else [s for s in site_keys if s != site]
        for site in site_keys
    }


class Config(_Section):
    """The whole configuration. Build it with :func:`load_config`."""

    sites: dict[str, SiteConfig]
    data: DataConfig = Field(default_factory=DataConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    similarity: SimilarityConfig = Field(default_factory=SimilarityConfig)
    trending: TrendingConfig = Field(default_factory=TrendingConfig)
    mix: MixConfig = Field(default_factory=MixConfig)
    placements: dict[str, PlacementConfig] = Field(default_factory=dict)
    experiments: dict[str, ExperimentConfig] = Field(default_factory=dict)
    store: StoreConfig = Field(default_factory=StoreConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    editorial: EditorialConfig = Field(default_factory=EditorialConfig)

    @field_validator("sites")
    @classmethod
    def _site_keys(cls, sites: dict[str, SiteConfig]) -> dict[str, SiteConfig]:
        if len(sites) < 2:
            raise ValueError("a network needs at least 2 sites to recommend across")
        for key in sites:
            if not _SITE_KEY.match(key):
                raise ValueError(f"site key {key!r} must be lower-case letters, digits, '-' or '_'")
        return sites

    @model_validator(mode="after")
    def _known_sites(self) -> Config:
        allowed = self.similarity.allowed or {}
        for source, targets in allowed.items():
            unknown = [s for s in [source, *targets] if s not in self.sites]
            if unknown:
                raise ValueError(
                    f"similarity.allowed.{source}: unknown site(s) {unknown}; "
                    f"known: {sorted(self.sites)}"
                )
        placements = [e.placement for e in self.experiments.values()]
        twice = sorted({p for p in placements if placements.count(p) > 1})
        if twice:
            raise ValueError(f"experiments: placement {twice[0]!r} has more than one experiment")
        for name, experiment in self.experiments.items():
            for variant in experiment.mix:
                try:
                    experiment.variant_mix(self.mix, variant)
                except ValueError as error:
                    raise ValueError(f"experiments.{name}.mix.{variant}: {error}") from None
        related = [key for key, p in self.placements.items() if p.source == "related"]
        if related and not self.mix.related_lists:
            raise ValueError(
                f"placements.{related[0]}.source = 'related' needs related-only lists: "
                "set [mix] related_lists = true"
            )
        return self

    # -- derived views -------------------------------------------------------
    def allowed_pairs(self) -> dict[str, list[str]]:
        """For each site, the sites its pages may recommend (see
        :func:`allowed_site_pairs`)."""
        return allowed_site_pairs(list(self.sites), self.similarity.allowed)

    def config_hash(self) -> str:
        """A short hash of every setting, recorded with each run."""
        return _short_hash(self.model_dump(mode="json"))

    def model_parameters(self) -> dict[str, Any]:
        """The settings that change a list: the sites (names and allowed
        pairs), features, similarity (but not how it is computed: its
        kernel, threads and block size), trending and mix, with the version
        of the rules that turn them into lists (:data:`LIST_RULES`). Not the
        data files, the store, the run's own settings (cluster, refits,
        limits)."""
        dumped = self.model_dump(mode="json")
        similarity = {
            key: value
            for key, value in dumped["similarity"].items()
            if key not in _HOW_SIMILARITY_IS_COMPUTED
        }
        return {
            "rules": LIST_RULES,
            "sites": dumped["sites"],
            "features": dumped["features"],
            "similarity": similarity,
            "trending": dumped["trending"],
            "mix": dumped["mix"],
            # Only when a variant has lists of its own (so that other hashes stay as they were).
            **(
                {
                    "experiments": {
                        name: e["mix"] for name, e in dumped["experiments"].items() if e["mix"]
                    }
                }
                if any(e.mix for e in self.experiments.values())
                else {}
            ),
        }

    def model_hash(self) -> str:
        """A short hash of :meth:`model_parameters`: part of the model's
        version, and what decides whether a saved model can be updated."""
        return _short_hash(self.model_parameters())


#: The version of the rules that turn settings into lists, bumped when the code
#: changes the lists the same settings give (part of :meth:`Config.model_hash`,
#: so that a model saved before is refitted, never updated with rows of both):
#: 2 = sublinear tf of the field-weighted counts (2026-12).
LIST_RULES = 2

#: Similarity settings that change how fast the lists are computed, not what they are.
_HOW_SIMILARITY_IS_COMPUTED = frozenset({"kernel", "n_jobs", "max_block_mb"})


def _short_hash(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _format_validation_error(path: Path | str, error: ValidationError) -> str:
    lines = [f"{path}: invalid configuration ({error.error_count()} problem(s))"]
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            message = _unknown_key_message(problem["loc"])
        lines.append(f"  {location}: {message}")
    return "\n".join(lines)


def _unknown_key_message(loc: tuple[int | str, ...]) -> str:
    """``unknown key; did you mean 'half_life_hours'?`` (or the keys the
    section knows, when none is close) for an extra key at ``loc``."""
    known = _known_keys(loc[:-1])
    if not known:
        return "unknown key"
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return f"unknown key; known keys: {', '.join(known)}"


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys of the section at ``loc`` (e.g. ``("trending",)``,
    ``("sites", "savvytokyo")``, ``("mix", "weights")``); [] when unknown."""
    kind: Any = Config
    for part in loc:
        kind = _unwrap_optional(kind)
        if get_origin(kind) is dict:  # a table of sections: ``part`` is its key
            kind = get_args(kind)[1]
        elif _is_section(kind) and str(part) in kind.model_fields:
            kind = kind.model_fields[str(part)].annotation
        else:
            return []
    kind = _unwrap_optional(kind)
    return list(kind.model_fields) if _is_section(kind) else []


def _is_section(kind: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


def _unwrap_optional(kind: Any) -> Any:
    """``X`` for ``X | None``; anything else as it is."""
    args = [arg for arg in get_args(kind) if arg is not type(None)]
    if get_origin(kind) in (Union, UnionType) and len(args) == 1:
        return args[0]
    return kind


def parse_config(
    data: dict[str, Any], *, base_dir: Path | None = None, source: str = "<config>"
) -> Config:
    """Validate a config given as a dict (as read from TOML).

    Relative paths are resolved against ``base_dir`` when given.
    """
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(source, error)) from None
    if base_dir is None:
        return config
    return _resolve_paths(config, base_dir)


def _resolve_paths(config: Config, base_dir: Path) -> Config:
    def resolve(path: Path) -> Path:
        return path if path.is_absolute() else (base_dir / path).resolve()

    data = config.data.model_copy(
        update={
            "articles": [resolve(p) for p in config.data.articles],
            "events": [resolve(p) for p in config.data.events],
        }
    )
    store_update: dict[str, Any] = {"url": resolve_store_url(config.store.url, base_dir)}
    if config.store.model_path is not None:
        store_update["model_path"] = resolve(config.store.model_path)
    store = config.store.model_copy(update=store_update)
    update: dict[str, Any] = {"data": data, "store": store}
    if config.editorial.rules is not None:
        update["editorial"] = config.editorial.model_copy(
            update={"rules": resolve(config.editorial.rules)}
        )
    return config.model_copy(update=update)


def resolve_store_url(url: str, base_dir: Path) -> str:
    """Make a relative SQLite path in a store URL absolute (against ``base_dir``)."""
    if "://" not in url:
        path = Path(url)
    elif url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
    else:
        return url  # a server URL: nothing to resolve
    if not path.is_absolute():
        path = (base_dir / path).resolve()
    return f"sqlite:///{path}"


#: How the ``recommender`` command finds its config, for a message about a missing one.
HOW_TO_PASS_A_CONFIG = (
    "pass one with -c PATH (or --config PATH), set $RECOMMENDER_CONFIG, or put a "
    "recommender.toml in the current folder; data/sample.toml in the repository is a "
    "commented example"
)


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file; raise :class:`ConfigError` naming
    the file and each bad field."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found; {HOW_TO_PASS_A_CONFIG}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config: {error.strerror}") from None
    return parse_config(data, base_dir=path.resolve().parent, source=str(path))
