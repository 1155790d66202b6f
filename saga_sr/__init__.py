"""SAGA-SR: semantically and acoustically guided audio super-resolution."""

__version__ = "0.1.0"
