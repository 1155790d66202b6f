"""Low-pass filter designs used by the LR simulation (as in the SAGA-SR / NVSR / ssr_eval code).

All designs are returned as second-order sections, which stay numerically stable at order 10 and a
2 kHz cutoff where the transfer-function (b, a) form does not.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import signal

FILTER_TYPES = ("cheby1", "butter", "bessel", "ellip")
ORDER_RANGE = (2, 10)  # the paper's; the one range for drawn and explicit orders (degrade, evaluate, training)
CHEBY_RIPPLE_DB = 0.1
ELLIP_RIPPLE_DB = 0.1
ELLIP_STOP_DB = 60.0


@lru_cache(maxsize=512)
def lowpass_sos(filter_type: str, order: int, cutoff_hz: float, sr: int) -> np.ndarray:
    """SOS low-pass of `filter_type` (cheby1 0.1 dB, butter, bessel, ellip 0.1/60 dB) at `cutoff_hz`."""
    nyquist = sr / 2.0
    if not 0.0 < cutoff_hz < nyquist:
        raise ValueError(f"cutoff {cutoff_hz} Hz must lie in (0, {nyquist}) Hz at {sr} Hz")
    if not ORDER_RANGE[0] <= int(order) <= ORDER_RANGE[1]:
        raise ValueError(f"filter order must be {ORDER_RANGE[0]}..{ORDER_RANGE[1]}, not {order}")
    wn = cutoff_hz / nyquist
    order = int(order)
    if filter_type == "cheby1":
        sos = signal.cheby1(order, CHEBY_RIPPLE_DB, wn, btype="low", output="sos")
    elif filter_type == "butter":
        sos = signal.butter(order, wn, btype="low", output="sos")
    elif filter_type == "bessel":
        sos = signal.bessel(order, wn, btype="low", output="sos")
    elif filter_type == "ellip":
        sos = signal.ellip(order, ELLIP_RIPPLE_DB, ELLIP_STOP_DB, wn, btype="low", output="sos")
    else:
        raise ValueError(f"unknown filter type {filter_type!r}; choose from {', '.join(FILTER_TYPES)}")
    sos.setflags(write=False)
    return sos


def zero_phase_lowpass(x: np.ndarray, sos: np.ndarray) -> np.ndarray:
    """Forward-backward (zero-phase) SOS filtering along the last axis; short clips get a shorter pad."""
    x = np.asarray(x, dtype=np.float64)
    ntaps = 2 * len(sos) + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    padlen = min(3 * ntaps, x.shape[-1] - 1)
    return signal.sosfiltfilt(np.array(sos), x, axis=-1, padlen=max(padlen, 0))  # scipy needs a writable copy
