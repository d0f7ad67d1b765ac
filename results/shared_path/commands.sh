#!/usr/bin/env bash
# Regenerates results/shared_path/: the illustrative-example grid on the default env
# (PointSharedPathMT-v0, its preset: 30 epochs of two 400-step rounds, about 24.6k env steps),
# Separated vs Separated + QMP with 10 seeds, QMP-Uniform, and the Data and Parameters pairs
# with 5, then the trimmed runs and the figures. The committed runs ran with the code of
# commit 5015a68. About 2 min per run on one idle core (twice that for the Parameters
# methods); sweep.py runs two at a time, and relaunching it skips finished runs and continues
# unfinished ones from their snapshots.
set -euo pipefail
cd "$(dirname "$0")/../.."
SEPARATED_SEEDS=${SEPARATED_SEEDS:-1 2 3 4 5 6 7 8 9 10}
SEEDS=${SEEDS:-1 2 3 4 5}
ENV=PointSharedPathMT-v0
ROOT=data/local/sweeps/shared_path
.venv/bin/python sweep.py --methods dnc_sac qmp_dnc --envs $ENV --seeds $SEPARATED_SEEDS \
    --name small --log_root $ROOT --jobs 2
.venv/bin/python sweep.py --methods qmp_dnc --flag qmp_selection=uniform --envs $ENV \
    --seeds $SEEDS --name uniform --log_root $ROOT --jobs 2
.venv/bin/python sweep.py --methods uds_dnc qmp_uds_dnc mtsac qmp_sac --envs $ENV \
    --seeds $SEEDS --name small --log_root $ROOT --jobs 2
runs=()
for seed in $SEPARATED_SEEDS; do runs+=($ROOT/{dnc_sac,qmp_dnc}_${ENV}_small_"$seed"); done
for seed in $SEEDS; do
    runs+=($ROOT/qmp_dnc_${ENV}_uniform_"$seed" $ROOT/{uds_dnc,qmp_uds_dnc,mtsac,qmp_sac}_${ENV}_small_"$seed")
done
.venv/bin/python tools/trim_runs.py "${runs[@]}" --out results/shared_path/runs
.venv/bin/python plot.py results/shared_path/runs --out results/shared_path
# Parameters + QMP at twice the budget (60 epochs), seeds 1 and 2, to test for a budget effect.
.venv/bin/python sweep.py --methods qmp_sac --envs $ENV --seeds 1 2 --flag n_epochs=60 \
    --name long --log_root data/local/sweeps/shared_path_long --jobs 2
.venv/bin/python tools/trim_runs.py data/local/sweeps/shared_path_long/qmp_sac_${ENV}_long_{1,2} \
    --out results/shared_path/runs_long
