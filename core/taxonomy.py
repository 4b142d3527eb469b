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


@dataclass(frozen=True)
class Taxonomy:
    version: int
    themes: tuple[Theme, ...]
    products: tuple[str, ...]
    digest: str

    @property
    def theme_keys(self) -> tuple[str, ...]:
        return tuple(t.key for t in self.themes)

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
        Theme(key=t["key"], label=t.get("label", t["key"]), description=t.get("description", ""))
        for t in data["themes"]
    )
    keys = [t.key for t in themes]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate theme keys in {p}")
    products = tuple(data.get("products", {}).get("keys", []))
    return Taxonomy(
        version=int(data.get("version", 1)),
        themes=themes,
        products=products,
        digest=hashlib.sha256(raw).hexdigest()[:12],
    )
