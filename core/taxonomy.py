"""The theme taxonomy and product keys, read from a TOML file (packaged default or a setting)."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEFAULT_PATH = Path(__file__).with_name("taxonomy.toml")


@dataclass(frozen=True)
class Theme:
    key: str
    label: str
    description: str
    # Themes a post cannot carry together with this one (the codebook's "-> other theme").
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Taxonomy:
    version: int
    themes: tuple[Theme, ...]
    products: tuple[str, ...]
    digest: str

    @property
    def theme_keys(self) -> tuple[str, ...]:
        return tuple(t.key for t in self.themes)

    @property
    def exclusive_pairs(self) -> tuple[tuple[str, str], ...]:
        """Pairs of themes that exclude each other (declared on either side), each once."""
        pairs = {tuple(sorted((t.key, other))) for t in self.themes for other in t.excludes}
        return tuple(sorted((a, b) for a, b in pairs))

    def theme(self, key: str) -> Theme:
        for t in self.themes:
            if t.key == key:
                return t
        raise KeyError(key)


@lru_cache(maxsize=8)
def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """Parse a taxonomy file; the digest covers its bytes so a changed taxonomy changes versions."""
    p = path or DEFAULT_PATH
    raw = p.read_bytes()
    data = tomllib.loads(raw.decode("utf-8"))
    themes = tuple(
        Theme(
            key=t["key"],
            label=t.get("label", t["key"]),
            description=t.get("description", ""),
            excludes=tuple(t.get("excludes", ())),
        )
        for t in data["themes"]
    )
    keys = [t.key for t in themes]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate theme keys in {p}")
    for t in themes:
        wrong = [k for k in t.excludes if k not in keys or k == t.key]
        if wrong:
            raise ValueError(f"{p}: theme {t.key!r} excludes {wrong}: not another theme's key")
    products = tuple(data.get("products", {}).get("keys", []))
    return Taxonomy(
        version=int(data.get("version", 1)),
        themes=themes,
        products=products,
        digest=hashlib.sha256(raw).hexdigest()[:12],
    )
