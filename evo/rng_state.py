"""A PCG64 generator's state as a frozen value (what a frozen search state holds, not a live generator)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RngState:
    """The four numbers of numpy's ``PCG64.state`` (checked by the caller when read from a file)."""

    state: int
    inc: int
    has_uint32: int = 0
    uinteger: int = 0

    @staticmethod
    def of(generator: np.random.Generator) -> RngState:
        """Where ``generator`` is now."""
        return RngState.from_dict(generator.bit_generator.state)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> RngState:
        inner = data["state"]
        return RngState(inner["state"], inner["inc"], data["has_uint32"], data["uinteger"])

    def to_dict(self) -> dict[str, Any]:
        """numpy's ``bit_generator.state``, key for key (checkpoints hold it so)."""
        return {
            "bit_generator": "PCG64",
            "state": {"state": self.state, "inc": self.inc},
            "has_uint32": self.has_uint32,
            "uinteger": self.uinteger,
        }

    def generator(self) -> np.random.Generator:
        """A new live generator at this state (drawing from it leaves this value as it is)."""
        generator = np.random.Generator(np.random.PCG64(0))
        generator.bit_generator.state = self.to_dict()
        return generator


class Draws:
    """Draws against frozen ``RngState`` values through one live generator, kept while each draw
    starts at the value the last one left (rebuilding a generator per draw would cost more)."""

    def __init__(self) -> None:
        self._generator: np.random.Generator | None = None
        self._at: RngState | None = None

    def draw(self, start: RngState, function: Callable[[np.random.Generator], T]) -> tuple[T, RngState]:
        """``function``'s result on a generator at ``start``, and the value the generator is left at."""
        if self._generator is None or self._at is not start:
            self._generator = start.generator()
        result = function(self._generator)
        self._at = RngState.of(self._generator)
        return result, self._at
