"""Audio signal chain as small pure numpy/scipy functions: I/O, LR simulation, roll-off, LFR, a DSP baseline.

Arrays are float32 `[channels, samples]` with the rate passed explicitly; nothing here touches torch.
"""

from saga_sr.audio.bwe import dsp_bandwidth_extension
from saga_sr.audio.io import AUDIO_EXTENSIONS, find_audio_files, load_audio, save_audio
from saga_sr.audio.lfr import low_frequency_replace
from saga_sr.audio.lr_sim import LRResult, simulate_lr
from saga_sr.audio.spectral import Rolloff, rolloff

__all__ = [
    "AUDIO_EXTENSIONS",
    "LRResult",
    "Rolloff",
    "dsp_bandwidth_extension",
    "find_audio_files",
    "load_audio",
    "low_frequency_replace",
    "rolloff",
    "save_audio",
    "simulate_lr",
]
