#!/usr/bin/env bash
# Regenerates results/illustrative/: the illustrative-example grid on the default env
# (PointWallMT-v0, its preset: 30 epochs of two 400-step rounds), the three frameworks' pairs
# (Separated, Parameters, Data; each without and with QMP) and QMP-Uniform, then the trimmed
# runs and the figures. The committed seeds 1-5 ran with the code of commit d772296. About
# 3 min per run on one idle core (4 min for the Parameters methods); sweep.py runs two at a
# time, and relaunching it skips finished runs and continues unfinished ones from their
# snapshots.
set -euo pipefail
cd "$(dirname "$0")/../.."
SEEDS=${SEEDS:-1 2 3 4 5}
ROOT=data/local/sweeps/illustrative
.venv/bin/python sweep.py --methods dnc_sac qmp_dnc mtsac qmp_sac uds_dnc qmp_uds_dnc \
    --envs PointWallMT-v0 --seeds $SEEDS --name small --log_root $ROOT --jobs 2
.venv/bin/python sweep.py --methods qmp_dnc --flag qmp_selection=uniform \
    --envs PointWallMT-v0 --seeds $SEEDS --name uniform --log_root $ROOT --jobs 2
# Five more seeds of the Parameters pair (committed: run with the code of commit bed5e72).
PARAMETER_SEEDS=${PARAMETER_SEEDS:-6 7 8 9 10}
.venv/bin/python sweep.py --methods mtsac qmp_sac \
    --envs PointWallMT-v0 --seeds $PARAMETER_SEEDS --name small --log_root $ROOT --jobs 2
runs=()
for seed in $SEEDS; do runs+=($ROOT/*_PointWallMT-v0_*_"$seed"); done
for seed in $PARAMETER_SEEDS; do runs+=($ROOT/{mtsac,qmp_sac}_PointWallMT-v0_small_"$seed"); done
.venv/bin/python tools/trim_runs.py "${runs[@]}" --out results/illustrative/runs
.venv/bin/python plot.py results/illustrative/runs --out results/illustrative
