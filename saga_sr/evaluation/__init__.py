"""Evaluation: the test-set evaluation run (`evaluate`), the perceptual score and the statistics (`stats`) its
tables use. The metrics themselves are `saga_sr.audio.metrics` (training's validation scores with them too).

Submodules are imported where used, so importing this package stays cheap.
"""
