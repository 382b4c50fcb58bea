"""SDD's variant experiments (not part of `dvc repro`): runs each variant of params.yaml's
`sdd_variants` (or only those named) as a DVC experiment, then collects every variant's newest
experiment into eval/sdd_variants.json for the report. `dvc repro` then updates the report.

    python stages/sdd_variants.py                 # run all variants (about 1 hour on 2 CPU cores)
    python stages/sdd_variants.py k1 swap-uniform # run these, collect all
    python stages/sdd_variants.py --collect-only
"""
import argparse

from textdiff.cli import UsageError, run_stage
from textdiff.variants import collect, read_variants, run_variant

OUT = "eval/sdd_variants.json"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="*", help="variant names (default: all)")
    parser.add_argument("--collect-only", action="store_true")
    args = parser.parse_args()
    variants = read_variants()
    unknown = sorted(set(args.variants) - set(variants))
    if unknown:
        raise UsageError(f"unknown variant {', '.join(unknown)}; params.yaml defines {', '.join(variants)}")
    if not args.collect_only:
        for name in args.variants or variants:
            print(f"--- SDD variant {name}: {variants[name]}", flush=True)
            run_variant(name, variants[name])
    collected = collect(variants, OUT)
    print(f"collected {len(collected)} of {len(variants)} variants into {OUT}")


if __name__ == "__main__":
    run_stage(main)
