"""Learning from the user's labels: "Fit threshold to my labels" and "Adapt model to my labels".

:class:`AdaptPanel` is one of :class:`napari_ritm._qt.widget.RITMWidget`'s panels. Both take the
objects of the current Labels layer that **Learn from** names. The threshold fit clicks once on
each (:func:`napari_ritm.evaluation.threshold.fit_threshold`, seconds) and moves the Threshold
slider to the value that matches them best. The adaptation runs
:func:`napari_ritm.training.adapt.adapt` in a worker thread (one torch thread, so clicking still
works), shows progress and the time left, and lets the user cancel. An adapted model that needs
fewer clicks on the held-back objects is saved in the user's model folder with its card, added
to the Model box and used, and the threshold is then fitted to the same objects with it (the
adaptation learns their shapes, the fit their edges); the model it came from stays in the box,
one click away. A fit is kept in the card of the model in use when it has one or is built in (a
card of its own, :mod:`napari_ritm.model.user_models`), and choosing that model again sets it.
One of the two runs at a time.
"""
from __future__ import annotations

import time
from typing import Any

from napari_ritm._qt.controls import ADAPT_SCOPES
from napari_ritm._qt.model_panel import model_key
from napari_ritm._qt.workers import network_worker, progress_timer

__all__ = ["AdaptPanel"]


class AdaptPanel:
    """The dock's "Adapt model to my labels" and "Fit threshold to my labels" buttons, with
    the work they start. ``host``: the dock widget, whose session, model, Labels layer, status
    line, busy bar and threshold slider they use."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self.adapt_options: Any = None  # AdaptOptions; None: the defaults, a 5-minute budget
        self._adapt_worker: Any = None
        self._adapt_stop = False
        # step, total, start, and when the first training step was done
        self._adapt_progress: tuple[int, int, float, float] = (0, 0, 0.0, 0.0)
        self._adapt_budget: float | None = None  # the training's time budget (s)
        self._adapt_timer: Any = None
        self._adapt_text = host.adapt_button.text()
        self._fit_worker: Any = None
        self._fit_stop = False
        self._fit_progress: tuple[int, int] = (0, 0)
        self._fit_context = ""  # said before the fit's outcome (the adaptation's, if it led)
        self._fit_queued: Any = None  # the adapted model's fit, waiting for one being stopped
        self._fit_timer: Any = None
        self._fit_text = host.fit_button.text()
        host.adapt_button.clicked.connect(self.adapt_model)
        host.fit_button.clicked.connect(self.fit_threshold)

    def adapt_model(self) -> None:
        """Start adapting the current model to the objects of the Labels layer (or cancel)."""
        if self._adapt_worker is not None:
            self._adapt_stop = True
            self.host.say("Stopping the adaptation after the current step...")
            return
        if self.host.session is None or self.host.models.net is None:
            self.host.say("Choose an image and wait for the model before adapting it")
            return
        if self._fit_worker is not None:
            self.host.say("Wait for the threshold fit to finish (seconds) before adapting")
            return
        from napari_ritm.training.adapt import AdaptOptions, adapt

        samples = self._labelled_samples()
        if samples is None:
            return
        options = self.adapt_options or AdaptOptions(max_seconds=300)
        source = self.host.models.model_name
        started = time.perf_counter()
        self._adapt_stop, self._adapt_progress = False, (0, options.steps, started, started)
        self._adapt_budget = options.max_seconds

        def progress(step: int, total: int, loss: float) -> None:  # (in the worker thread)
            first = time.perf_counter() if step == 1 else self._adapt_progress[3]
            self._adapt_progress = (step, total, started, first)

        worker = network_worker(adapt, self.host.models.net, samples, options, on_progress=progress,
                                should_stop=lambda: self._adapt_stop,
                                returned=lambda result: self._adapted(result, source, samples),
                                errored=self._adapt_failed, finished=self._adapt_finished)
        self._adapt_worker = worker
        self._adapt_timer = progress_timer(self.host, self._show_adapt_progress)
        self.host.adapt_button.setText("Cancel adaptation")
        self.host.set_busy("adapt", True, total=options.steps)
        self.host.say(f"Adapting {source} to {self.host.labels_layer.name!r}: comparing it "
                      "first on the objects held back...")
        worker.start()

    def fit_threshold(self) -> None:
        """Move the Threshold slider to the value whose masks best match the objects of the
        Labels layer after one click each (or cancel a fit that runs)."""
        if self._fit_worker is not None:
            self._fit_stop = True
            return
        if self.host.session is None or self.host.models.net is None:
            self.host.say("Choose an image and wait for the model before fitting the threshold")
            return
        if self._adapt_worker is not None:
            self.host.say("An adaptation is running: when its model is kept, the threshold is "
                          "fitted with it")
            return
        samples = self._labelled_samples()
        if samples is not None:
            self._start_fit(samples)

    def _start_fit(self, samples: list, context: str = "") -> None:
        """Fit the threshold to ``samples`` with the model in use, in a worker; ``context`` is
        said before the outcome."""
        from napari_ritm.evaluation.threshold import fit_threshold

        # a predictor of its own: the session's keeps its image and clicks
        predictor, info = self.host.models.new_predictor()
        how = {"mode": info["mode"], **info["settings"]}
        model, current = self.host.models.model_name, self.host.threshold_slider.value() / 100
        self._fit_stop, self._fit_progress, self._fit_context = False, (0, 0), context

        def progress(done: int, total: int) -> None:  # (in the worker thread)
            self._fit_progress = (done, total)

        worker = network_worker(
            fit_threshold, predictor, samples, current=current, on_progress=progress,
            should_stop=lambda: self._fit_stop,
            returned=lambda fit: self._threshold_fitted(fit, model, how, info["sha256"]),
            errored=self._fit_failed, finished=self._fit_finished)
        self._fit_worker = worker
        self._fit_timer = progress_timer(self.host, self._show_fit_progress)
        self.host.fit_button.setText("Stop fitting")
        self.host.set_busy("threshold", True, total=0)
        self.host.say(context + f"Fitting the threshold to {self.host.labels_layer.name!r}: "
                      "one click on each object...")
        worker.start()

    def _show_fit_progress(self) -> None:
        done, total = self._fit_progress
        if self.host._alive and total:
            self.host.show_progress("threshold", done, total,
                               f"Fitting the threshold: object {done} of {total}")

    def _threshold_fitted(self, fit: Any, model: str | None, how: dict,
                          sha256: str | None) -> None:
        """The outcome of a fit made with ``model`` (``how``: its mode and settings; ``sha256``:
        its file's): kept in its card when it can have one, and on the slider while it is
        still the model in use."""
        if not self.host._alive:
            return
        self._fit_timer.stop()  # its next tick would overwrite the outcome with progress
        self._fit_progress = (0, 0)  # (and so would a tick already on its way)

        def say(text: str) -> None:
            self.host.say(self._fit_context + text)

        if self._fit_stop:
            say("Fitting stopped: the threshold is unchanged")
            return
        from napari_ritm.model.user_models import record_threshold

        try:
            kept = (f"; kept in the card of {model!r}"
                    if model is not None and record_threshold(model, fit, how, sha256)
                    is not None else "")
        except OSError as error:
            kept = f"; could not keep it in the card of {model!r}: {error}"
        if model != self.host.models.model_name:
            if model is not None:  # the slider goes to it when that model is chosen again
                self.host.models.model_thresholds[model_key(model)] = fit.threshold
            say(f"Threshold {fit.threshold:.2f} fits your labels with {model!r}, which is no "
                f"longer in use (mean IoU after one click {fit.iou:.3f}){kept}")
        elif fit.threshold == fit.current:
            say(f"The threshold {fit.current:.2f} already fits your labels: no other raises the "
                f"mean IoU after one click ({fit.iou:.3f} on {fit.objects} objects) by 0.01 or "
                f"more{kept}")
        else:
            self.host.threshold_slider.setValue(round(fit.threshold * 100))
            say(f"Threshold {fit.current:.2f} -> {fit.threshold:.2f}: mean IoU after one click "
                f"{fit.iou_current:.3f} -> {fit.iou:.3f} on {fit.objects} of your objects (move "
                f"the slider back to {fit.current:.2f} to undo){kept}")

    def _fit_failed(self, error: BaseException) -> None:
        if self.host._alive:
            self._fit_timer.stop()
            self.host.warn(self._fit_context + f"Fitting the threshold failed: {error}")

    def _fit_finished(self) -> None:
        self._fit_worker, self._fit_context = None, ""
        if not self.host._alive:
            return
        self._fit_timer.stop()
        self.host.fit_button.setText(self._fit_text)
        self.host.set_busy("threshold", False)
        queued, self._fit_queued = self._fit_queued, None
        if queued is not None:
            queued()

    def _labelled_samples(self) -> list | None:
        """The objects "Learn from" names, as training images (None, having said why, when
        there are none)."""
        from napari_ritm.training.data import samples_from_planes

        only = None
        if self.host.adapt_scope_combo.currentText() == ADAPT_SCOPES[1]:  # made in this session
            only = self.host.session.committed_objects()
            if not only:
                self.host.say("No object made in this session yet: segment or correct some, or "
                              "learn from all objects of the layer")
                return None
        try:
            return samples_from_planes(self.host.session.image, self.host.labels_layer.data,
                                       name=self.host.labels_layer.name, only=only)
        except ValueError as error:  # e.g. a labelled plane of a constant image
            self.host.say(f"Cannot learn from {self.host.labels_layer.name!r}: {error}")
            return None

    def _show_adapt_progress(self) -> None:
        step, total, started, first = self._adapt_progress
        if not self.host._alive or not step:
            return
        from napari_ritm.training.adapt import time_left

        left = time_left(step, total, started, first, time.perf_counter(), self._adapt_budget)
        when = ("measuring the speed" if left is None else
                f"about {left / 60:.0f} min left" if left >= 90 else
                f"about {max(left, 1):.0f} s left")
        self.host.show_progress("adapt", step,
                           message=f"Adapting: step {step} of {total}, {when} (you can keep "
                           "clicking)")

    def _adapted(self, result: Any, source: str, samples: list) -> None:
        if not self.host._alive:
            return
        self._adapt_timer.stop()  # its next tick would overwrite the outcome with progress
        self._adapt_progress = (0, *self._adapt_progress[1:])  # (or one already on its way)
        if result is None:
            self.host.say("Adaptation cancelled: the model is unchanged")
            return
        before, after = result.before, result.after
        figures = (f"NoC@85 {before['val_noc85']:.1f} -> {after['val_noc85']:.1f} on "
                   f"{result.held_objects} held-back objects, {result.steps} steps")
        if not result.improved:
            self.host.say(f"The adapted model is no better ({figures}), so it was not kept. "
                          "Segment or correct more objects and try again.")
            return
        from napari_ritm.model.user_models import save_user_model, unique_name

        name = unique_name(f"{source}-adapted")
        save_user_model(result.net, name, result.card(source))
        outcome = (f"Adapted model {name!r} is better ({figures}) and now in use; {source!r} "
                   "is one click away in Model")
        self.host.models.load_model(name, message=outcome,
                        on_loaded=lambda said: self._fit_adapted(said, samples))

    def _fit_adapted(self, outcome: str, samples: list) -> None:
        """Fit the threshold with the adapted model just loaded, on the objects it learnt from;
        its outcome follows the adaptation's. A fit started meanwhile (with the model before)
        is stopped first."""
        if self._fit_worker is not None:
            self._fit_stop = True
            self._fit_queued = lambda: self._fit_adapted(outcome, samples)
        elif self.host.session is not None:
            self._start_fit(samples, outcome + ". ")

    def _adapt_failed(self, error: BaseException) -> None:
        if not self.host._alive:
            return
        self._adapt_timer.stop()
        self.host.warn(f"Adaptation failed: {error}")

    def _adapt_finished(self) -> None:
        self._adapt_worker = None
        if not self.host._alive:
            return
        self._adapt_timer.stop()
        self.host.adapt_button.setText(self._adapt_text)
        self.host.set_busy("adapt", False)
