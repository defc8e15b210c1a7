"""An on-disk cache of the refined classical seeds (and the minimax fallbacks scored on the final
set): the exchange reads the final set and costs seconds per op count, and a resumed run, a
restart or a second run on the same sets asks again."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from primitives.jsonform import from_dict, to_dict
from primitives.program import Program
from targets.reference import default_cache_dir

# the seeds are a function of the point sets, the settings and this code: a change to any of
# these modules (or the shipped anchors) is a new key, never a stale entry
_SOURCES = (
    ("evo", "classical.py"),
    ("evo", "minimax.py"),
    ("evo", "roundingbudget.py"),
    ("evo", "lattice.py"),
    ("evo", "exchange.py"),
    ("evo", "assemble.py"),
    ("primitives", "interp.py"),
    ("targets", "data/anchors.json"),
)

Reserve = tuple[tuple[Program, float], ...]
Seeds = tuple[tuple[Program, ...], Reserve, Reserve]  # seeds, refined reserve, fallbacks


def _code_digest() -> str:
    digest = hashlib.blake2b(digest_size=12)
    for package, name in _SOURCES:
        digest.update(resources.files(package).joinpath(name).read_bytes())
    return digest.hexdigest()


def cached_seeds(parts: tuple, compute: Callable[[], Seeds], cache_dir: Path | None = None) -> Seeds:
    """``compute()`` through a JSON file keyed by ``parts`` (strings and numbers) and the code.
    A corrupt or unreadable file is ignored and rewritten; a read-only cache only costs time. A
    file without fallbacks (written before they were kept) reads as having none."""
    directory = (default_cache_dir() if cache_dir is None else Path(cache_dir)) / "seeds"
    key = hashlib.blake2b(json.dumps([_code_digest(), *parts]).encode(), digest_size=16).hexdigest()
    path = directory / f"{key}.json"
    try:
        data = json.loads(path.read_text())
        programs = tuple(from_dict(p) for p in data["programs"])
        reserve = tuple((from_dict(p), float(e)) for p, e in data["reserve"])
        fallbacks = tuple((from_dict(p), float(e)) for p, e in data.get("fallbacks", []))
        return programs, reserve, fallbacks
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    programs, reserve, fallbacks = compute()
    record = {
        "programs": [to_dict(p) for p in programs],
        "reserve": [[to_dict(p), e] for p, e in reserve],
        "fallbacks": [[to_dict(p), e] for p, e in fallbacks],
    }
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=directory, suffix=".tmp", delete=False) as handle:
            json.dump(record, handle)
            temporary = handle.name
        os.replace(temporary, path)
    except OSError:
        pass
    return programs, reserve, fallbacks
