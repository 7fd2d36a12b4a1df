"""SQL kept as files, shipped as package data and loaded by name through `load_sql`."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def load_sql(name: str) -> str:
    """Return the text of `sql/<name>.sql` (name may contain a sub-folder, e.g. ``catalog/0001_init``).

    >>> "CREATE TABLE" in load_sql("catalog/0001_init")
    True
    """
    parts = name.split("/")
    ref = resources.files(__name__)
    for part in parts[:-1]:
        ref = ref.joinpath(part)
    return ref.joinpath(parts[-1] + ".sql").read_text(encoding="utf-8")


def migration_names() -> list[str]:
    """Catalog migrations in the order they apply (``catalog/0001_init``, ...)."""
    folder = resources.files(__name__).joinpath("catalog")
    names = sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".sql"))
    return [f"catalog/{n}" for n in names]
