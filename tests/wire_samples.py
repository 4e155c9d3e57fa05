"""The venues' documented message examples (../shared/wire-samples beside the repository),
loaded one way for every decoder, checksum and simulator test."""
from __future__ import annotations

import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIR = os.path.join(ROOT, "..", "shared", "wire-samples")


def document(filename: str) -> dict:
    """One venue's sample file, e.g. document("okx_v5.json")["messages"]."""
    with open(os.path.join(DIR, filename)) as f:
        return json.load(f)
