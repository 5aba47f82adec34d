"""Shared test fixtures: where the real data lives, and prepared NW-UCLA arrays (made once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (it ships beside the repo, not in it)")
    return path


@pytest.fixture(scope="session")
def nwucla_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """NW-UCLA prepared with `masksem prepare nw-ucla` into a temp folder (about a second)."""
    raw = shared_path("nw-ucla")
    from masksem_core.cli import main

    out = tmp_path_factory.mktemp("nwucla")
    assert main(["prepare", "nw-ucla", "--raw", str(raw), "--out", str(out), "--no-progress"]) == 0
    return out / "NW-UCLA.npz"
