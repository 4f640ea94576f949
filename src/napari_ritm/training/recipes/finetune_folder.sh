#!/usr/bin/env bash
# Fine-tune a model on your own folder (<dir>/images + <dir>/labels, instance ids):
#   bash finetune_folder.sh /path/to/my_cells default my_cells.pth
# 300 steps of 4 crops 256x256 at lr 1e-4 (backbone x0.1); 20 % of the images held out and the
# split written next to the output; about 10-20 min on a laptop CPU.
set -euo pipefail
DATA="$1"; INIT="${2:-default}"; OUT="${3:-finetuned.pth}"
napari-ritm finetune --init "$INIT" --data "$DATA" --out "$OUT" --val-fraction 0.2 "${@:4}"
