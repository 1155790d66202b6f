"""Evaluation: objective metrics (`metrics`), the test-set evaluation run and its plots.

Submodules are imported where used, so importing this package stays cheap.
"""
