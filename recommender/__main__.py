"""``python -m recommender``: the ``recommender`` command (see :mod:`recommender.cli`)."""

from recommender.cli import main

if __name__ == "__main__":
    main()
