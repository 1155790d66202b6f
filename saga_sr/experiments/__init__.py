"""Experiments built on training and evaluation: the capacity ladder and its report."""
