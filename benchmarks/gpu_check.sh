#!/usr/bin/env bash
# GPU check of the shadow-bank engines: one short unattended run (a few minutes).
#
# On a CUDA machine: measures batched vs sequential shadow models per minute for
# cnn and resnet18 on random CIFAR-shaped tensors (bf16 autocast), writes the
# table to benchmarks/results/shadow_bank_gpu.txt and into docs/performance.md
# (between its gpu-check markers).
# Without CUDA: a seconds-long CPU smoke run of the same code path; it writes
# only $OUT (or /tmp) and leaves docs/performance.md alone.
#
# Usage: bash benchmarks/gpu_check.sh      (PYTHON=... to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  timeout 420 "$PY" benchmarks/shadow_bank.py --gpu-check \
    --out benchmarks/results/shadow_bank_gpu.txt --doc docs/performance.md
  if [ -n "${OUT:-}" ]; then
    cp benchmarks/results/shadow_bank_gpu.txt docs/performance.md "$OUT"/
  fi
else
  echo "no CUDA device here: CPU smoke run of the GPU check (NOT GPU figures; docs untouched)"
  timeout 300 "$PY" benchmarks/shadow_bank.py --gpu-check --tiny \
    --out "${OUT:-/tmp}/shadow_bank_gpu_smoke.txt"
fi
