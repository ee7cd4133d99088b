"""``python -m recommender.cli``: the ``recommender`` command."""

from recommender.cli import main

if __name__ == "__main__":
    main()
