"""Experiments built on training and evaluation: the seeds' capacity ladder and its report."""
