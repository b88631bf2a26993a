"""Station settings: this PC's roles, PINs, recent projects and rig choices.

Stored as JSON in ``$OKNG_HOME/station.json`` (default ``~/.okng/station.json``). Qt-free, so
the CLI and tests can read and write it.

Roles on a single seat (no server, no accounts)
-----------------------------------------------
okng runs on one shared workstation. Three roles exist: inspector, lab expert and supervisor.
Switching role asks for that role's PIN; the inspector role needs none. The PIN is a *seat
lock*, not security: it keeps an inspector from switching sort mode on or accepting reviews by
accident, and every label, review and sort records the user name and role in the project's
audit trail. Anyone with access to the files can edit station.json.

Default PINs (change them in File > Station settings, as supervisor):

* inspector: no PIN
* lab expert: ``1234``
* supervisor: ``4321``

PINs are stored as salted SHA-256 hashes, so station.json does not show them in clear.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labeling.home import okng_home
from labeling.types import Role, User

DEFAULT_PINS = {Role.LAB_EXPERT: "1234", Role.SUPERVISOR: "4321"}
MAX_RECENT = 10
ROLE_TITLES = {Role.INSPECTOR: "Inspector", Role.LAB_EXPERT: "Lab expert", Role.SUPERVISOR: "Supervisor"}


def station_file() -> Path:
    return okng_home() / "station.json"


def _hash(pin: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{pin}".encode()).hexdigest()


@dataclass
class StationSettings:
    """Everything this workstation remembers between runs."""

    user_name: str = "inspector"
    role: Role = Role.INSPECTOR
    pin_hashes: dict[str, str] = field(default_factory=dict)  # role value -> salted hash
    salt: str = field(default_factory=lambda: secrets.token_hex(8))
    recent: list[str] = field(default_factory=list)
    demo_parts: int = 24
    source: str = "sim"  # source spec for the capture view ("sim", "folder:DIR", ...)
    plc: str = "sim"  # "sim" = built-in simulator, else HOST:PORT
    cameras: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-camera settings
    path: Path | None = None

    def __post_init__(self) -> None:
        for role, pin in DEFAULT_PINS.items():
            self.pin_hashes.setdefault(role.value, _hash(pin, self.salt))

    # ------------------------------------------------------------------ roles
    @property
    def user(self) -> User:
        return User(self.user_name, self.role)

    def needs_pin(self, role: Role) -> bool:
        return bool(self.pin_hashes.get(Role(role).value))

    def check_pin(self, role: Role, pin: str) -> bool:
        """True if pin opens role (a role without PIN accepts anything)."""
        want = self.pin_hashes.get(Role(role).value)
        return not want or secrets.compare_digest(want, _hash(pin.strip(), self.salt))

    def set_pin(self, role: Role, pin: str) -> None:
        """Set a role's PIN (empty = no PIN). Digits only, 4 to 8 of them."""
        pin = pin.strip()
        if pin and not (pin.isdigit() and 4 <= len(pin) <= 8):
            raise ValueError("a PIN is 4 to 8 digits")
        self.pin_hashes[Role(role).value] = _hash(pin, self.salt) if pin else ""

    def switch_role(self, role: Role, pin: str = "", name: str | None = None) -> User:
        """Become role (after the PIN check); raises PermissionError on a wrong PIN."""
        role = Role(role)
        if not self.check_pin(role, pin):
            raise PermissionError(f"wrong PIN for {ROLE_TITLES[role].lower()}")
        self.role = role
        if name is not None and name.strip():
            self.user_name = name.strip()
        return self.user

    # ------------------------------------------------------------------ recent projects
    def add_recent(self, path: str | Path) -> None:
        p = str(Path(path).resolve())
        self.recent = [p] + [r for r in self.recent if r != p]
        del self.recent[MAX_RECENT:]

    def existing_recent(self) -> list[Path]:
        return [Path(r) for r in self.recent if Path(r).exists()]

    @property
    def last_project(self) -> Path | None:
        rec = self.existing_recent()
        return rec[0] if rec else None

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {"user_name": self.user_name, "role": self.role.value, "pin_hashes": self.pin_hashes,
                "salt": self.salt, "recent": self.recent, "demo_parts": self.demo_parts,
                "source": self.source, "plc": self.plc, "cameras": self.cameras}

    @classmethod
    def load(cls, path: Path | None = None) -> StationSettings:
        """Read station.json; a missing or unreadable file gives defaults (and is kept aside)."""
        path = path or station_file()
        data: dict[str, Any] = {}
        if path.exists():
            try:
                data = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError):
                path.replace(path.with_suffix(".json.bad"))  # keep it for inspection, start clean
        kwargs = {k: data[k] for k in ("user_name", "pin_hashes", "salt", "recent", "demo_parts",
                                       "source", "plc", "cameras") if k in data}
        st = cls(**kwargs)
        try:
            st.role = Role(data.get("role", Role.INSPECTOR.value))
        except ValueError:
            st.role = Role.INSPECTOR
        # Start as inspector unless that role needs no PIN anyway: a restarted app does not
        # silently keep supervisor rights.
        if st.needs_pin(st.role):
            st.role = Role.INSPECTOR
        st.path = path
        return st

    def save(self) -> None:
        """Write atomically (temp file + rename)."""
        path = self.path or station_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1), "utf-8")
        os.replace(tmp, path)
        self.path = path
