"""The headless live sort engine: PLC trigger -> capture -> one batched forward -> one FC16 write.

Critical path (engine thread, its own PlcClient): one FC3 poll of the PLC block; on a new
TRIG_SEQ capture all views, decide the part with one batched forward (NG if any view is NG), and
answer with ONE FC16 write of PC offsets 1-6. Everything else runs off that path: logging the
part into the project and Grad-CAM for NG parts (PartLogger's thread, its own store handle), and
PC_HEARTBEAT (the Heartbeat thread, its own client) which ticks only while this loop shows
progress and capture/inference are not failing repeatedly.

Fail-safe rules of docs/plc-register-map.md: a failure in capture or inference answers THAT
part with ERROR and the loop goes on; skipped sequences are answered ERROR and counted missed;
a lost connection keeps the loop alive (reconnect with backoff capped at 2 s, then resync so a
stale TRIG_SEQ is never answered); stopping clears SORT_MODE_ON and READY first.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from hardware.errors import HardwareError
from hardware.plc.registers import PcStatus, PlcVerdict
from hardware.sort.capacity import Capacity, assess
from hardware.sort.classifier import Classifier
from hardware.sort.config import SortConfig
from hardware.sort.link import PlcLink
from hardware.sort.partlog import PartLogger, PartRecord
from hardware.sort.stats import LatencyStats
from hardware.sort.summary import SortSummary, SortTick
from labeling.progress import Progress, ProgressFn
from training import core_share

__all__ = ["SOURCE_WARMERS", "SortEngine", "SortSummary", "SortTick"]

log = logging.getLogger(__name__)


def _warm_sim(source: Any) -> None:
    # The sim renderer caches its static layers per (seed, size) on first use (~1 s at
    # 1280x960); rendering a throwaway part fills the cache without using up trigger k=0.
    from labeling.demo.bolts import render_part
    render_part(0, seed=source.seed, size=tuple(source.resolution), ng_rate=source.ng_rate)


def _freeze_heap() -> None:
    # Before going live: everything alive now (torch, the model, the clients) lives as long as the
    # run. A full garbage collection walks all of it (~200 ms with torch imported, holding the
    # GIL: a whole part's time budget); frozen, later collections only see new objects.
    import gc
    gc.collect()
    gc.freeze()


# Sources whose first capture pays a one-off cost, and how to pay it before going live.
SOURCE_WARMERS: dict[str, Callable[[Any], None]] = {"sim": _warm_sim}

WARM_TIMED = 3  # timed warm-up forwards (median): ~0.5 s for a 150 ms model, once per run
VERDICT_NAMES = {PlcVerdict.OK: "OK", PlcVerdict.NG: "NG", PlcVerdict.ERROR: "ERROR"}


class SortEngine:
    """Runs the sort loop on the calling thread (`run`) or its own thread (`start`/`stop`)."""

    def __init__(self, project: Any, classifier: Classifier, source: Any,
                 config: SortConfig | None = None) -> None:
        self.project = project
        self.classifier = classifier
        self.source = source
        self.config = config or SortConfig()
        self.model_id = self.config.model_id or str(getattr(classifier, "model_id", "") or "")
        self.stats = LatencyStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._summary = SortSummary(shadow=self.config.shadow, model_id=self.model_id,
                                    runtime=str(getattr(classifier, "runtime", "torch")))
        self._last: dict[str, Any] = {}
        self._last_views: tuple[list[Any], list[str]] = ([], [])  # the views of that same part
        self._alive = 0.0  # monotonic time of the last sign of loop progress
        self._failures = 0  # consecutive capture/inference failures
        self._link: PlcLink | None = None
        self._logger: PartLogger | None = None
        self._result: SortSummary | None = None
        self._error: BaseException | None = None
        self._t0 = 0.0
        self._pinning: Any = None  # hardware.sort.threads.Pinning while running
        self._reservation: contextlib.ExitStack | None = None  # training.core_share.reserve while running

    # ------------------------------------------------------------------ public API
    def run(self, parts: int | None = None, duration: float | None = None,
            progress: ProgressFn | None = None,
            should_stop: Callable[[], bool] | None = None) -> SortSummary:
        """Sort until `parts` triggers were handled, `duration` s passed, or a stop request."""
        if parts is not None and parts <= 0:
            raise ValueError("parts must be positive")
        if duration is not None and duration <= 0:
            raise ValueError("duration must be positive")
        self._stop.clear()
        try:
            self._setup()
        except BaseException:
            self._teardown()  # what setup started (log writer, reservation, pinning) ends here too
            raise
        reason = "stopped"
        try:
            deadline = None if duration is None else time.monotonic() + duration
            while True:
                if self._stop.is_set() or (should_stop is not None and should_stop()):
                    break
                if parts is not None and self._summary.triggers >= parts:
                    reason = "parts"
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    reason = "duration"
                    break
                handled = self._step()
                if handled and progress is not None:
                    progress(Progress("sort", self._summary.triggers, parts,
                                      f"seq {self._last.get('trig_seq')} {self._last.get('verdict')}",
                                      SortTick(self.snapshot())))
        finally:
            self._teardown()
        self._summary.stop_reason = reason
        return self.summary()

    def start(self, parts: int | None = None, duration: float | None = None) -> None:
        """Run in a background thread; `stop()` ends it and returns the summary."""
        if self._thread is not None and self._thread.is_alive():
            raise HardwareError("the sort engine is already running")
        self._result, self._error = None, None

        def target() -> None:
            try:
                self._result = self.run(parts=parts, duration=duration)
            except BaseException as exc:
                self._error = exc
                log.exception("sort engine stopped on an error")

        self._thread = threading.Thread(target=target, name="okng-sort", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> SortSummary:
        """Stop the engine thread (clears SORT_MODE_ON and READY first) and return the summary."""
        self._stop.set()
        return self.join(timeout)

    def join(self, timeout: float | None = None) -> SortSummary:
        """Wait for the engine thread to end by itself; re-raises its error."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise HardwareError("the sort engine did not stop in time")
            self._thread = None
        if self._error is not None:
            raise self._error
        return self._result or self.summary()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def healthy(self) -> bool:
        """True while the loop makes progress and capture/inference do not fail repeatedly.

        The heartbeat thread asks this every tick: a stalled pipeline stops PC_HEARTBEAT, so the
        PLC's 500 ms watchdog rejects the parts in flight.
        """
        fresh = time.monotonic() - self._alive < self.config.health_max_age
        return fresh and self._failures < self.config.max_failures and not self._stop.is_set()

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of counters, last decision, rate and latency (for a UI)."""
        with self._lock:
            s = self._summary
            snap = {"triggers": s.triggers, "answered": s.answered, "verdicts": dict(s.verdicts),
                    "errors": s.errors, "missed": s.missed, "unanswered": s.unanswered,
                    "missed_in_outages": s.missed_in_outages,
                    "write_failures": s.write_failures, "shadow": s.shadow, "last": dict(self._last)}
        snap["parts_per_s"] = self.stats.rate()
        snap["latency_ms"] = self.stats.latency_ms()
        snap["healthy"] = self.healthy()
        snap["forward_ms"] = self._summary.forward_ms
        snap["trigger_rate"] = self.stats.trigger_rate()
        snap["capacity"] = self._capacity(snap["latency_ms"], snap["trigger_rate"]).to_dict()
        snap["plc"] = self._link.info() if self._link is not None else {}
        # both connections' exception responses (the summary's modbus_exceptions), for the tiles
        snap["modbus_exceptions"] = int(snap["plc"].get("modbus_exceptions", 0))
        snap["log"] = self._logger.counters() if self._logger is not None else {}
        return snap

    def last_part(self) -> tuple[dict[str, Any], list[Any], list[str]]:
        """The last decided part: its record (verdict, confidence, per-view scores...) and ITS
        views and cameras, taken together under the lock so a UI never pairs one part's
        verdict with another part's views."""
        with self._lock:
            images, cameras = self._last_views
            return dict(self._last), list(images), list(cameras)

    def summary(self) -> SortSummary:
        s = self._summary
        s.latency_ms = self.stats.latency_ms()
        s.stages_ms = self.stats.stages_ms()
        if self._link is not None:
            s.plc = self._link.info()
            s.write_failures = self._link.write_failures
            s.modbus_exceptions = int(s.plc.get("modbus_exceptions", 0))
        if self._logger is not None:
            s.log = self._logger.counters()
        if s.duration_s > 0:
            s.parts_per_s = round(s.triggers / s.duration_s, 3)
        # Over the whole run: first to last trigger, not the last seconds' rate.
        s.capacity = self._capacity(s.latency_ms, self.stats.trigger_rate(None)).to_dict()
        return s

    def _capacity(self, latency_ms: dict[str, float], trigger_rate: float) -> Capacity:
        return assess(self._summary.forward_ms, latency_ms, trigger_rate, self.config.line_rate,
                      self.stats.p50_ms("capture"))

    # ------------------------------------------------------------------ setup / teardown
    def _setup(self) -> None:
        cfg = self.config
        try:
            info = self.source.info()
            self._summary.source = {"name": info.name, "kind": info.kind, "cameras": list(info.cameras),
                                    "resolution": list(info.resolution)}
        except Exception:  # noqa: BLE001 - info is descriptive only
            self._summary.source = {}
        layout = self._plan_threads()  # a bad setting stops here, before anything is started
        # The forward's cores are held while sorting: a training on this PC divides the others.
        self._reservation = contextlib.ExitStack()
        self._reservation.enter_context(core_share.reserve(max(1, int(layout.intra_op))))
        if cfg.log_parts and self.project is not None:
            self._logger = PartLogger(self.project.path, self.model_id, cfg.log_queue,
                                      self._explainer() if cfg.gradcam_ng else None)
            self._logger.start()
        self._apply_threads(layout)
        self._warm_up()  # after the layout: the preprocessing pool starts here, pinned
        _freeze_heap()
        self._alive = time.monotonic()
        self._link = PlcLink(cfg, health=self.healthy)
        self._link.open(self._status_bits())
        self._pin_services()
        self._t0 = time.monotonic()

    def _teardown(self) -> None:
        import gc
        gc.unfreeze()  # frozen objects are never freed, not even at exit (extensions then report leaks)
        if self._t0:  # 0: setup did not get as far as sorting
            self._summary.duration_s = round(time.monotonic() - self._t0, 3)
        try:
            if self._link is not None:
                self._link.close()  # clears SORT_MODE_ON and READY first, then stops the heartbeat
            if self._logger is not None:
                self._logger.close()
        finally:
            if self._pinning is not None:
                self._pinning.restore()  # the process's other sorts and tests get their CPUs back
            if self._reservation is not None:
                self._reservation.close()
                self._reservation = None

    def _plan_threads(self) -> Any:
        from hardware.sort.threads import plan_layout
        try:
            return plan_layout(self.config.pin, self.config.threads)
        except ValueError as exc:
            raise HardwareError(f"thread layout: {exc}") from exc

    def _apply_threads(self, layout: Any) -> None:
        """The thread layout (hardware.sort.threads), applied on the engine thread itself."""
        from hardware.sort.threads import Pinning
        self._pinning = Pinning(layout)
        self._pinning.apply_engine()
        self._summary.threads = self._pinning.report(self._ort_threads())

    def _pin_services(self) -> None:
        # Once the heartbeat and log threads and the writer process exist (they were created by
        # this thread or before the layout, so they would share the engine's CPU otherwise).
        if self._pinning is None:
            return
        writer = self._logger.writer_pid if self._logger is not None else None
        self._pinning.pin_services([writer] if writer else [])
        self._summary.threads = self._pinning.report(self._ort_threads())
        chunks = getattr(self.classifier, "chunks", None)  # slices of a part's batch run at once
        cams = (self._summary.source or {}).get("cameras")
        if callable(chunks) and cams:
            self._summary.threads["forward_slices"] = int(chunks(len(cams)))
        log.info("sort thread layout: %s", self._summary.threads)

    def _ort_threads(self) -> int | None:
        """ONNX Runtime's intra-op threads as its session really has them (read at load time by
        training.runtime.OrtModel; None for a torch model)."""
        return getattr(self.classifier, "intra_op", None)

    def _warm_up(self) -> None:
        """Forwards on blank views before going live: the first torch call is many times slower
        than the next ones and would land on the first part's latency; the next ones are timed
        (summary.forward_ms), so the capacity check speaks before the first trigger."""
        try:
            import numpy as np
            info = self.source.info()
            w, h = info.resolution
            if not h:
                return
            own = getattr(self.source, "warm_up", None)
            if callable(own):
                own()
            elif info.name in SOURCE_WARMERS:
                SOURCE_WARMERS[info.name](self.source)
            blank = [np.zeros((h, w, 3), np.uint8) for _ in info.cameras]
            times = []
            for _ in range(1 + WARM_TIMED):  # the first one pays the one-off costs: not timed
                t0 = time.perf_counter()
                self.classifier.predict_views(blank, list(info.cameras))
                times.append(time.perf_counter() - t0)
            # What one part costs at least, known before any trigger: the capacity check's basis.
            self._summary.forward_ms = round(float(np.median(times[1:])) * 1000.0, 1)
        except Exception as exc:  # noqa: BLE001 - a failing model shows up on the first part
            log.warning("warm-up forward failed: %s", exc)

    def _status_bits(self) -> PcStatus:
        bits = PcStatus.MODEL_LOADED
        if self._failures < self.config.max_failures:
            bits |= PcStatus.CAMERAS_OK
        if not self.config.shadow:
            bits |= PcStatus.SORT_MODE_ON
        return bits

    def _explainer(self) -> Callable | None:
        fn = getattr(self.classifier, "explain", None)
        if callable(fn):
            return fn
        from hardware.sort.explain import make_explainer  # loads torch: only when Grad-CAM is asked for
        return make_explainer(self.classifier)

    # ------------------------------------------------------------------ the loop
    def _step(self) -> bool:
        """One poll; handles the triggers it reveals. True if any trigger was handled."""
        link = self._link
        assert link is not None
        self._alive = time.monotonic()
        t_poll = time.perf_counter()
        triggers = link.poll()
        t_seen = time.perf_counter()
        self._account_outage(link)
        link.set_status(self._status_bits())
        if not triggers:
            time.sleep(self.config.poll_period)
            return False
        self.stats.seen(len(triggers))
        fresh = [t for t in triggers if not t.skipped]
        # The newest part is at the station now: capture it before paying for older answers.
        for trig in fresh:
            self._inspect(trig, t_poll, t_seen)
        for trig in triggers:
            if trig.skipped:
                self._count_missed(trig)
        return True

    def _account_outage(self, link: Any) -> None:
        # Parts that reached the station while the link was down were never seen as triggers
        # but the PLC counted them: missed. A timed-out write found in the PLC was answered.
        lost, landed = link.take_missed_in_outages(), link.take_landed()
        if not (lost or landed):
            return
        with self._lock:
            s = self._summary
            s.triggers += lost
            s.missed += lost
            s.missed_in_outages += lost
            s.answered += landed
            s.unanswered -= landed

    def _count_missed(self, trig: Any) -> None:
        answered = False
        if not self.config.shadow:
            answered = self._link.write(trig.error_result())  # type: ignore[union-attr]
        with self._lock:
            s = self._summary
            s.triggers += 1
            s.missed += 1
            s.errors += 1
            s.verdicts["ERROR"] += 1
            # Not `answered`: a skipped part's PART_ID was never seen, so its ERROR write echoes
            # 0 and the PLC cannot match it (it rejects the part anyway: positive release).
            s.missed_written += int(answered)

    def _inspect(self, trig: Any, t_poll: float, t_seen: float) -> None:
        cfg = self.config
        timings = {"poll": t_seen - t_poll}
        images, cameras, truth, error = [], [], None, ""
        verdict, confidence, dclass, scores = PlcVerdict.ERROR, 0.0, 0, []
        t0 = time.perf_counter()
        try:
            cap = self.source.capture(timeout=cfg.capture_timeout)
            images, cameras, truth = cap.views, cap.cameras, cap.truth
        except Exception as exc:  # noqa: BLE001 - any capture failure: ERROR for this part only
            error = f"capture: {exc}"
            self._summary.capture_errors += 1
        t1 = time.perf_counter()
        timings["capture"] = t1 - t0
        self._alive = time.monotonic()
        if not error:
            try:
                dec = self.classifier.predict_views(images, cameras)
                verdict = PlcVerdict.NG if int(dec.verdict) == 2 else PlcVerdict.OK
                confidence, dclass = float(dec.confidence), int(dec.defect_class)
                scores = [float(v) for v in dec.view_scores]
            except Exception as exc:  # noqa: BLE001 - any inference failure: ERROR for this part only
                error = f"inference: {exc}"
                self._summary.inference_errors += 1
            t2 = time.perf_counter()
            timings["infer"] = t2 - t1
            timings.update(getattr(self.classifier, "last_timings", None) or {})
        self._failures = self._failures + 1 if error else 0
        self._alive = time.monotonic()
        answered = False
        if not cfg.shadow:
            t3 = time.perf_counter()
            answered = self._link.write(trig.result(verdict, confidence, dclass))  # type: ignore[union-attr]
            t4 = time.perf_counter()
            timings["write"] = t4 - t3
            timings["total"] = t4 - t_poll
        else:
            timings["total"] = time.perf_counter() - t_poll
        if "forward" in timings:
            timings["overhead"] = timings["total"] - timings["forward"]
        if error:
            log.warning("part seq %s (id %s) answered ERROR: %s", trig.seq, trig.part_id, error)
        name = VERDICT_NAMES.get(verdict, "ERROR")
        self.stats.add(timings)
        with self._lock:
            s = self._summary
            s.triggers += 1
            s.verdicts[name] += 1
            s.errors += int(verdict == PlcVerdict.ERROR)
            s.answered += int(answered)
            s.unanswered += int(not answered and not cfg.shadow)
            want = str(truth.get("verdict", "")).upper() if isinstance(truth, dict) else ""
            if want in ("OK", "NG") and name in ("OK", "NG"):
                key = "agree" if want == name else "disagree"
                s.truth[key] = s.truth.get(key, 0) + 1
                true_class = truth.get("defect_class") if want == "NG" == name else None
                if isinstance(true_class, int) and true_class > 0:
                    # NG parts called NG: did DEFECT_CLASS name the generator's class?
                    key = "class_agree" if dclass == true_class else "class_disagree"
                    s.truth[key] = s.truth.get(key, 0) + 1
            self._last = {"trig_seq": trig.seq, "part_id": trig.part_id, "verdict": name,
                          "confidence": round(confidence, 4), "defect_class": dclass,
                          "scores": [round(v, 4) for v in scores], "error": error,
                          "answered": answered, "total_ms": round(timings["total"] * 1000, 3)}
            self._last_views = (list(images), list(cameras))  # references only: no copy on the critical path
        if self._logger is not None and images:
            self._logger.submit(PartRecord(images, cameras, trig.seq, trig.part_id or 0, name, confidence,
                                           dclass, scores, timings, cfg.shadow, answered, error, truth))
