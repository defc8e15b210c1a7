"""The numeric setting of a run: float32 programs scored in ULPs, or real-number (float64) programs
scored by relative error. One value carries the dtype, the metric, its unit and its formatter."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Setting:
    """How programs compute and how their error is measured and shown."""

    mode: str  # the config's spelling: "float32" or "real"
    dtype: str  # "float32" or "float64"
    metric: str  # "ulp" or "rel" (the metric field of scores)
    unit: str  # how an error is named in text: "ULP" or "relative"
    exhaustive_mining: bool  # hard points come from an exhaustive float32 sweep

    def format(self, value: float | None, digits: int = 4) -> str:
        """An error with its unit, "-" when there is none."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return f"{value:.{digits}g} {'ULP' if self.metric == 'ulp' else 'rel'}"


FLOAT32 = Setting("float32", "float32", "ulp", "ULP", exhaustive_mining=True)
REAL = Setting("real", "float64", "rel", "relative", exhaustive_mining=False)
SETTINGS = {s.mode: s for s in (FLOAT32, REAL)}


def setting_for(mode: str) -> Setting:
    """The setting of a config mode (``float32`` or ``real``)."""
    try:
        return SETTINGS[mode]
    except KeyError:
        raise ValueError(f"unknown mode {mode!r} (float32 or real)") from None


def setting_of_metric(metric: str) -> Setting:
    """The setting whose scores carry ``metric`` (``ulp`` or ``rel``)."""
    return FLOAT32 if metric == "ulp" else REAL
