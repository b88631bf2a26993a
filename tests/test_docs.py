"""The PLC register map ships with the repo, and every mention of it points at that copy."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_register_map_is_shipped_and_referenced_from_docs():
    assert (ROOT / "docs" / "plc-register-map.md").is_file()
    files = [ROOT / "README.md", *[p for d in ("app", "labeling", "training", "hardware")
                                   for p in (ROOT / d).rglob("*.py")]]
    mentions = [(p, m) for p in files for m in re.findall(r"[\w./-]*plc-register-map\.md", p.read_text())]
    assert mentions
    wrong = [(str(p.relative_to(ROOT)), m) for p, m in mentions if m != "docs/plc-register-map.md"]
    assert not wrong, wrong
