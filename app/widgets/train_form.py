"""TrainForm: the training settings (backbone, freeze policy, epochs, augmentations, folds...).

The form only holds control values; `values()` gives the plain form values that
training.session.run_session turns into a config (TrainConfig through make_config, or for task
"segment" a SegConfig: the same builders `okng train` uses), so the widget knows nothing of the
training code beyond the names it offers. Task "segment" swaps the classifier's backbone rows
for the segmentation encoder and decoder (the rows one task does not read are hidden).
"""
from __future__ import annotations

from typing import Any

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.widgets.train_procs import ProcsSpin
from training.backbones import BACKBONES
from training.config import TrainConfig
from training.mask_guide import DEFAULT_TASKS, MASK_WEIGHT
from training.recipe import SCRATCH_VALUES, planned_length, planned_scratch_recipe
from training.segment.models import DECODERS, ENCODERS
from training.tasks import TASKS

SEGMENT = "segment"  # the segmentation task (training.session.TRAINERS), not a classifier TASKS entry
SEGMENT_HELP = "a UNet/FPN learning the inspectors' masks: one sigmoid per defect class, verdict from the area rule"
# rows only a classifier run reads (hidden for segment) and only a segment run reads
CLASSIFIER_ROWS = ("arch", "freeze", "recipe", "encoder", "optimizer", "folds", "split_field", "use_masks")
SEGMENT_ROWS = ("seg_encoder", "decoder")
SEG_EPOCHS = 20  # a segment run's epochs when neither limit is set (SegConfig's default)

FREEZE_HELP = {
    "auto": "last block + head with ImageNet weights; every layer without (frozen random layers learn nothing)",
    "head": "train only the classifier head (fast; needs ImageNet weights to be useful)",
    "last-block": "train the last block + head (the bolt study's fine-tuning)",
    "none": "train every layer (from ImageNet weights when available)",
    "scratch": "train every layer from random init (no pretrained weights)",
}
# name shown -> the training session's toggle name (training.session.AUG_TOGGLES)
AUGMENTATIONS = {
    "horizontal flip": "hflip", "vertical flip": "vflip", "rotation": "rotate",
    "random crop": "crop", "small shift": "shift", "brightness / contrast": "brightness_contrast", "HSV": "hsv",
    "Gaussian noise": "noise", "CLAHE": "clahe",
}
RECIPE_HELP = {
    "auto": "the measured from-scratch recipe when no ImageNet weights are used (AdamW, warm-up + cosine "
            "over the run, input size from the data, 1-channel stem for gray views); the settings below otherwise",
    "scratch": "always the from-scratch recipe (it replaces optimizer, LR and augmentations below)",
    "manual": "exactly the settings below",
}
DEFAULT_AUG = ("hflip", "vflip", "brightness_contrast")
DEFAULTS = TrainConfig()  # the form starts where `okng train` does


def _backbones() -> tuple[list[str], dict[str, tuple[int, int]]]:
    return list(BACKBONES), {n: tuple(s.input_size) for n, s in BACKBONES.items()}


class TrainForm(QWidget):
    """Controls for one training run; `changed` fires on any edit (the preview refreshes)."""

    changed = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        names, self.default_sizes = _backbones()
        self.arch = QComboBox()
        self.arch.addItems(names)
        # The window's one click trains what `okng train` trains (TrainConfig's defaults: the backbone
        # and batch the from-scratch recipe was measured with), not a lighter model of its own.
        self.arch.setCurrentText(DEFAULTS.arch if DEFAULTS.arch in names else names[0])
        self.task = QComboBox()
        for name, task in TASKS.items():  # the registry: a new task shows up here by itself
            self.task.addItem(name)
            self.task.setItemData(self.task.count() - 1, task.description, 3)  # 3 = ToolTipRole
        self.task.addItem(SEGMENT)
        self.task.setItemData(self.task.count() - 1, SEGMENT_HELP, 3)
        self.task.setToolTip("What the model learns: OK/NG, which defect class (the project's classes), "
                             "or the defect masks (segment)")
        self.seg_encoder = QComboBox()
        self.seg_encoder.addItems(list(ENCODERS))
        self.seg_encoder.setToolTip("Segmentation encoder: resnet encoders start from local ImageNet weights "
                                    "when installed (okng weights import), the others from scratch")
        self.decoder = QComboBox()
        self.decoder.addItems(list(DECODERS))
        self.freeze = QComboBox()
        for name, help_ in FREEZE_HELP.items():
            self.freeze.addItem(name)
            self.freeze.setItemData(self.freeze.count() - 1, help_, 3)  # 3 = ToolTipRole
        self.freeze.setCurrentText("auto")
        self.recipe = QComboBox()
        self.recipe.addItems(list(RECIPE_HELP))
        for i, help_ in enumerate(RECIPE_HELP.values()):
            self.recipe.setItemData(i, help_, 3)
        # Both start at 0: with neither limit the run takes okng train's default for its start
        # (10 minutes from scratch, 10 epochs fine-tuning ImageNet weights), which the boxes then
        # name (_length_changed) instead of a fixed "10 min" that an ImageNet run would not mean.
        self.minutes = QSpinBox(minimum=0, maximum=24 * 60, value=0)
        self.minutes.setSuffix(" min")
        self.minutes.setToolTip("Train for this long: the LR schedule fits the time and the best epoch on "
                                "validation is kept (with an epoch limit too: whichever ends first)")
        self.epochs = QSpinBox(minimum=0, maximum=500, value=0)
        self.epochs.setToolTip("Stop after this many epochs (with neither limit: 10 epochs with ImageNet "
                               "weights, 10 minutes from scratch)")
        self.encoder = QComboBox(editable=True)
        self.encoder.addItems(["", "latest"])
        self.encoder.setToolTip("Start from this project's self-supervised encoder (okng pretrain): "
                                "latest or an encoder id; empty = ImageNet weights or random init")
        self.batch = QSpinBox(minimum=1, maximum=512, value=DEFAULTS.batch_size)
        self.lr = QDoubleSpinBox(decimals=5, minimum=1e-5, maximum=1.0, singleStep=1e-4, value=DEFAULTS.lr)
        self.optimizer = QComboBox()
        self.optimizer.addItems(["adam", "sgd"])
        self.optimizer.setCurrentText(DEFAULTS.optimizer)
        self.size = QSpinBox(minimum=0, maximum=1024, singleStep=16, value=0)
        self.size.setSuffix(" px")
        self.size.setSpecialValueText("auto")
        self.size.setToolTip("Input size (square). auto: the backbone's with ImageNet weights; from scratch, "
                             "views stretched to 224x224 (less for a project whose pass over the views would "
                             "exceed 60 M pixels, never under 128; never upscaled): the short side keeps its "
                             "detail. Thin defects on large views need a large size or ROI crops.")
        self.use_masks = QCheckBox("also learn where the defect is")
        self.use_masks.setChecked(True)
        self.use_masks.setToolTip("Where NG parts carry defect masks, the classifier also learns which cells of "
                                  "its feature map the mask covers (a mask loss beside the verdict or class "
                                  "loss). The stored model is the plain classifier. On by default for OK/NG "
                                  "models, where it was measured (README: Mask-guided training); a class "
                                  "model gets it when ticked")
        self.folds = QSpinBox(minimum=1, maximum=20, value=1)
        self.folds.setToolTip("1 = one stratified train/validation split; K > 1 = K-fold cross-validation "
                              "(mean +- std reported) inside the parts outside the test split")
        self.seed = QSpinBox(minimum=0, maximum=1_000_000, value=0)
        self.test_fraction = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=0.5, singleStep=0.05, value=0.15)
        self.test_fraction.setToolTip("Parts held out from every choice (best epoch, threshold): the "
                                      "figures shown first. 0 = no test split (validation figures only)")
        self.group_by = QComboBox()
        self.group_by.setToolTip("Keep parts with the same value of this imported field (e.g. item: "
                                 "crops of one scan, photos of one commutator) on one side of every split, so "
                                 "the test figures are not flattered by items seen in training. Chosen for you "
                                 "when the parts have an item field (item, serial, sample, ...)")
        self.split_field = QComboBox()
        self.split_field.setToolTip("A fixed split: this imported field names each part's set (train, val or "
                                    "test), e.g. a lab's agreed test parts or a dataset's published split. "
                                    "Parts without a value are split by the fractions")
        self.set_group_fields([])
        self.procs = ProcsSpin()  # data-parallel processes on this PC (not a TrainConfig field)
        self.task.currentTextChanged.connect(self.procs.set_task)
        self.procs.set_task(self.task.currentText())
        # Where the run trains: here, or on a Ray cluster (training.remote; the same session)
        self.run_on = QComboBox()
        self.run_on.addItems(["this PC", "Ray cluster at"])
        self.run_on.setToolTip("Ray cluster: the labelled parts go to the cluster as a snapshot file, the "
                               "model comes back into this project (okng train --ray)")
        self.ray_address = QLineEdit()
        self.ray_address.setPlaceholderText("gpu-server:10001")
        self.ray_address.setToolTip("The Ray head's address, HOST or HOST:PORT (Ray Client, port 10001 "
                                    "by default; `ray start --head` on the server opens it)")
        self.ray_address.setEnabled(False)
        self.run_on.currentIndexChanged.connect(lambda i: self.ray_address.setEnabled(i == 1))
        self.run_on.currentIndexChanged.connect(lambda i: self.procs.set_elsewhere(i == 1))
        where = QHBoxLayout()
        where.addWidget(self.run_on)
        where.addWidget(self.ray_address, 1)
        self.form = form = QFormLayout()
        form.addRow("Run on", where)
        form.addRow("Processes", self.procs)
        for label, w in (("Task", self.task), ("Encoder", self.seg_encoder), ("Decoder", self.decoder),
                         ("Backbone", self.arch), ("Freeze policy", self.freeze),
                         ("Recipe", self.recipe), ("Train for", self.minutes), ("Epochs", self.epochs),
                         ("Start from encoder", self.encoder),
                         ("Batch size", self.batch), ("Learning rate", self.lr),
                         ("Optimizer", self.optimizer), ("Input size", self.size), ("Defect masks", self.use_masks),
                         ("Folds", self.folds),
                         ("Test fraction", self.test_fraction), ("Group parts by", self.group_by),
                         ("Split from field", self.split_field), ("Seed", self.seed)):
            form.addRow(label, w)
        self.aug: dict[str, QCheckBox] = {}
        box = QGroupBox("Augmentations")
        grid = QGridLayout(box)
        for i, (shown, key) in enumerate(AUGMENTATIONS.items()):
            cb = QCheckBox(shown)
            cb.setChecked(key in DEFAULT_AUG)
            cb.toggled.connect(self.changed.emit)
            self.aug[key] = cb
            grid.addWidget(cb, i // 2, i % 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(form)
        lay.addWidget(box)
        self.arch.currentTextChanged.connect(self._arch_changed)
        for w in (self.task, self.freeze, self.optimizer, self.recipe, self.encoder, self.seg_encoder, self.decoder):
            w.currentTextChanged.connect(self.changed.emit)
        self.task.currentTextChanged.connect(self._task_changed)
        self.box = box
        self.use_masks.toggled.connect(self.changed.emit)
        for s in (self.epochs, self.minutes, self.batch, self.size, self.folds, self.seed):
            s.valueChanged.connect(self.changed.emit)
        self._arch_changed(self.arch.currentText())
        self._task_changed(self.task.currentText())
        for w in (self.task, self.arch, self.freeze, self.recipe, self.encoder):
            w.currentTextChanged.connect(self._recipe_changed)
        for s in (self.minutes, self.epochs):
            s.valueChanged.connect(self._length_changed)
        self._recipe_changed()

    def _length_changed(self, *_: Any) -> None:
        """Name the length a run left at 0/0 will take (training.recipe.planned_length)."""
        if self.segment:
            budget, epochs = None, (None if self.minutes.value() else SEG_EPOCHS)
        else:
            budget, epochs = planned_length(self.classifier_values())
        auto = not self.minutes.value() and not self.epochs.value()
        self.minutes.setSpecialValueText(f"auto: {budget / 60:g} min" if auto and budget else "no limit")
        self.epochs.setSpecialValueText(f"auto: {epochs}" if auto and epochs else "no limit")

    def _recipe_changed(self, *_: Any) -> None:
        """Grey out what the from-scratch recipe sets (optimiser, LR, augmentation) when it will
        run, and say so: the run replaces them, and a box ticked for nothing misleads."""
        scratch = planned_scratch_recipe(self.values())
        self.scratch_recipe = scratch
        self._length_changed()
        for w in (self.optimizer, self.lr, *self.aug.values()):
            w.setEnabled(not scratch)
        why = (f"Set by the from-scratch recipe (no ImageNet weights for {self.arch.currentText()}): AdamW "
               f"{SCRATCH_VALUES['lr']:g} with warm-up and cosine. Recipe manual uses this field.")
        self.lr.setToolTip(why if scratch else "")
        self.optimizer.setToolTip(why if scratch else "")
        if not self.segment:  # a short title: a group box's title does not wrap and widens the form
            self.box.setTitle("Augmentations: set by the recipe" if scratch else "Augmentations")
        self.box.setToolTip("The from-scratch recipe trains with flips, brightness/contrast and a small shift "
                            "(flips only in a short run); Recipe manual uses the boxes" if scratch else "")

    @property
    def segment(self) -> bool:
        return self.task.currentText() == SEGMENT

    def _task_changed(self, task: str) -> None:
        self.use_masks.setChecked(task in DEFAULT_TASKS)  # each task's measured default
        seg = self.segment
        for name in CLASSIFIER_ROWS:
            self.form.setRowVisible(getattr(self, name), not seg)
        for name in SEGMENT_ROWS:
            self.form.setRowVisible(getattr(self, name), seg)
        # A segment run flips / turns image and mask together: the box's other toggles do not apply.
        self.box.setTitle("Augmentations (segment: any box = flips and quarter turns of image and mask)"
                          if seg else "Augmentations")

    def _arch_changed(self, name: str) -> None:
        # The size stays "auto" (or the user's): the run picks it (training.recipe).
        self.changed.emit()

    def set_group_fields(self, names: list[str], suggested: str | None = None) -> None:
        """The part fields the project's parts were imported with (the group-by and split choices);
        `suggested` (training.grouping.suggest: an item field) is chosen to group by unless the
        user's choice is one of the fields."""
        for combo, none in ((self.group_by, "each part alone"), (self.split_field, "drawn by the fractions")):
            keep = combo.currentData()
            if combo is self.group_by and keep not in names:
                keep = suggested
            combo.clear()
            combo.addItem(none, None)
            for name in names:
                combo.addItem(name, name)
            combo.setEnabled(bool(names))
            if keep in names:
                combo.setCurrentIndex(names.index(keep) + 1)

    def set_encoders(self, ids: list[str]) -> None:
        """The project's self-supervised encoders (newest last) as Encoder choices; the text typed
        or chosen stays."""
        keep = self.encoder.currentText()
        self.encoder.clear()
        self.encoder.addItems(["", "latest", *reversed(ids)])
        self.encoder.setCurrentText(keep)

    def cluster(self) -> str | None:
        """The Ray cluster's address when the run goes there; None: this PC."""
        return (self.ray_address.text().strip() or None) if self.run_on.currentIndex() == 1 else None

    def processes(self, task: str | None = None) -> int:
        """How many processes of this PC the run (of `task`, when given) trains in (1: the one
        training child)."""
        return self.procs.processes(task)

    def augmentations(self) -> list[str]:
        return [k for k, cb in self.aug.items() if cb.isChecked()]

    def values(self) -> dict[str, Any]:
        """The settings as plain data (names match TrainConfig fields where they exist; SegConfig's
        for task segment)."""
        return self.segment_values() if self.segment else self.classifier_values()

    def segment_values(self) -> dict[str, Any]:
        """A segment run's SegConfig values (sizes rounded up to the encoder's stride of 32)."""
        s, minutes, epochs = int(self.size.value()), int(self.minutes.value()), int(self.epochs.value())
        out = {"task": SEGMENT, "encoder": self.seg_encoder.currentText(), "decoder": self.decoder.currentText(),
               "epochs": epochs or (None if minutes else SEG_EPOCHS), "time_budget_s": 60.0 * minutes or None,
               "batch_size": int(self.batch.value()), "lr": float(self.lr.value()), "seed": int(self.seed.value()),
               "augment": bool(self.augmentations()), "test_fraction": round(float(self.test_fraction.value()), 3),
               "group_by": self.group_by.currentData()}
        if out["epochs"] is None:  # train for the time: the epoch count only bounds it
            out["epochs"] = 1000
        if s:
            s = max(32, -(-s // 32) * 32)
            out["input_size"] = (s, s)
        return out

    def summary(self) -> str:
        """What a run trains, for the view's status line."""
        if self.segment:
            return f"{self.decoder.currentText()}-{self.seg_encoder.currentText()} (segment)"
        return f"{self.arch.currentText()} ({self.freeze.currentText()})"

    def classifier_values(self) -> dict[str, Any]:
        """A classifier run's values (also what the augmentation preview renders with)."""
        s, minutes, epochs = int(self.size.value()), int(self.minutes.value()), int(self.epochs.value())
        task = "verdict" if self.segment else self.task.currentText()  # the preview of a segment run: a classifier's
        return {"task": task, "arch": self.arch.currentText(), "freeze": self.freeze.currentText(),
                "recipe": self.recipe.currentText(), "budget_s": 60.0 * minutes if minutes else None,
                "epochs": epochs or None, "encoder": self.encoder.currentText().strip() or None,
                "batch_size": int(self.batch.value()),
                "lr": float(self.lr.value()), "optimizer": self.optimizer.currentText(),
                "input_size": (s, s) if s else None, "augment": self.augmentations(), "folds": int(self.folds.value()),
                "seed": int(self.seed.value()), "test_fraction": round(float(self.test_fraction.value()), 3),
                "group_by": self.group_by.currentData(), "split_field": self.split_field.currentData(),
                "mask_weight": (None if task in DEFAULT_TASKS else MASK_WEIGHT) if self.use_masks.isChecked()
                else 0.0}

    def set_values(self, v: dict[str, Any]) -> None:
        """Set controls from a dict like values() (unknown keys ignored)."""
        if "task" in v:
            self.task.setCurrentText(str(v["task"]))
        if "decoder" in v:
            self.decoder.setCurrentText(str(v["decoder"]))
        if v.get("task") == SEGMENT and v.get("encoder"):  # a segment run's encoder is the UNet's
            self.seg_encoder.setCurrentText(str(v["encoder"]))
            v = {k: x for k, x in v.items() if k != "encoder"}
        if "arch" in v:
            self.arch.setCurrentText(str(v["arch"]))
        if "freeze" in v:
            self.freeze.setCurrentText(str(v["freeze"]))
        if "recipe" in v:
            self.recipe.setCurrentText(str(v["recipe"]))
        if "encoder" in v:
            self.encoder.setCurrentText(str(v["encoder"] or ""))
        if "budget_s" in v:
            self.minutes.setValue(round((v["budget_s"] or 0) / 60))
        for key, spin in (("epochs", self.epochs), ("batch_size", self.batch), ("folds", self.folds),
                          ("seed", self.seed)):
            if key in v:
                spin.setValue(int(v[key] or 0))
        if "lr" in v:
            self.lr.setValue(float(v["lr"]))
        if "optimizer" in v:
            self.optimizer.setCurrentText(str(v["optimizer"]))
        if "input_size" in v:
            size = v["input_size"] or 0
            self.size.setValue(int(size[0] if isinstance(size, (tuple, list)) else size))
        if "test_fraction" in v:
            self.test_fraction.setValue(float(v["test_fraction"]))
        for key, combo in (("group_by", self.group_by), ("split_field", self.split_field)):
            if v.get(key) is not None and (i := combo.findData(v[key])) >= 0:
                combo.setCurrentIndex(i)
        if "nproc" in v:
            self.procs.setValue(int(v["nproc"] or 1))
        if "mask_weight" in v:
            self.use_masks.setChecked(v["mask_weight"] is None or float(v["mask_weight"]) > 0)
        if "augment" in v:
            for key, cb in self.aug.items():
                cb.setChecked(key in v["augment"])
