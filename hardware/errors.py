"""User-facing errors of the hardware room (cameras, line scan, PLC, live sort).

Every failure that a user can act on (a camera that does not answer, a PLC that is not
reachable, a bad register map setting) is raised as a HardwareError subclass, so the CLI and
the GUI can print one clear line instead of a traceback.
"""
from __future__ import annotations


class HardwareError(Exception):
    """A hardware problem the user can act on (message is shown as is)."""


class CaptureError(HardwareError):
    """A camera timeout or a corrupt frame for one part: that part is answered ERROR."""


class PlcError(HardwareError):
    """The PLC could not be read or written (not connected, timeout, exception response)."""
