#!/bin/bash
# Byte check of a restructuring: the demo-sized run and the README benefit recipe, under OUT, with crsml from SRC.
#   experiments/bytecheck.sh /path/to/old/src out/before && experiments/bytecheck.sh src out/after
#   .venv/bin/python experiments/bytecheck_compare.py out/before out/after
set -e
C=$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/crsml
SRC=$(cd "$1" && pwd); O=$2; rm -rf "$O"; mkdir -p "$O"; O=$(cd "$O" && pwd)
export PYTHONPATH=$SRC MLFLOW_TRACKING_URI=sqlite:///$O/mlflow.db
cd $O
$C simulate --n 2000 --seed 1 --out sim > log.txt 2>&1
$C features sim --landmark-h 24 --landmark-h 48 --landmark-h 72 --out features.csv >> log.txt 2>&1
$C train --task severe_crs --cohort sim --landmark-h 48 --trials 20 --model-out m48 >> log.txt 2>&1
$C simulate --n 500 --seed 2 --out new >> log.txt 2>&1
$C score --model m48 --cohort new --out scores.csv >> log.txt 2>&1
$C simulate --n 3000 --seed 1 --profile mixed_practice --out benefit >> log.txt 2>&1
$C train --task tocilizumab_benefit --cohort benefit --landmark-h 48 --trials 2 --extra site --model-out benefit48 >> log.txt 2>&1
$C simulate --n 500 --seed 2 --profile mixed_practice --out benefit_new >> log.txt 2>&1
$C score --model benefit48 --cohort benefit_new --out benefit_scores.csv >> log.txt 2>&1
$C features benefit_new --landmark-h 48 --out benefit_features.csv >> log.txt 2>&1
echo done >> log.txt
