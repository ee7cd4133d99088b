"""The fitted engine: features, neighbours, trend and the mixed lists.

:class:`Recommender` runs the stages in their one direction (features ->
similarity -> trending -> mix) over plain data and keeps what each produced,
so that analysts can look at every step and the batch can publish the lists.
It saves to and loads from one versioned artifact file.

One idea per file, imports one way (``engine`` over the rest):
:mod:`~recommender.model.stages` (fit and the stages),
:mod:`~recommender.model.update` (the incremental update),
:mod:`~recommender.model.payloads` (lists as objects and as published JSON),
:mod:`~recommender.model.cold_start` (an article the run has not seen),
:mod:`~recommender.model.persistence` (the model file),
:mod:`~recommender.model.rows` (article rows across two runs) and
:mod:`~recommender.model.engine` (the public :class:`Recommender`).
"""

from recommender.model.engine import Recommender
from recommender.model.persistence import ARTIFACT_KIND
from recommender.model.stages import ArticleScorer, category_keys, reference_time

__all__ = ["ARTIFACT_KIND", "ArticleScorer", "Recommender", "category_keys", "reference_time"]
