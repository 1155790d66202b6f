"""Inference: time grids (schedules), the Euler sampler, two-scale CFG (guidance), long-audio windows,
the waveform -> waveform Upsampler (pipeline) and a model as plain array functions (adapters)."""
