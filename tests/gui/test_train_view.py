"""Train view: a cancelled run leaves the project and its registry intact; a finished tiny run
adds a model whose metrics the view shows; Make active goes to the store."""
from __future__ import annotations

import dataclasses
import hashlib
import html

import pytest
from PyQt6.QtGui import QTextDocument

from app.views.train_view import TrainView
from labeling.store import Project
from training.start import RunStart

TINY = {"arch": "mobilenet_v3_small", "freeze": "scratch", "epochs": 1, "batch_size": 16,
        "input_size": (32, 32), "folds": 1, "augment": ["hflip"]}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def ctx(demo_context):
    return demo_context("train.h5", 16)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cancel_leaves_project_intact(ctx, qtbot):
    view = TrainView(ctx)
    qtbot.addWidget(view)
    path = ctx.project.path
    before, labels = _digest(path), {p.id: p.label for p in ctx.project.parts()}
    view.extra_config = {"num_threads": 1}  # the training process: see one_torch_thread
    view.form.set_values({**TINY, "epochs": 50})
    seen = []
    with qtbot.waitSignal(view.run_finished, timeout=60000) as sig:
        view.start()
        assert view.is_running() and view.cancel_btn.isEnabled() and not view.start_btn.isEnabled()
        # cancel once the run is really training (a progress report came back)
        view.worker.progress.connect(seen.append)
        qtbot.waitUntil(lambda: bool(seen), timeout=60000)
        qtbot.mouseClick(view.cancel_btn, qtbot_button())
    assert sig.args[0] == "cancelled", view.last_error
    # the cancelled run's result still arrives (Worker.cancelled carries it): no model, nothing stored
    assert view.last_result is not None and view.last_result.cancelled and view.last_result.model_id is None
    assert view.start_btn.isEnabled() and not view.cancel_btn.isEnabled()
    again = Project.open(path, readonly=True)
    assert again.models() == [] and again.active_model_id in (None, "")
    assert {p.id: p.label for p in again.parts()} == labels
    assert _digest(path) == before  # not a byte changed
    view.shutdown()


def test_finished_run_adds_a_model_and_shows_it(ctx, qtbot):
    view = TrainView(ctx)
    qtbot.addWidget(view)
    assert not view.form.group_by.isEnabled()  # the demo's parts were imported with no fields
    assert not view.form.split_field.isEnabled()
    view.form.set_group_fields(["item", "split"])
    view.form.set_values({"group_by": "item", "split_field": "split", "test_fraction": 0.2})
    values = view.form.values()
    assert values["group_by"] == "item" and values["split_field"] == "split" and values["test_fraction"] == 0.2
    view.form.set_group_fields([])
    view.extra_config = {"num_threads": 1}
    view.form.set_values(TINY)
    view.scratch.setText("⚠ Model old-one was trained from scratch: …")  # what a shown model said
    begun = []
    with qtbot.waitSignal(view.run_finished, timeout=120000) as sig:
        view.start()
        assert view.scratch.text() == ""  # the line spoke of another model
        view.worker.progress.connect(lambda p: isinstance(p.payload, RunStart) and begun.append(view.scratch.text()))
    assert sig.args[0] == "done", view.last_error
    # once the run knows its starting weights (before its first step) the line speaks of the run
    assert begun == ["⚠ This run is trained from scratch: no ImageNet weights were available for mobilenet_v3_small."]
    mid = view.last_result.model_id
    qtbot.waitUntil(lambda: any(c.id == mid for c in view.cards), timeout=20000)
    assert [m["id"] for m in Project.open(ctx.project.path, readonly=True).models()] == [mid]
    assert view.loss_plot.series("train loss")[1]  # live curve drew points
    metrics = view.results.metrics  # drawn one panel per event-loop pass
    qtbot.waitUntil(lambda: metrics.table.rowCount() == 2 and metrics.confusion.rowCount() == 2, timeout=5000)
    assert "SCRATCH" in view.results.metrics.origin.text()  # said clearly, not hidden
    assert "scratch" in view.scratch.text()
    # ROC/PR are the card's stored held-out curves: drawn without a Worker scoring parts again
    card = view.cards[0]
    curves = view.results.metrics.curves
    qtbot.waitUntil(lambda: curves.curve_points("ROC") > 1 and curves.curve_points("PR") > 1, timeout=5000)
    # the headline is the held-out TEST split's (validation chose the epoch and the threshold)
    assert card.headline_split == "test" and card.headline is card.metrics["test"]
    assert curves.curve_points("ROC") == len(card.test.roc.x) and curves.curve_points("PR") == len(card.test.pr.x)
    assert "test (held out)" in metrics.title.text() and "validation (chose epoch" in metrics.summary.text()
    # a budgeted scratch run that dropped to flips after epoch 1 (training.loop) says so under the figures
    why = "short run: the first epoch took 60 s, so about 250 steps fit the budget (< 300): flips only from epoch 2"
    guide = "on: 33 NG training views with defect masks, weight 1 (mean mask loss 0.213)"
    short = dataclasses.replace(card, extra={**card.extra, "recipe": {"name": "scratch", "augment_why": why,
                                                                     "mask_guide": guide}})
    metrics.show_model(short)
    qtbot.waitUntil(lambda: f"<b>augmentation</b> {html.escape(why)}" in metrics.summary.text(), timeout=5000)
    assert f"<b>mask guide</b> {guide}" in metrics.summary.text()
    shown = QTextDocument()
    shown.setHtml(metrics.summary.text())  # as the label draws it: the "< 300" kept, each note on its line
    assert f"augmentation {why}\n" in shown.toPlainText() and f"mask guide {guide}" in shown.toPlainText()
    # this 1-epoch run: the recipe cut augmentation to flips, and its own card says so
    metrics.show_model(card)
    qtbot.waitUntil(lambda: "mask guide" not in metrics.summary.text(), timeout=5000)  # no masks here
    assert "<b>augmentation</b> short run (" in metrics.summary.text()
    assert "<b>weights</b> the average of the last ~1 epoch(s) of weights" in metrics.summary.text()  # EMA
    plain = {k: v for k, v in card.extra["recipe"].items() if k != "augment_why"}
    metrics.show_model(dataclasses.replace(card, extra={**card.extra, "recipe": plain}))
    qtbot.waitUntil(lambda: "augmentation" not in metrics.summary.text(), timeout=5000)
    assert not any(w.is_running() for w in view._side)
    table = view.results.models
    assert table.table.rowCount() == 1 and table.current_id() == mid
    on = [table.table.horizontalHeaderItem(c).text() for c in range(table.table.columnCount())].index("on")
    assert table.table.item(0, on).text() == "test"
    qtbot.mouseClick(table.make_active, qtbot_button())
    assert ctx.writer.flush(10)
    assert Project.open(ctx.project.path, readonly=True).active_model_id == mid
    qtbot.waitUntil(lambda: table.table.item(0, 0).text() == f"● {mid}", timeout=10000)  # marked, bold
    assert table.table.item(0, 0).font().bold() and table.current_id() == mid
    view.shutdown()


def test_a_run_from_an_encoder_that_learned_nothing_says_so(ctx, qtbot):
    """okng pretrain stores an encoder whose loss stayed at chance (it was asked for), but the
    model started from it is no better than scratch: the view says where it started and warns."""
    import numpy as np

    from training.pretrain import PretrainResult, PretrainSpec, learning_check, pretrain_images, save_encoder
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (3, 32, 32), dtype=np.uint8) for _ in range(4)]
    state, _ = pretrain_images(images, PretrainSpec(project="", arch="mobilenet_v3_small", crop=24, batch_size=4,
                                                    method="simclr"),
                               should_stop=iter([False, True]).__next__)
    flat = [round(float(np.log(7)), 4)] * 150
    res = PretrainResult("mobilenet_v3_small", None, 16, 3, 150, 60.0, False, flat, "self-supervised on 16 images "
                         "of this project", *learning_check(flat, 4))
    save_encoder(Project.open(ctx.project.path), state, res,
                 PretrainSpec(project=str(ctx.project.path), arch="mobilenet_v3_small", encoder_id="flat",
                              method="simclr"))
    view = TrainView(ctx)
    qtbot.addWidget(view)
    view.extra_config = {"num_threads": 1}
    view.form.set_values({**TINY, "freeze": "none", "encoder": "flat"})
    with qtbot.waitSignal(view.run_finished, timeout=120000) as sig:
        view.start()
    assert sig.args[0] == "done", view.last_error
    text = view.state.text()
    assert "started from a self-supervised encoder, no ImageNet weights" in text and "SCRATCH" not in text
    assert "⚠ encoder flat did not learn in pretraining" in text
    view.shutdown()


def test_a_long_outcome_is_readable_in_full_in_its_fixed_room(ctx, qtbot):
    """The run's outcome keeps three lines of room (the plots below never re-lay out), and a
    warning after "Model N saved" scrolls inside them instead of being cut off."""
    view = TrainView(ctx)
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    qtbot.waitExposed(view)
    room = view.state_box.height()
    long = ("Model 7 saved — TRAINED FROM SCRATCH (no ImageNet weights found). Test balanced accuracy 0.913 on "
            "45 held-out parts. Select it and press Make active to sort with it."
            + "  ⚠ freeze policy 'last-block' without ImageNet weights: layers 1-3 keep their random start" * 3)
    view._say(long)
    qtbot.waitUntil(lambda: view.state.height() >= view.state.heightForWidth(view.state.width()))
    assert view.state.text() == long
    assert view.state.heightForWidth(view.state.width()) > room  # more than its room holds...
    assert view.state_box.height() == room  # ...and the room did not grow
    bar = view.state_box.verticalScrollBar()
    assert bar.maximum() > 0 and bar.value() == 0  # it scrolls, from the start
    view._say("Idle.")
    qtbot.waitUntil(lambda: bar.maximum() == 0)
    view.shutdown()


def qtbot_button():
    from PyQt6.QtCore import Qt
    return Qt.MouseButton.LeftButton


def test_form_offers_exactly_the_sessions_augmentations():
    from app.widgets.train_form import AUGMENTATIONS, DEFAULT_AUG
    from training.session import AUG_TOGGLES
    assert set(AUGMENTATIONS.values()) == set(AUG_TOGGLES) and set(DEFAULT_AUG) <= set(AUG_TOGGLES)


def test_form_offers_the_tasks_and_passes_the_choice_to_the_session(qtbot):
    from app.widgets.train_form import TrainForm
    from training.session import make_config
    from training.tasks import TASKS
    form = TrainForm()
    qtbot.addWidget(form)
    assert [form.task.itemText(i) for i in range(form.task.count())] == [*TASKS, "segment"]
    # Mask guidance: on by default for OK/NG (the loop's default weight), off -> weight 0
    assert form.use_masks.isChecked() and make_config(form.values()).mask_weight is None
    form.use_masks.setChecked(False)
    assert make_config(form.values()).mask_weight == 0.0
    form.set_values({"task": "classes"})
    assert form.values()["task"] == "classes"
    assert make_config(form.values()).task == "classes"
    # not measured on class models: unticked there, and ticked it asks for the weight explicitly
    assert not form.use_masks.isChecked() and make_config(form.values()).mask_weight == 0.0
    form.set_values({"mask_weight": None})
    assert form.use_masks.isChecked() and make_config(form.values()).mask_weight == 1.0
    form.set_values({"task": "segment"})  # a segment run learns the masks themselves: no such row
    assert not form.form.isRowVisible(form.use_masks)


def test_the_forms_one_click_trains_what_okng_train_trains(qtbot):
    """The window's defaults and `okng train PROJECT`'s give the same run settings (a lighter
    backbone or another batch in the window would give a model the recipe was never measured with)."""
    from app.cli import build_parser
    from app.cli.train import form_values
    from app.widgets.train_form import TrainForm
    from training.session import make_config
    form = TrainForm()
    qtbot.addWidget(form)
    args = build_parser().parse_args(["train", "p.okng"])
    args.group_by = None  # resolved from the project's fields by the CLI (training.grouping); none here
    window, cli = make_config(form.values()), make_config(form_values(args))
    for key in ("task", "arch", "freeze", "recipe", "batch_size", "lr", "optimizer", "epochs",
                "input_size", "test_fraction", "val_fraction", "mask_weight", "group_by"):
        assert getattr(window, key) == getattr(cli, key), key
    assert window.arch == "resnet18" and window.batch_size == 32
    # neither limit, as the CLI: the run's start decides (10 min from scratch, 10 epochs fine-tuning)
    assert window.budget_s is None and cli.budget_s is None and window.epochs is None


def test_the_length_boxes_name_what_a_run_at_auto_will_take(qtbot, monkeypatch, tmp_path):
    """Left at 0, "Train for" and "Epochs" say what the run's start gives: 10 min from scratch,
    10 epochs where ImageNet weights exist (a file in torchvision's cache); a limit set by hand
    turns the other box to "no limit"."""
    import torch
    import torchvision

    import training.weights as w
    from app.widgets.train_form import TrainForm
    from training.recipe import planned_length
    absent, present = tmp_path / "absent.pth", tmp_path / "resnet18.pth"
    paths = {"file": absent}
    monkeypatch.setattr(w, "candidate_paths", lambda arch: [paths["file"]])
    form = TrainForm()
    qtbot.addWidget(form)
    assert (form.minutes.text(), form.epochs.text()) == ("auto: 10 min", "no limit")
    assert planned_length(form.values()) == (600.0, None)
    torch.save(torchvision.models.resnet18().state_dict(), present)
    paths["file"] = present
    form.arch.currentTextChanged.emit("resnet18")  # the form re-reads its plan on a change
    assert (form.minutes.text(), form.epochs.text()) == ("no limit", "auto: 10")
    assert planned_length(form.values()) == (None, 10)
    form.epochs.setValue(4)
    assert form.minutes.text() == "no limit" and planned_length(form.values()) == (None, 4)
    form.epochs.setValue(0)
    form.minutes.setValue(3)
    assert form.epochs.text() == "no limit" and planned_length(form.values()) == (180.0, None)


def test_fields_the_scratch_recipe_replaces_are_greyed_out_and_say_so(qtbot, monkeypatch, tmp_path):
    """Without ImageNet weights the run's optimiser, LR and augmentation are the recipe's: the form
    shows that (disabled, said in the box title and tooltips) until Recipe manual hands them back."""
    import training.weights as w
    from app.widgets.train_form import TrainForm
    monkeypatch.setattr(w, "candidate_paths", lambda arch: [tmp_path / "absent.pth"])
    form = TrainForm()
    qtbot.addWidget(form)
    assert form.scratch_recipe and not form.lr.isEnabled() and not form.optimizer.isEnabled()
    assert not any(cb.isEnabled() for cb in form.aug.values())
    assert "set by the recipe" in form.box.title() and "small shift" in form.box.toolTip()
    assert "AdamW" in form.lr.toolTip()
    form.recipe.setCurrentText("manual")
    assert not form.scratch_recipe and form.lr.isEnabled() and all(cb.isEnabled() for cb in form.aug.values())
    assert form.box.title() == "Augmentations" and form.lr.toolTip() == ""
    form.recipe.setCurrentText("auto")
    form.task.setCurrentText("segment")  # its own loop and flips: the recipe does not apply
    assert not form.scratch_recipe and form.box.title().startswith("Augmentations (segment")


def test_group_by_starts_on_the_parts_item_field_and_keeps_the_users_choice(qtbot):
    """An item field (training.grouping.suggest: by name, not the repeating height column) is the
    Group-parts-by choice when the fields arrive; a field the user picked stays on a refill."""
    from app.widgets.train_form import TrainForm
    from training.grouping import suggest
    form = TrainForm()
    qtbot.addWidget(form)
    fields = ["fold", "height", "item"]
    form.set_group_fields(fields, suggest(fields))
    assert form.values()["group_by"] == "item" and form.values()["split_field"] is None
    form.group_by.setCurrentIndex(form.group_by.findData("fold"))
    form.set_group_fields(fields, suggest(fields))
    assert form.values()["group_by"] == "fold"
    form.set_group_fields(["height"], suggest(["height"]))
    assert form.values()["group_by"] is None


def test_segment_model_shows_its_dice_curves(ctx, qtbot):
    """A stored segmentation model's card (task "segment") draws its validation dice per epoch."""
    from training.card import EpochMetrics, ModelCard
    rows = [{"epoch": e, "dice": 0.2 * e, "dice_per_class": {"a": 0.2 * e}} for e in (1, 2, 3)]
    card = ModelCard("seg-1", "unet-resnet18", task="segment", classes=["a"], created=1.0,
                     history=[EpochMetrics(e, 1.0 / e, 1.0 / e, 0.5, 0.5, None, 1e-3, 1.0) for e in (1, 2, 3)],
                     extra={"segment": {"decoder": "unet", "encoder": "resnet18", "rules": [],
                                        "dice_history": rows}})
    Project.open(ctx.project.path).save_model(card.id, card.to_meta(), b"not used here")
    view = TrainView(ctx)
    qtbot.addWidget(view)
    view.refresh_models(select="seg-1")
    qtbot.waitUntil(lambda: view.acc_plot.series("val dice")[1] == pytest.approx([0.2, 0.4, 0.6]), timeout=20000)


def _logits(y, n_classes: int, seed: int):
    """Random logits with the true class 2 higher: a model that is mostly right."""
    import numpy as np
    logits = np.random.default_rng(seed).normal(0, 1, (len(y), n_classes))
    logits[np.arange(len(y)), y] += 2.0
    return logits


def _store_class_model(ctx, model_id: str, names: list[str], y, logits, verdict_curves: bool) -> None:
    """A classes model's card scored on parts y with these logits, stored in the project (no
    weights: the views only read its card). verdict_curves: the derived OK/NG ROC/PR a card has
    when its split holds OK and NG parts."""
    import numpy as np

    from training.card import ModelCard, SplitMetrics
    from training.metrics import curve_points
    from training.task_metrics import class_curves, multiclass_report
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    roc, pr = curve_points((y != 0).astype(int), 1 - probs[:, 0]) if verdict_curves else (None, None)
    split = SplitMetrics(multiclass_report(y, probs, names), list(range(len(y))), list(map(int, y)),
                         (1 - probs[:, 0]).tolist(), roc, pr, classes=class_curves(y, probs, names))
    card = ModelCard(model_id, "resnet18", task="classes", classes=names, created=1.0, metrics={"val": split})
    Project.open(ctx.project.path).save_model(card.id, card.to_meta(), b"not used here")


def test_class_model_shows_one_roc_and_pr_curve_per_class_in_its_colour(ctx, qtbot):
    """A stored classes model: the N x N confusion matrix, the per-class table, and one one-vs-rest
    ROC and PR curve per class (from the card, in the project's class colours)."""
    import numpy as np

    from training.card import ModelCard
    names = ["OK", *[c.name for c in ctx.project.settings.classes]]
    y = np.repeat(np.arange(len(names)), 6)
    _store_class_model(ctx, "cls-1", names, y, _logits(y, len(names), seed=0), verdict_curves=True)
    view = TrainView(ctx)
    qtbot.addWidget(view)
    view.refresh_models(select="cls-1")
    metrics = view.results.metrics
    curves = metrics.curves
    qtbot.waitUntil(lambda: curves.class_names("PR") == names, timeout=20000)
    assert curves.class_names("ROC") == names
    assert metrics.table.rowCount() == len(names) and metrics.confusion.rowCount() == len(names)
    # more classes than fit as column names: columns numbered as the rows, names in tooltips
    conf = metrics.confusion
    assert len(names) > conf.WORDS
    assert [conf.horizontalHeaderItem(i).text() for i in range(len(names))] == [str(i + 1) for i in range(len(names))]
    assert conf.verticalHeaderItem(1).text() == "2" and metrics.table.item(1, 0).text() == f"2 {names[1]}"
    assert f"2 {names[1]}" in conf.toolTip()
    assert conf.horizontalHeaderItem(1).toolTip() == f"predicted {names[1]}"
    assert conf.item(1, 0).toolTip().startswith(f"true {names[1]}, predicted OK: {conf.item(1, 0).text()} (")
    first = ctx.project.settings.classes[0]
    pen = curves._classes[("ROC", first.name)].opts["pen"]
    assert pen.color().name() == first.color.lower()
    legend = [label.text for _, label in curves._legend["ROC"].items]
    assert legend[0] == "OK/NG" and any(t.startswith(first.name) for t in legend)
    # a verdict model afterwards: the per-class curves go
    view.results.metrics.show_model(ModelCard("v-1", "resnet18", created=2.0))
    qtbot.waitUntil(lambda: curves.class_names() == [], timeout=5000)
    view.shutdown()


def test_run_on_a_ray_cluster_goes_through_the_remote_driver(ctx, qtbot):
    """The form's "Run on" choice sends the run to training.remote (in the child process); an
    address where no cluster listens fails at once with the CLI's message, the project as it was
    (a real run on a local Ray head: tests/training/test_ray_remote.py)."""
    import socket
    view = TrainView(ctx)
    qtbot.addWidget(view)
    assert view.form.cluster() is None and not view.form.ray_address.isEnabled()  # this PC by default
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    view.form.run_on.setCurrentIndex(1)
    view.form.ray_address.setText(f"127.0.0.1:{port}")
    assert view.form.ray_address.isEnabled() and view.form.cluster() == f"127.0.0.1:{port}"
    before = _digest(ctx.project.path)
    view.form.set_values(TINY)
    with qtbot.waitSignal(view.run_finished, timeout=60000) as sig:
        view.start()
        assert "on the Ray cluster at" in view.state.text()
    assert sig.args[0] == "failed" and f"no Ray cluster at 127.0.0.1:{port}" in view.last_error
    assert _digest(ctx.project.path) == before


def test_segment_task_in_the_form_trains_and_its_rule_is_editable(ctx, qtbot):
    """Task segment: encoder/decoder rows instead of the backbone's; the run draws val dice live;
    the results show the area rule, and an edit there is stored on the card."""
    from training.card import read_card
    from training.segment.config import SegConfig
    view = TrainView(ctx)
    qtbot.addWidget(view)
    form = view.form
    form.set_values({"task": "segment", "encoder": "resnet18", "decoder": "fpn", "epochs": 2, "batch_size": 8,
                     "input_size": 40})
    assert form.form.isRowVisible(form.seg_encoder) and not form.form.isRowVisible(form.arch)
    v = form.values()
    assert (v["task"], v["encoder"], v["decoder"], v["input_size"]) == ("segment", "resnet18", "fpn", (64, 64))
    SegConfig.from_values({k: x for k, x in v.items() if k != "task"})  # the session takes them as they are
    assert form.classifier_values()["task"] == "verdict"  # the augmentation preview still renders
    form.set_values({"task": "verdict"})
    assert form.form.isRowVisible(form.arch) and "arch" in form.values()
    form.set_values({"task": "segment", "decoder": "unet", "epochs": 1, "input_size": 32})
    view.extra_config = {"num_threads": 1}
    with qtbot.waitSignal(view.run_finished, timeout=600000) as sig:
        view.start()
    assert sig.args[0] == "done", view.last_error
    assert len(view.acc_plot.series("val dice")[1]) == 1  # drawn live, one point per epoch
    mid = view.last_result.model_id
    qtbot.waitUntil(lambda: any(c.id == mid for c in view.cards), timeout=20000)
    rule = view.results.metrics.rule
    qtbot.waitUntil(lambda: rule.isVisibleTo(view) and rule.table.rowCount() == 4, timeout=5000)
    assert rule.model_id == mid and "dice / IoU" in view.results.metrics.summary.text()
    rule.table.item(0, 2).setText("123")
    rule.table.item(0, 3).setText("")
    qtbot.mouseClick(rule.save_btn, qtbot_button())
    assert ctx.writer.flush(10)
    saved = read_card(Project.open(ctx.project.path, readonly=True), mid).extra["segment"]["rules"][0]
    assert saved["min_area"] == 123 and saved["max_area"] is None
    view.shutdown()


def test_not_available_shows_only_on_an_empty_plot(qtbot):
    """A class model whose test split has no OK part has per-class curves but no OK/NG one: the
    'not available' note sat over the curves. It shows only when the plot has nothing."""
    from app.widgets.plot_curves import RocPrPlot
    plot = RocPrPlot()
    qtbot.addWidget(plot)
    plot.show_curves(None, None)
    assert plot._note["ROC"].isVisible() and plot._note["PR"].isVisible()
    curve = ([0.0, 0.5, 1.0], [0.0, 0.8, 1.0])
    plot.show_class_curves([("crazing", "#e6194b", curve, curve, 0.8, 0.7)])
    assert not plot._note["ROC"].isVisible() and not plot._note["PR"].isVisible()
    plot.show_curves(None, None)  # the OK/NG curve drawn after the class curves: still hidden
    assert not plot._note["ROC"].isVisible()
    plot.show_class_curves([])  # a verdict model with no curve: the plot is empty again
    assert plot._note["ROC"].isVisible()
    plot.show_curves(curve, curve, 0.8, 0.7)
    assert not plot._note["ROC"].isVisible() and plot.curve_points("ROC") == 3


def test_a_class_without_parts_shows_no_figures_and_no_ok_ng_curve(ctx, qtbot):
    """NEU-DET has no OK part: the OK row says "—" (not 0.000, which reads as a class never found)
    and the ROC/PR legends name no OK/NG curve that cannot be drawn."""
    import numpy as np
    names = ["OK", *[c.name for c in ctx.project.settings.classes]]
    y = np.repeat(np.arange(1, len(names)), 6)  # every part NG
    logits = _logits(y, len(names), seed=1)
    logits[:, 0] = -9.0  # nothing is called OK
    _store_class_model(ctx, "neu-like", names, y, logits, verdict_curves=False)
    view = TrainView(ctx)
    qtbot.addWidget(view)
    view.refresh_models(select="neu-like")
    metrics = view.results.metrics
    qtbot.waitUntil(lambda: metrics.curves.class_names("ROC") == names[1:], timeout=20000)
    table = metrics.table
    ok_row = [table.item(0, c).text() for c in range(5)]
    assert ok_row == ["1 OK", "—", "—", "—", "0"]
    assert "none was called it" in table.item(0, 2).toolTip()
    assert table.item(1, 1).text() != "—"  # a class with parts keeps its figures
    legend = [label.text for _, label in metrics.curves._legend["ROC"].items]
    assert "OK/NG" not in legend and len(legend) == len(names) - 1
    # "Compare models": its verdict has one class, so no balanced accuracy to rank it by
    models = view.results.models.table
    cols = [models.horizontalHeaderItem(c).text() for c in range(models.columnCount())]
    row = next(r for r in range(models.rowCount()) if models.item(r, 0).text() == "neu-like")
    assert models.item(row, cols.index("bal. acc.")).text() == "—"
    assert models.item(row, cols.index("accuracy")).text() != "—"
    view.shutdown()
