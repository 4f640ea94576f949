#!/usr/bin/env bash
# Default-model recipe on one GPU: h18s from scratch, the official 320x480 crops and batch 32,
# AMP, 60 epochs x 3,200 samples = 6,000 steps. Resumable in slices: the first call starts,
# later calls add --resume (the trainer state sits next to --out).
# Several GPUs: prefix with `torchrun --nproc_per_node N` (batch 32 is split over them).
set -euo pipefail
SHARED="${NAPARI_RITM_SHARED:-../shared}"
napari-ritm train \
  --data "$SHARED/data/dsb2018" --data "$SHARED/data/isbi2012_em" --data "$SHARED/data/weizmann_horse" \
  --val-split src/napari_ritm/training/recipes/shared_split.json --balance-sets \
  --model h18s --out runs/default_h18s_gpu/model.pth \
  --crop 320 480 --batch-size 32 --epoch-len 3200 --epochs 60 \
  --lr 5e-4 --backbone-lr-mult 1.0 --seed 0 \
  --device cuda --workers 12 \
  --save-every 200 --val-every 5 --val-objects 24 --val-samples 64 "$@"
