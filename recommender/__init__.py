"""recommender: a cross-site content recommendation engine for publisher networks.

The package root stays light on purpose: a web backend imports
``recommender.serving`` without pulling in scikit-learn, scipy or pandas.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
