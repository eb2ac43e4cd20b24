"""Worker: what each of practicum's features costs on top of a bare Lightning fit; run by fit.py.

    python benchmarks/fit_features.py OUTPUT_DIR EPOCHS ROTATION [--profile-dir DIR]

In one process: an untimed warm-up fit, then the bare fit (fit_lightning.py), each feature alone
on top of it, and every feature at once, in an order rotated by ROTATION so that a change in
machine load hits each of them alike. Reports every fit's time.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import fit_config, report
from fit_by_hand import check_same_settings
from fit_lightning import FEATURES, fit, load_data, prepare

# the fits of one round: "bare", each feature alone, then all of them
ROUND = ["bare", *FEATURES, "all"]
WARM_UP_EPOCHS = 2


def features_of(name: str) -> set[str]:
    return {"bare": set(), "all": set(FEATURES)}.get(name, {name})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("epochs", type=int)
    parser.add_argument("rotation", type=int, help="start the round at this fit")
    parser.add_argument("--profile-dir", help="a pyinstrument profile of each fit, in this folder")
    args = parser.parse_args()

    prepare()
    if args.profile_dir:
        Path(args.profile_dir).mkdir(parents=True, exist_ok=True)
    root = Path(args.output_dir)
    cfg = fit_config(root / "warm-up", args.epochs)
    check_same_settings(cfg)
    datamodule = load_data(cfg)
    # the first fit of a process pays one-off costs (lazy imports, first kernels): not timed
    fit(cfg, datamodule, set(FEATURES), str(root / "warm-up"), WARM_UP_EPOCHS)

    shift = args.rotation % len(ROUND)
    fits = {}
    for name in ROUND[shift:] + ROUND[:shift]:
        profile = f"{args.profile_dir}/{name}.txt" if args.profile_dir else None
        fits[name] = fit(cfg, datamodule, features_of(name), str(root / name), args.epochs, profile)
    report(fits=fits)


if __name__ == "__main__":
    main()
