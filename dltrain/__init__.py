"""dltrain: declarative, config-driven training of deep-learning models."""

__version__ = "0.1.0"
