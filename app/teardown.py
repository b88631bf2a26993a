"""Leaving Qt in order before the interpreter exits (the window, bench/ui.py, tools/screenshots.py).

Why: PyQt6 registers an atexit handler (cleanup_on_exit) that walks sip's map of wrappers and
deletes every Qt object Python still owns. Deleting one can free Python wrappers that only it
kept alive (a Worker's QThread, the children of the QApplication), and freeing a wrapper
removes it from the very map being walked: a segfault after a clean run (gdb: sip_api_get_address
from cleanup_qobject from cleanup_on_exit, rc 139). `release_qt` does that deletion first,
outside the walk, in an order Qt is happy with (threads stopped, objects before the
application), so the handler finds nothing left to delete.
"""
from __future__ import annotations

import gc
import logging

from PyQt6 import sip
from PyQt6.QtCore import QCoreApplication, QEvent, QObject, QThread

from app.worker import stop_all_workers

log = logging.getLogger(__name__)


def release_qt(wait_ms: int = 10_000) -> None:
    """Stop the workers, then delete every Qt object Python owns and finally the application."""
    app = QCoreApplication.instance()
    stop_all_workers(wait_ms)
    if app is not None:
        app.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
        app.processEvents()
    gc.unfreeze()  # app.heap froze the window's objects: make them collectable again
    gc.collect()
    # type(o), not isinstance: some module objects (torch.distributed.reduce_op) warn on __class__
    owned = [o for o in gc.get_objects() if issubclass(type(o), QObject) and o is not app]
    for obj in owned:
        if sip.isdeleted(obj) or not sip.ispyowned(obj) or obj.parent() is not None:
            continue
        if isinstance(obj, QThread) and obj.isRunning():
            log.warning("a thread is still running at exit: left to the process exit")
            continue
        sip.delete(obj)  # its children (Python-wrapped or not) go with it
    del owned
    gc.collect()
    if app is not None and not sip.isdeleted(app):
        sip.delete(app)
