"""Station settings: PINs, role switching, recent projects, persistence."""
from __future__ import annotations

import json

import pytest

from app.station import StationSettings, station_file
from labeling.types import Role


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
    text = station_file().read_text()
    assert "98765" not in text and "4321" not in text  # hashed, not in clear
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
