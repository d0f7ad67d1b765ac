#!/usr/bin/env bash
# Regenerates results/jaco/: the Multistage Reacher runs (JacoReachMT5-v1, the env preset with
# 300 epochs and an evaluation every 5 epochs), their trimmed copies and the figures.
# The runs take about 45 min per (method, seed) on one idle core; sweep.py runs two at a time,
# and relaunching it continues unfinished runs from their snapshots.
set -euo pipefail
cd "$(dirname "$0")/../.."
SEEDS=${SEEDS:-1 2 3}
.venv/bin/python sweep.py --methods dnc_sac qmp_dnc --envs JacoReachMT5-v1 --seeds $SEEDS \
    --flag n_epochs=300 --flag evaluation_frequency=5 --name small \
    --log_root data/local/sweeps/jaco --jobs 2
runs=()
for seed in $SEEDS; do runs+=(data/local/sweeps/jaco/*_JacoReachMT5-v1_small_"$seed"); done
.venv/bin/python tools/trim_runs.py "${runs[@]}" --out results/jaco/runs
.venv/bin/python plot.py results/jaco/runs --out results/jaco
