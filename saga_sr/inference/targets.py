"""The target roll-off an evaluation gives the model: `default`, `reference` (oracle) or a fixed value.

The target roll-off is an input of the model (the user's knob, `saga-sr upsample --target-rolloff`), so every
quality number depends on which value it was given:
- `default`: what `upsample` does when the user says nothing (no target given: conditioned on
  DEFAULT_TARGET_ROLLOFF, about 19.9 kHz, and no band limit);
- `reference`: each clip's own HR reference roll-off (98.5 %, saga_sr.audio.spectral.rolloff): an oracle,
  the best the knob can give when set right, which a user without the reference cannot reproduce (a roll-off
  below the lowest target, MIN_TARGET_HZ, is given as that lowest target);
- a number: the same value for every clip, normalised 0-1 (bin / 1025) or Hz from MIN_TARGET_HZ to the
  Nyquist frequency (the upsample rule, `saga_sr.inference.bands.resolve_target_rolloff`).
Baselines take no target roll-off: their rows carry NOT_USED.
"""

from __future__ import annotations

from dataclasses import dataclass

from saga_sr.inference.bands import MIN_TARGET_HZ, resolve_target_rolloff

DEFAULT = "default"
REFERENCE = "reference"
NOT_USED = "n/a"  # the target column of systems that take no target roll-off (the baselines)


@dataclass(frozen=True)
class TargetSetting:
    """One way of choosing the target roll-off per clip; `name` is what tables and CSV print."""

    name: str
    value: float | None = None  # the fixed value as given (normalised or Hz); None for default / reference

    def resolve(self, reference_hz: float, sr: int) -> tuple[float, float]:
        """(normalised, Hz) the model is conditioned on for a clip whose HR reference rolls off at `reference_hz`.

        A reference roll-off below MIN_TARGET_HZ (a silent or sub-bass reference) is given as MIN_TARGET_HZ."""
        if self.name == REFERENCE:
            return resolve_target_rolloff(max(float(reference_hz), MIN_TARGET_HZ), sr)
        return resolve_target_rolloff(self.value, sr)

    def describe(self, sr: int = 44100) -> str:
        """A table cell: the setting and what it means."""
        if self.name == REFERENCE:
            return "reference (oracle: each clip's own HR roll-off)"
        norm, hz = resolve_target_rolloff(self.value, sr)
        return f"{self.name} ({norm:.3f} = {hz / 1000:.1f} kHz)"


def parse_target_setting(text: str | float, sr: int = 44100) -> TargetSetting:
    """`default`, `reference` or a number (bands.resolve_target_rolloff's rule); ValueError naming the bad value."""
    word = str(text).strip().lower()
    if word == DEFAULT:
        return TargetSetting(DEFAULT)
    if word == REFERENCE:
        return TargetSetting(REFERENCE)
    try:
        value = float(word)
    except ValueError:
        raise ValueError(f"{text!r} is not 'default', 'reference' or a number") from None
    resolve_target_rolloff(value, sr)  # the upsample rule's range checks
    return TargetSetting(f"{value:g}", value)


def unique_settings(settings) -> tuple[TargetSetting, ...]:
    """Settings in the order given, repeats (by name) dropped; ("default",) when none are given."""
    seen: dict[str, TargetSetting] = {}
    for s in settings or (parse_target_setting(DEFAULT),):
        s = s if isinstance(s, TargetSetting) else parse_target_setting(s)
        seen.setdefault(s.name, s)
    return tuple(seen.values())


def takes_target_rolloff(model) -> bool:
    """True when the model conditions on a target roll-off (a `target_rolloff` conditioner id the DiT reads,
    or a Fourier roll-off conditioner); otherwise every setting gives the same output."""
    ids = set(getattr(model, "cross_attn_cond_ids", ()) or ()) | set(getattr(model, "global_cond_ids", ()) or ())
    return "target_rolloff" in ids or getattr(model, "rolloff_conditioner", None) is not None
