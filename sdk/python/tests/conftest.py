"""Shared test helpers: the location of the shared test vectors and a loader that fails loudly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SDK_DIR = Path(__file__).resolve().parent.parent
VECTORS = (SDK_DIR / ".." / ".." / "test-vectors").resolve()
V1 = VECTORS / "v1"


def load_vector(relative: str) -> dict:
    """A vector file under test-vectors/; a missing file fails the test, naming the file."""
    path = VECTORS / relative
    if not path.is_file():
        pytest.fail(f"test vector file {path} is missing (expected from the Rust generator: cargo run -p vectors)")
    return json.loads(path.read_text(encoding="utf-8"))
