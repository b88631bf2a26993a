"""Station settings: PINs, role switching, recent projects, persistence."""
from __future__ import annotations

import json

import pytest

from app.station import StationSettings, station_file
from labeling.types import Role


def _strings(obj) -> list[str]:
    """Every string in a JSON document, keys included."""
    if isinstance(obj, dict):
        return [*obj, *(x for v in obj.values() for x in _strings(v))]
    if isinstance(obj, list):
        return [x for v in obj for x in _strings(v)]
    return [obj] if isinstance(obj, str) else []


def test_default_pins_and_wrong_pin_refused(_okng_home):
    st = StationSettings.load()
    assert st.role == Role.INSPECTOR and not st.needs_pin(Role.INSPECTOR)
    with pytest.raises(PermissionError):
        st.switch_role(Role.SUPERVISOR, "0000")
    assert st.role == Role.INSPECTOR
    st.switch_role(Role.LAB_EXPERT, "1234", name="ana")
    assert st.user.role == Role.LAB_EXPERT and st.user.name == "ana"
    st.switch_role(Role.SUPERVISOR, "4321")
    st.set_pin(Role.SUPERVISOR, "98765")
    st.save()
    # Hashed, not in clear: no stored string holds a PIN. (A substring test over the whole file
    # failed by chance: a salted SHA-256 hex digest contained "4321".)
    doc = json.loads(station_file().read_text())
    stored = _strings(doc)
    assert "98765" not in stored and "4321" not in stored and "1234" not in stored
    hashes = list(doc["pin_hashes"].values())
    assert hashes and all(len(h) == 64 and int(h, 16) >= 0 for h in hashes)  # SHA-256 hex
    again = StationSettings.load()
    assert again.role == Role.INSPECTOR  # a restart never keeps a PIN-protected role
    assert again.check_pin(Role.SUPERVISOR, "98765") and not again.check_pin(Role.SUPERVISOR, "4321")
    with pytest.raises(ValueError):
        again.set_pin(Role.LAB_EXPERT, "12a")


def test_recent_projects_and_corrupt_file(_okng_home, tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    a.write_bytes(b"x"), b.write_bytes(b"x")
    st = StationSettings.load()
    st.add_recent(a), st.add_recent(b), st.add_recent(a)
    st.save()
    st2 = StationSettings.load()
    assert st2.last_project == a.resolve() and len(st2.recent) == 2
    station_file().write_text("{not json")
    st3 = StationSettings.load()
    assert st3.recent == [] and station_file().with_suffix(".json.bad").exists()
    json.loads(json.dumps(st3.to_dict()))
