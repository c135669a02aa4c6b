"""Reading the OHDSI specification CSVs packaged under ``rwe_assets/lib/spec/`` (the CDM's in
``cdm_spec``, the DQD catalogue's in ``dqd_spec``): cells as stripped strings, the spec's two spellings
of a missing cell, and error messages that say where a bad cell is."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TypeVar

from rwe_assets.errors import ConfigError

SPEC_DIR = resources.files("rwe_assets.lib") / "spec"
MISSING = {"", "NA"}
_T = TypeVar("_T")


def read_spec_csv(
    source: Traversable | Path, required: Iterable[str] = ("cdmTableName",)
) -> list[dict[str, str]]:
    """Rows of a spec CSV as stripped strings. Copes with a BOM, mixed line endings and Windows-1252."""
    data = source.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or ()]
    if missing := [name for name in required if name not in header]:
        raise ConfigError(
            f"{source}: expected columns {', '.join(missing)}, found {', '.join(header) or 'none'}"
        )
    return [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]


def spec_value(row: Mapping[str, str], column: str) -> str | None:
    """A cell, None when blank or "NA" (the spec's two spellings of missing)."""
    value = row.get(column, "")
    return None if value in MISSING else value


def located(where: str, parse: Callable[[str], _T], raw: str) -> _T:
    """``parse(raw)``, with ``where`` prefixed to the message of a ConfigError it raises."""
    try:
        return parse(raw)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
