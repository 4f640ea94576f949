#!/usr/bin/env bash
# The recipe of the shipped default model, reduced for a 2-core CPU: h18s from scratch, 192x192
# crops, batch 8, 60 epochs x 400 samples = 3,000 steps (24,000 samples), Adam lr 5e-4 everywhere,
# x0.1 at 87 % and 96 % of the steps. About 95 min on an idle 2-core machine (1.5-2.0 s per step),
# plus 46 min for phase 3 below (the shipped model took 96 + 46 min of compute);
# nothing else may run meanwhile: two torch threads next to another busy process slow down ~10x.
#
# Two phases, as the shipped model was trained:
#   bash h18s_shared_cpu.sh            # phase 1: the RITM resize range 0.75-1.40; press Ctrl-C
#                                      # between steps 1,000 and 1,099 (state saved every 100)
#   bash h18s_shared_cpu.sh --resume --scale-range 0.75 2.25    # phase 2: steps 1,000-3,000
# (the shipped run was also stopped once in phase 2, at step 1,517, and resumed the same way
# from the step-1,500 state).
# Phase 2 widens the resize range because zoom-in shows small objects (nuclei, EM cells) up to 2x
# larger at prediction time than the phase-1 crops did; at step 900 the exact mode (zoom-in 400)
# lost IoU after the second click where the fast mode (zoom-in 256) did not.
# Phase 3, a second run from the phase-2 weights (new Adam state and schedule, half the lr,
# 1,500 steps, ~45 min; in-training val NoC@85/90 went from 10.1/17.3 to 7.1/13.3):
#   bash h18s_shared_cpu.sh --init runs/default_h18s_cpu/model.pth \
#     --out runs/default_h18s_cpu/phase3.pth --epochs 30 --lr 2.5e-4 --seed 1 \
#     --scale-range 0.75 2.25 --val-every 30
# Then ship it: cp runs/default_h18s_cpu/phase3.pth src/napari_ritm/weights/default.pth
set -euo pipefail
SHARED="${NAPARI_RITM_SHARED:-../shared}"
napari-ritm train \
  --data "$SHARED/data/dsb2018" --data "$SHARED/data/isbi2012_em" --data "$SHARED/data/weizmann_horse" \
  --val-split recipes/shared_split.json --balance-sets \
  --model h18s --out runs/default_h18s_cpu/model.pth \
  --crop 192 192 --batch-size 8 --epoch-len 400 --epochs 60 \
  --lr 5e-4 --backbone-lr-mult 1.0 --seed 0 \
  --device cpu --threads 2 --workers 0 \
  --save-every 100 --val-every 12 --val-objects 8 --val-samples 16 "$@"
