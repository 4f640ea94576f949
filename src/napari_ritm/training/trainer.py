"""The RITM training loop: Adam with a slower backbone, MultiStep schedule, iterative clicks.

One function, :func:`train`, serves one CPU, one GPU and many processes: started under
``torchrun`` (environment variables RANK, WORLD_SIZE, LOCAL_RANK) it runs PyTorch DDP (gloo on
CPU, nccl on CUDA) with a DistributedSampler; rank 0 logs, validates and saves.

Outputs next to ``options.out`` (e.g. ``model.pth``):
- ``model.pth``: official checkpoint format {"state_dict", "config"}, every ``save_every`` steps
  and at the end (loadable by :func:`napari_ritm.model.checkpoint.load_checkpoint`);
- ``model.pth.train-state``: weights, optimizer, scheduler, scaler and step, for ``resume``;
- ``model.metrics.csv``: one row per epoch (losses, lr, samples/s, validation loss and NoC).
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from napari_ritm.model.checkpoint import save_checkpoint
from napari_ritm.model.files import atomic_write
from napari_ritm.training.augment import Augmenter
from napari_ritm.training.data import ClickDataset, LabeledImage
from napari_ritm.training.distributed import setup_distributed
from napari_ritm.training.guidance import GuidanceMix
from napari_ritm.training.iterative import simulate_previous_clicks
from napari_ritm.training.losses import RITMLoss
from napari_ritm.training.object_crops import ObjectCropper
from napari_ritm.training.optim import build_optimizer
from napari_ritm.training.options import (
    METRIC_FIELDS,
    TrainOptions,
    kept_path,
    metrics_path,
    resolve_epoch_len,
    state_path,
)
from napari_ritm.training.precision import autocast_dtype
from napari_ritm.training.sampler import MultiPointSampler
from napari_ritm.training.validate import validate


class Trainer:
    """One training run: network, data, optimizer, schedule, checkpoints.

    ``Trainer(net, train_samples, val_samples, options)`` moves ``net`` (an ``RITMNet``) to the
    device, joins the process group when started by torchrun, and loads the trainer state when
    ``options.resume``. ``fit()`` trains to ``options.steps`` and returns a summary dict;
    ``train_step(batch, rng)`` is one optimizer step on a collated batch of
    :class:`~napari_ritm.training.data.ClickDataset` items; ``close()`` leaves the process group.
    """

    def __init__(
        self,
        net: torch.nn.Module,
        train_samples: list[LabeledImage],
        val_samples: list[LabeledImage],
        options: TrainOptions,
    ) -> None:
        if options.steps < 1:
            raise ValueError("steps must be at least 1")
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if options.batch_size % world or options.batch_size // world < 2:
            raise ValueError(
                f"batch size {options.batch_size} must be a multiple of {world} process(es) "
                "with at least 2 images each (BatchNorm needs 2 in training mode)"
            )
        self.o = options
        self.ctx = ctx = setup_distributed(options.device)
        self.local_batch = options.batch_size // ctx.world
        self.memory_format = (torch.channels_last if options.channels_last
                              else torch.contiguous_format)
        self.net = net.to(ctx.device, memory_format=self.memory_format).train()
        self._frozen_norms = freeze_norms(self.net) if options.freeze_norm else []
        self.model = self.net
        if ctx.world > 1:
            ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(self.net, device_ids=ids)
        sampler = MultiPointSampler(options.max_num_points)
        epoch_len = resolve_epoch_len(options.epoch_len, len(train_samples), options.batch_size)
        augmenter = Augmenter(
            options.crop_size, scale_range=options.scale_range, noise_prob=options.noise_prob,
            invert_prob=options.invert_prob, blur_prob=options.blur_prob,
            read_noise_prob=options.read_noise_prob,
        )
        guidance = None
        if options.refine_prob or options.propagate_prob:
            if not options.object_crops:
                raise ValueError("refine and propagate samples need object crops")
            guidance = GuidanceMix(refine_prob=options.refine_prob,
                                   propagate_prob=options.propagate_prob,
                                   focus_strength=options.click_focus)
        self.train_set = ClickDataset(
            train_samples,
            MultiPointSampler(options.max_num_points, single_click_prob=options.single_click_prob),
            crop_size=options.crop_size,
            augmenter=augmenter,
            epoch_len=epoch_len,
            seed=options.seed,
            min_object_area=options.min_object_area,
            balance_sets=options.balance_sets,
            set_weights=dict(options.set_weights),
            object_crops=ObjectCropper(
                options.crop_size,
                cut_prob=options.cut_prob,
                cut_levels=options.cut_levels,
                jitter=options.object_scale_jitter,
                augmenter=augmenter,
            )
            if options.object_crops
            else None,
            tighten_prob=options.tighten_prob,
            tighten_sets=options.tighten_sets,
            guidance=guidance,
        )
        self.val_samples = val_samples
        self.val_set = None
        if val_samples and options.val_samples > 0:
            self.val_set = ClickDataset(
                val_samples,
                sampler,
                crop_size=options.crop_size,
                augmenter=None,
                epoch_len=options.val_samples,
                seed=options.seed + 1,
                min_object_area=options.min_object_area,
            )
        self.dist_sampler = DistributedSampler(
            self.train_set,
            num_replicas=ctx.world,
            rank=ctx.rank,
            shuffle=True,
            seed=options.seed,
            drop_last=True,
        )
        self.steps_per_epoch = len(self.dist_sampler) // self.local_batch
        self.optimizer = build_optimizer(self.net, options.lr, options.backbone_lr_mult)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, self._milestones(), options.lr_gamma
        )
        self.amp_dtype = autocast_dtype(ctx.device, options.amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.loss_fn = RITMLoss()
        self.step = 0
        if options.resume and state_path(options.out).exists():
            self._load_state()

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.ctx.device.type, dtype=self.amp_dtype)

    def loader(self, epoch: int, skip_batches: int = 0) -> DataLoader:
        self.train_set.set_epoch(epoch)
        self.dist_sampler.set_epoch(epoch)
        indices = list(self.dist_sampler)[skip_batches * self.local_batch :]
        return DataLoader(
            self.train_set,
            batch_size=self.local_batch,
            sampler=indices,
            drop_last=True,
            num_workers=self.o.workers,
            pin_memory=self.ctx.device.type == "cuda",
        )

    def train_step(self, batch: dict, rng: np.random.Generator) -> dict[str, float]:
        """One optimizer step on a collated batch; returns loss, nfl, bce and iter_clicks (the
        number of no-grad iterative clicks this step drew)."""
        dev = self.ctx.device
        image = batch["image"].to(dev, non_blocking=True).contiguous(
            memory_format=self.memory_format
        )
        points = batch["points"].to(dev, non_blocking=True)
        gt = batch["gt"].to(dev, non_blocking=True)
        start = batch["prev"].to(dev, non_blocking=True).contiguous(
            memory_format=self.memory_format
        )
        with_prev = self.net.variant.with_prev_mask
        with self.autocast():
            prev, points, clicks = simulate_previous_clicks(
                self.net,
                image,
                points,
                gt,
                max_num_next_clicks=self.o.max_num_next_clicks,
                rng=rng,
                with_prev_mask=with_prev,
                prev_mask=start,
                frozen=batch["frozen"],
            )
            output = self.model(image, points, prev if with_prev else None)
            loss, parts = self.loss_fn(output, gt, batch["weight"].to(dev, non_blocking=True))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        parts = {k: v.item() for k, v in parts.items()}
        return {"loss": loss.item(), **parts, "iter_clicks": float(clicks)}

    def save(self) -> None:
        out = self.o.out
        out.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "step": self.step,
            "state_dict": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "options": {**asdict(self.o), "out": str(out)},
        }
        atomic_write(state_path(out), lambda p: torch.save(state, p))
        save_checkpoint(self.net, out)  # (writes atomically itself)

    def _load_state(self) -> None:
        state = torch.load(state_path(self.o.out), map_location=self.ctx.device, weights_only=True)
        self.net.load_state_dict(state["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        # a resumed run may have a new length: its milestones are fractions of the new --steps
        milestones = self._milestones()
        self.scheduler.milestones = Counter(milestones)
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * self.o.lr_gamma ** bisect.bisect_right(
                milestones, self.step
            )

    def _milestones(self) -> list[int]:
        return sorted({max(1, round(f * self.o.steps)) for f in self.o.milestones})

    def reduce_mean(self, sums: dict[str, float], count: int) -> dict[str, float]:
        keys = sorted(sums)
        values = torch.tensor(
            [sums[k] for k in keys] + [count], dtype=torch.float64, device=self.ctx.device
        )
        if self.ctx.world > 1:
            dist.all_reduce(values)
        n = max(values[-1].item(), 1.0)
        return {k: values[i].item() / n for i, k in enumerate(keys)}

    def fit(self, on_step: Callable[[int, int, float], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> dict:
        """Train to ``options.steps``; ``on_step(step, total, loss)`` is called on rank 0 after each
        step, and ``should_stop()`` (one process only) after it: True ends training there, as
        if the last step had been reached. Writes the metrics row of each epoch, validates,
        saves; returns the last row plus steps, epochs, seconds, validation, checkpoint,
        metrics, world_size and ``stopped`` (ended by ``should_stop``)."""
        o, ctx = self.o, self.ctx
        csv_path = metrics_path(o.out)
        if ctx.main:
            o.out.parent.mkdir(parents=True, exist_ok=True)
            if not (o.resume and csv_path.exists()):
                with open(csv_path, "w", newline="") as f:
                    csv.DictWriter(f, METRIC_FIELDS).writeheader()
        bar = tqdm(
            total=o.steps,
            initial=self.step,
            disable=not (ctx.main and o.progress),
            unit="step",
            dynamic_ncols=True,
        )
        start, row, last_val = time.perf_counter(), {}, {}
        epoch = self.step // self.steps_per_epoch
        stopped = False
        while self.step < o.steps and not stopped:
            sums: dict[str, float] = {}
            count, t0 = 0, time.perf_counter()
            for batch in self.loader(epoch, self.step - epoch * self.steps_per_epoch):
                parts = self.train_step(
                    batch, np.random.default_rng([o.seed, 7, self.step, ctx.rank])
                )
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                speed = count * o.batch_size / (time.perf_counter() - t0)
                bar.set_postfix(
                    epoch=epoch, loss=f"{sums['loss'] / count:.4f}", samples_s=f"{speed:.2f}"
                )
                bar.update(1)
                if ctx.main and on_step is not None:
                    on_step(self.step, o.steps, parts["loss"])
                if (
                    ctx.main
                    and o.save_every
                    and self.step % o.save_every == 0
                    and self.step < o.steps
                ):
                    self.save()
                if ctx.main and o.keep_every and self.step % o.keep_every == 0:
                    save_checkpoint(self.net, kept_path(o.out, self.step))
                stopped = should_stop is not None and should_stop()
                if self.step >= o.steps or stopped:
                    break
            elapsed = time.perf_counter() - t0
            row = {
                "epoch": epoch,
                "step": self.step,
                "lr": self.optimizer.param_groups[-1]["lr"],
                **{k: round(v, 6) for k, v in self.reduce_mean(sums, count).items()},
                "samples_per_s": round(count * o.batch_size / max(elapsed, 1e-9), 3),
                "elapsed_s": round(time.perf_counter() - start, 1),
            }
            last = self.step >= o.steps or stopped
            if ctx.main and self.val_samples and (last or (epoch + 1) % o.val_every == 0):
                last_val = validate(self, np.random.default_rng([o.seed, 11]))
                row.update(last_val)
            if ctx.main:
                with open(csv_path, "a", newline="") as f:
                    csv.DictWriter(f, METRIC_FIELDS).writerow(row)
                bar.write(" ".join(f"{k}={v}" for k, v in row.items()))
            if ctx.world > 1:
                dist.barrier()
            epoch += 1
        bar.close()
        if ctx.main:
            self.save()
        if ctx.world > 1:
            dist.barrier()
        return {
            **row,
            "steps": self.step,
            "epochs": epoch,
            "seconds": round(time.perf_counter() - start, 1),
            "validation": last_val,
            "checkpoint": str(o.out),
            "metrics": str(csv_path),
            "world_size": ctx.world,
            "stopped": stopped,
        }

    def close(self) -> None:
        """Give back frozen BatchNorms their class; leave the process group if this trainer
        joined it."""
        for module in self._frozen_norms:
            module.__class__ = torch.nn.BatchNorm2d
        self._frozen_norms = []
        if self.ctx.owns_group and dist.is_initialized():
            dist.destroy_process_group()


class _FrozenBatchNorm2d(torch.nn.BatchNorm2d):
    """A BatchNorm2d that stays in eval mode whatever ``train()`` asks: it normalises with the
    running statistics learnt before and does not update them (its scale and shift still
    train)."""

    def train(self, mode: bool = True) -> _FrozenBatchNorm2d:
        return super().train(False)


def freeze_norms(net: torch.nn.Module) -> list[torch.nn.Module]:
    """Turn every ``BatchNorm2d`` of ``net`` into a frozen one, in place; returns them (set
    their ``__class__`` back to ``torch.nn.BatchNorm2d`` to undo)."""
    norms = [m for m in net.modules() if type(m) is torch.nn.BatchNorm2d]
    for module in norms:
        module.__class__ = _FrozenBatchNorm2d
        module.eval()
    return norms


def train(
    net: torch.nn.Module,
    train_samples: list[LabeledImage],
    val_samples: list[LabeledImage],
    options: TrainOptions,
    *,
    on_step: Callable[[int, int, float], None] | None = None,
) -> dict:
    """Train ``net`` (an ``RITMNet``, modified in place) on labelled images; see :class:`Trainer`.

    ``val_samples`` may be empty (no validation). Returns the summary dict of ``Trainer.fit``.
    Raises ValueError for inconsistent options.
    """
    trainer = Trainer(net, train_samples, val_samples, options)
    try:
        return trainer.fit(on_step)
    finally:
        trainer.close()
