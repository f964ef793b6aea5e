"""Byte comparison of the demo-sized run and the benefit recipe written by ``experiments/bytecheck.sh`` before
and after a restructuring: each scores and features file identical as a file, or identical once the
``warnings`` column (#33) is dropped.

    .venv/bin/python experiments/bytecheck_compare.py out/before out/after
"""

import hashlib
import io
import sys

import pandas as pd

B, A = sys.argv[1], sys.argv[2]


def sha(b):
    return hashlib.sha256(b).hexdigest()[:16]


for name in (
    "features.csv",
    "features.ineligible.csv",
    "scores.csv",
    "benefit_features.csv",
    "benefit_features.ineligible.csv",
    "benefit_scores.csv",
):
    before = open(f"{B}/{name}", "rb").read()
    after_raw = open(f"{A}/{name}", "rb").read()
    df = pd.read_csv(io.BytesIO(after_raw), dtype=str, keep_default_na=False)
    had = "warnings" in df.columns
    if had:
        kinds = df["warnings"].value_counts().to_dict()
        df = df.drop(columns="warnings")
    after = df.to_csv(index=False).encode()
    # the file before, read and written the same way (so only the column differs)
    before_rt = pd.read_csv(io.BytesIO(before), dtype=str, keep_default_na=False).to_csv(index=False).encode()
    same_raw = before == after_raw
    print(
        f"{name}: before {sha(before)}, after {sha(after_raw)}; identical as files: {same_raw}; "
        f"identical without the warnings column: {before_rt == after}" + (f"; warnings: {kinds}" if had else "")
    )
