#!/usr/bin/env bash
# Default-model recipe, reduced for a 2-core CPU: h18s from scratch, 192x192 crops, batch 8,
# 10 epochs x 200 samples = 250 steps (2,000 samples), lr 5e-4 everywhere, x0.1 at 87 % and 96 %.
# benchmarks/train_speed.py measured 0.11-0.3 samples/s at 256x256 on the shared 2-core machine,
# so this takes roughly 2-4 hours; it is a stop-gap, the GPU recipe is the real one.
# Resumable: re-run with --resume appended after an interruption; extend with a larger --epochs.
set -euo pipefail
SHARED="${NAPARI_RITM_SHARED:-../shared}"
napari-ritm train \
  --data "$SHARED/data/dsb2018" --data "$SHARED/data/isbi2012_em" --data "$SHARED/data/weizmann_horse" \
  --val-split src/napari_ritm/training/recipes/shared_split.json --balance-sets \
  --model h18s --out runs/default_h18s_cpu/model.pth \
  --crop 192 192 --batch-size 8 --epoch-len 200 --epochs 10 \
  --lr 5e-4 --backbone-lr-mult 1.0 --seed 0 \
  --device cpu --threads 2 --workers 0 \
  --save-every 25 --val-every 5 --val-objects 8 --val-samples 16 "$@"
