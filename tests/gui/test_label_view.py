"""Label view on a real project: keys, brush/polygon/fill strokes through the mouse, undo, filters, review."""
from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import QPoint, Qt
from PyQt6.QtTest import QTest

from app.context import AppContext
from app.station import StationSettings
from app.views.label_view import LabelView
from labeling.store import Project
from labeling.types import BOLT_CLASSES, Prediction, Role, Settings, Verdict

H, W = 96, 128


def _make_project(path, n=5):
    proj = Project.create(path, Settings(name="t", classes=list(BOLT_CLASSES)))
    rng = np.random.default_rng(0)
    for i in range(n):
        img = (rng.random((H, W)) * 60).astype(np.uint8)
        img[30:60, 40:90] = 220  # a bright blob for the flood fill
        proj.add_part([img, img[::-1].copy()], name=f"p{i}")
    return proj


def _shown_view(qtbot, path) -> LabelView:
    """A Label view on the project at path, shown (the canvas reads the first part when shown)."""
    ctx = AppContext(StationSettings.load())
    ctx.open_project(path)
    v = LabelView(ctx)
    qtbot.addWidget(v)
    v.resize(1400, 800)
    v.show()
    qtbot.waitExposed(v)
    return v


@pytest.fixture
def view(qtbot, tmp_path):
    path = tmp_path / "proj.h5"
    _make_project(path)
    v = _shown_view(qtbot, path)
    qtbot.waitUntil(lambda: v.part_id is not None and v.canvas.image is not None, timeout=5000)
    yield v
    v.ctx.shutdown()


def _reopen(v):
    assert v.ctx.writer.flush(10)
    return Project.open(v.ctx.project.path)


def test_keys_label_parts_and_advance(view, qtbot):
    first = view.part_id
    order = view.parts.visible_ids()
    qtbot.keyClick(view.canvas, Qt.Key.Key_O)
    qtbot.waitUntil(lambda: view.part_id == order[1], timeout=3000)
    qtbot.keyClick(view.canvas, Qt.Key.Key_3)  # pick "short coating"
    qtbot.keyClick(view.canvas, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: view.part_id == order[2], timeout=3000)
    qtbot.keyClick(view.parts.table, Qt.Key.Key_N)  # keys work with the focus anywhere in the view
    qtbot.keyClick(view.canvas, Qt.Key.Key_Up)  # back to the NG part: a digit relabels its class
    qtbot.waitUntil(lambda: view.part_id == order[2], timeout=3000)
    qtbot.keyClick(view.canvas, Qt.Key.Key_2)
    proj = _reopen(view)
    assert proj.part(first).verdict == Verdict.OK
    assert proj.part(order[1]).label.verdict == Verdict.NG and proj.part(order[1]).label.defect_class == 3
    hist = proj.label_history(order[2])
    assert [h.defect_class for h in hist] == [3, 2]  # N used the selected class, then 2 relabeled it
    assert proj.part(first).label.user.name == view.ctx.user.name
    assert proj.part(order[3]).verdict == Verdict.UNLABELED


def _drag(canvas, pts):
    vp = canvas.viewport()
    wp = [canvas.image_to_widget(x, y) for x, y in pts]
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(wp[0]))
    for p in wp[1:]:
        QTest.mouseMove(vp, QPoint(p))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(wp[-1]))


def test_brush_stroke_is_stored_and_undo_restores(view, qtbot):
    pid = view.part_id
    qtbot.keyClick(view.canvas, Qt.Key.Key_2)  # class 2
    view.set_radius(4)
    _drag(view.canvas, [(20, 20), (30, 22), (45, 25), (60, 25)])
    m = _reopen(view).read_mask(pid, 0)
    assert m is not None and m[25, 45] == 2 and m[80, 10] == 0
    assert view.canvas.editor.stack.can_undo()
    qtbot.keyClick(view.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _reopen(view).read_mask(pid, 0) is None  # back to no mask at all
    qtbot.keyClick(view.canvas, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert _reopen(view).read_mask(pid, 0)[25, 45] == 2
    qtbot.keyClick(view.canvas, Qt.Key.Key_E)  # eraser over part of it
    _drag(view.canvas, [(40, 25), (50, 25)])
    m = _reopen(view).read_mask(pid, 0)
    assert m[25, 45] == 0 and m[25, 25] == 2


def test_polygon_and_flood_fill_with_clicks(view, qtbot):
    pid = view.part_id
    qtbot.keyClick(view.canvas, Qt.Key.Key_P)
    vp = view.canvas.viewport()
    for x, y in [(5, 5), (25, 5), (25, 20), (5, 20)]:
        QTest.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         QPoint(view.canvas.image_to_widget(x, y)))
    qtbot.keyClick(view.canvas, Qt.Key.Key_Return)
    m = _reopen(view).read_mask(pid, 0)
    assert m[12, 15] == 1 and m[40, 60] == 0
    qtbot.keyClick(view.canvas, Qt.Key.Key_4)
    qtbot.keyClick(view.canvas, Qt.Key.Key_F)
    QTest.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(view.canvas.image_to_widget(60, 45)))
    m = _reopen(view).read_mask(pid, 0)
    assert (m[30:60, 40:90] == 4).all() and m[12, 15] == 1 and m[70, 100] == 0


def test_filters_queue_and_model_acceptance(view, qtbot):
    proj = view.ctx.project
    ids = sorted(proj.part_ids())
    # a prediction that disagrees and one that is uncertain
    proj.add_prediction(ids[0], Prediction("m1", Verdict.NG, (0.9, 0.2), 0.9, 2))
    proj.add_prediction(ids[1], Prediction("m1", Verdict.OK, (0.45, 0.4), 0.55))
    proj.set_label(ids[0], Verdict.OK)
    proj.set_label(ids[2], Verdict.NG, 1)
    view.parts.refresh()
    view.parts.set_filter("Unlabeled")
    assert view.parts.visible_ids()[0] == ids[1]  # the uncertain part leads the queue
    assert set(view.parts.visible_ids()) == {ids[1], ids[3], ids[4]}
    view.parts.set_filter("Disagrees with model")
    assert view.parts.visible_ids() == [ids[0]]
    view.parts.set_filter("Uncertain")
    assert view.parts.visible_ids() == [ids[1]]
    view.parts.set_filter("NG")
    assert view.parts.visible_ids() == [ids[2]]
    view.parts.set_filter("Under review")
    assert set(view.parts.visible_ids()) == {ids[0], ids[2]}
    view.parts.set_filter("All")
    view.parts.select_part(ids[0])
    qtbot.waitUntil(lambda: view.part_id == ids[0], timeout=3000)
    qtbot.keyClick(view.canvas, Qt.Key.Key_A)  # accept the model: NG, class 2
    p = _reopen(view).part(ids[0])
    assert p.verdict == Verdict.NG and p.label.defect_class == 2


def test_likely_label_errors_filter_orders_the_least_believed_first(view, qtbot):
    from labeling.types import LabelCheck
    proj = view.ctx.project
    ids = sorted(proj.part_ids())
    for pid in ids:
        proj.set_label(pid, Verdict.NG, 1)
    proj.set_label_checks({ids[1]: LabelCheck(Verdict.NG, 2, 0.4, 1e12),
                           ids[3]: LabelCheck(Verdict.OK, 0, 0.1, 1e12)}, run="oof")
    view.parts.refresh()
    view.parts.set_filter("Likely label errors")
    assert view.parts.visible_ids() == [ids[3], ids[1]]
    view.parts.set_filter("All")
    assert len(view.parts.visible_ids()) == len(ids)


def test_review_needs_lab_expert(view, qtbot):
    pid = view.part_id
    refused = []
    view.ctx.refused.connect(refused.append)
    view.review.comment.setText("coating fine")
    view.review.accept_btn.click()
    assert refused and "Lab expert" in refused[0]
    with pytest.raises(PermissionError):
        view.ctx.switch_role(Role.LAB_EXPERT, "0000")
    view.ctx.switch_role(Role.LAB_EXPERT, "1234", name="ana")
    view.review.reject_btn.click()  # no comment: refused by the panel, nothing written
    view.review.comment.setText("this is NG, look at cam1")
    view.review.reject_btn.click()
    proj = _reopen(view)
    reviews = proj.review_history(pid)
    assert len(reviews) == 1 and reviews[0].status.value == "rejected" and reviews[0].user.name == "ana"
    qtbot.waitUntil(lambda: view.review.trail.count() >= 1, timeout=3000)
    assert "review rejected" in view.review.trail.item(0).text()


def test_prediction_heatmap_is_shown_beside_the_label(view, qtbot):
    proj = view.ctx.project
    pid = view.parts.visible_ids()[1]
    heat = np.zeros((6, 8), np.uint8)  # the stored convention: 0..255, full-image frame
    heat[2:4, 3:5] = 255
    proj.add_prediction(pid, Prediction("m7", Verdict.NG, (0.93, 0.2), 0.93, 1, extra={"heatmaps": [heat.tolist(), None]}))
    view.parts.select_part(pid)
    qtbot.waitUntil(lambda: view.part_id == pid and len(view.heatmaps) == 2, timeout=5000)
    assert view.canvas.heat_item.isVisible() and view.canvas.heat_item.image.shape == (6, 8)
    assert "NG" in view.panel.prediction.text() and "m7" in view.panel.prediction.text()
    view.panel.heatmap.setChecked(False)
    assert not view.canvas.heat_item.isVisible()
    view.show_view(1)  # no heatmap for view 2
    assert not view.canvas.heat_item.isVisible()


def test_queue_reorders_by_uncertainty_when_predictions_arrive(view, qtbot):
    proj = view.ctx.project
    ids = sorted(proj.part_ids())
    assert view.parts.visible_ids() == ids  # no model yet: oldest first
    proj.add_prediction(ids[3], Prediction("m2", Verdict.NG, (0.5,), 0.51))
    proj.add_prediction(ids[4], Prediction("m2", Verdict.OK, (0.3,), 0.7))
    qtbot.waitUntil(lambda: view.parts.visible_ids()[:2] == [ids[3], ids[4]], timeout=5000)


def test_parts_captured_meanwhile_join_the_queue_when_the_view_is_shown(view, qtbot):
    for pid in view.parts.visible_ids():
        view.ctx.project.set_label(pid, Verdict.OK)
    view.hide()
    img = np.zeros((H, W), np.uint8)
    new = view.ctx.project.add_part([img, img], name="captured")  # e.g. from the Capture view
    qtbot.waitUntil(lambda: new in view.parts.visible_ids(), timeout=3000)
    view.show()
    qtbot.waitUntil(lambda: view.parts.visible_ids()[0] == new, timeout=3000)  # unlabelled first


def test_inspector_ticks_several_classes(view, qtbot):
    """Ctrl+digit or the 'also' box adds a class to the part (the main class stays first);
    a digit changes the main class and keeps the others."""
    pid = view.part_id
    qtbot.keyClick(view.canvas, Qt.Key.Key_1)
    view.label(Verdict.NG, advance=False)
    qtbot.keyClick(view.canvas, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(view.canvas, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(view.canvas, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)  # off again
    view.panel.also[2].click()

    def held():
        lab = view.project.part(pid).label
        return lab.classes if lab else ()
    qtbot.waitUntil(lambda: held() == (1, 4, 2), timeout=3000)
    qtbot.waitUntil(lambda: view.panel.also[4].isChecked() and not view.panel.also[3].isChecked(), timeout=3000)
    qtbot.waitUntil(lambda: "coating + foreign substance + no coating" in view.panel.verdict.text(), timeout=3000)
    qtbot.keyClick(view.canvas, Qt.Key.Key_4)  # main class becomes 4, the others stay
    proj = _reopen(view)
    assert proj.part(pid).label.classes == (4, 2)
    assert [h.classes for h in proj.label_history(pid)] == [(1,), (1, 3), (1, 3, 4), (1, 4), (1, 4, 2), (4, 2)]


def test_proposal_is_outlined_and_m_accepts_it_with_undo(qtbot, tmp_path):
    """A stored proposal (apart from the mask) is shown; M copies it where the mask is empty,
    keeps the drawn pixels, and Ctrl+Z takes it back."""
    path = tmp_path / "proj.h5"
    proj = _make_project(path, n=1)
    drawn = np.zeros((H, W), np.uint8)
    drawn[30:40, 40:50] = 2  # the inspector's stroke, another class
    pid = proj.part_ids()[0]
    proj.set_mask(pid, 0, drawn)
    prop = np.zeros((H, W), np.uint8)
    prop[30:60, 40:90] = 1
    proj.set_proposal(pid, 0, prop, "seg-model")
    v = _shown_view(qtbot, path)
    qtbot.waitUntil(lambda: v.canvas.image is not None and v.canvas.proposal is not None, timeout=5000)
    assert v.canvas.proposal_item.isVisible()
    qtbot.keyClick(v.canvas, Qt.Key.Key_M)
    m = v.canvas.editor.mask
    assert (m[30:40, 40:50] == 2).all()  # drawn pixels stay
    assert (m[45:60, 40:90] == 1).all() and m.sum() > drawn.sum()
    assert _reopen(v).read_mask(pid, 0)[50, 60] == 1  # stored as the mask
    assert np.array_equal(_reopen(v).read_proposal(pid, 0)[0], prop)  # the proposal stays apart
    qtbot.keyClick(v.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(v.canvas.editor.mask, drawn)
    qtbot.waitUntil(lambda: np.array_equal(_reopen(v).read_mask(pid, 0), drawn), timeout=5000)
    qtbot.keyClick(v.canvas, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)  # hide class 1 (Ctrl+digit: the label's classes)
    assert not v.canvas.proposal_item.isVisible()
    v.ctx.shutdown()
