"""A generated base batch built, then an update batch staged: what test_cdm_incremental.py,
test_dqd_incremental.py and test_incremental_refresh.py start from, built once per run (conftest's
`incremental_lake`) and copied by each test, with a full build of the same lake beside it to compare
with."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rwe_assets.lib.cdm import build as cdm_build
from rwe_assets.lib.cdm import incremental, reuse
from rwe_assets.lib.staging import incremental_state
from rwe_assets.settings import REPO_DIR
from rwe_assets.synthetic import generate
from rwe_assets.synthetic.update import generate_update
from rwe_assets_tests.crash_harness import stage_and_link

VOCAB = REPO_DIR / "vocab"
FULL = "warehouse_full"  # the full build of the updated lake, beside the base build in "warehouse"


@contextlib.contextmanager
def pinned_code() -> Iterator[None]:
    """The package's sources do not change during a run, but in a shared checkout an edit made while the
    suite runs would turn the update into full builds (the code rule): the digests are pinned. A 10%
    update of 50 persons touches about a third of them: the share threshold is raised to let it pass."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(incremental, "MAX_PERSON_SHARE", 0.5)
        patch.setattr(reuse, "code_digest", lambda: "pinned")
        patch.setattr(incremental_state, "staging_digest", lambda *_: "pinned")
        yield


def build_updated(root: Path) -> Path:
    """root/data: the CDM built from a base batch (new persons, new events, corrections, retractions
    follow in an update batch), the update landed, staged incrementally and linked, the CDM not rebuilt
    yet; and FULL, a full build of a copy of that lake (a build appends the new keys' ids to the lake's
    id maps: on the lake itself it would leave the tests' incremental build no key to number)."""
    generate(root / "base", 50, seed=11)
    generate_update(root / "base", root / "update", fraction=0.1)
    data = root / "data"
    shutil.copytree(root / "base" / "landing", data / "landing")
    stage_and_link(data)
    cdm_build.build_cdm(data / "lake", VOCAB, data / "warehouse")
    shutil.copytree(root / "update" / "landing", data / "landing", dirs_exist_ok=True)
    stage_and_link(data)
    shutil.copytree(data / "lake", root / "full_lake")
    cdm_build.build_cdm(root / "full_lake", VOCAB, data / FULL, incremental_build=False)
    return data
