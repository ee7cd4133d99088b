"""The ``recommender`` command line: one module per subcommand.

Every module in this package registers its subcommand on the group in
``_app`` when imported; importing the package imports them all. Subcommand
modules import heavy libraries inside the command function, so that
``recommender --help`` and light commands start fast.
"""

from __future__ import annotations

import importlib
import pkgutil

from recommender.cli._app import cli, main

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["cli", "main"]
