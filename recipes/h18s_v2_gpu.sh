#!/usr/bin/env bash
# The v2 recipe (h18s_v2_cpu.sh, which this runs) on one CUDA GPU for a fixed wall-clock budget:
# the same data, object crops, clicks and loss, with the paper's batch size (32 here, 28 in the
# paper) at its lr and the data loading spread over the CPU cores. A 400-step probe at the
# constant lr measures the speed; the run then gets the number of steps that fills the budget,
# with the lr x0.1 at 87 % and 96 % of it, and keeps a copy every tenth of it (to average with
# `napari-ritm average`, docs/models.md).
#   bash recipes/h18s_v2_gpu.sh DATA_ROOT INIT_CKPT OUT_DIR SECONDS
# DATA_ROOT holds the shared sets (../shared/data); INIT_CKPT is where training starts (the v2
# CPU run's latest checkpoint); PYTHON, WORKERS (default: cores - 2), DEVICE (default cuda),
# PROBE (steps, default 400), EPOCH_LEN (samples, default 12800: the probe is one epoch) and
# TRAIN_OPTIONS (more `napari-ritm train` options, replacing these; e.g. "--lr 5e-5"; not
# --lr-decay-at, which would also decay the probe's lr) may be set.
set -euo pipefail
D=$1 INIT=$2 OUT=$3 BUDGET=$4
PY=${PYTHON:-python3}
WORKERS=${WORKERS:-$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))}
PROBE=${PROBE:-400}
START=$(date +%s)
if compgen -G "$OUT/model.*" > /dev/null; then
  echo "$OUT already holds a run (model.*): give a new OUT_DIR" >&2
  exit 2
fi
mkdir -p "$OUT"
train() {
  # shellcheck disable=SC2086  # TRAIN_OPTIONS holds several words
  NAPARI_RITM="$PY -m napari_ritm.cli" NAPARI_RITM_DATA="$D" \
    bash "$(dirname "$0")/h18s_v2_cpu.sh" \
    --init "$INIT" --out "$OUT/model.pth" --batch-size 32 --epoch-len "${EPOCH_LEN:-12800}" \
    --device "${DEVICE:-cuda}" --threads "$(nproc)" --workers "$WORKERS" --keep-every 0 \
    --val-every 1 --val-samples 64 "$@" ${TRAIN_OPTIONS:-}
}
VAL_OBJECTS=28
if ! train --steps "$PROBE" --save-every "$PROBE" --val-objects 8 --lr-decay-at; then
  echo "probe failed; again without the NoC validation" >&2
  VAL_OBJECTS=0
  rm -f "$OUT"/model.*
  train --steps "$PROBE" --save-every "$PROBE" --val-objects 0 --lr-decay-at
fi
# steps per second: over the epochs after the first (worker start-up, cuDNN tuning) when the
# probe has several, else over the whole probe; 10 % kept in hand
STEPS=$("$PY" - "$OUT/model.metrics.csv" "$BUDGET" "$(( $(date +%s) - START ))" "$PROBE" <<'PYEOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
first, last = (rows[0], rows[-1]) if len(rows) > 1 else ({"step": 0, "elapsed_s": 0}, rows[0])
rate = (int(last["step"]) - int(first["step"])) / (float(last["elapsed_s"]) - float(first["elapsed_s"]))
left = float(sys.argv[2]) - float(sys.argv[3]) - 30
print(int(sys.argv[4]) + max(0, int(0.9 * rate * left)))
PYEOF
)
echo "probe done after $(( $(date +%s) - START )) s; training to step $STEPS"
train --resume --steps "$STEPS" --save-every 1000 --keep-every $(( STEPS / 10 )) \
  --val-every 8 --val-objects "$VAL_OBJECTS"
echo "done after $(( $(date +%s) - START )) s"
