"""`make bench`: run every benchmark, then gather bench/results/*.md into BENCHMARKS.md.

Usage: python -m bench.run [--only ingest,classify,api,spikes,load] [--collect-only]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
# name -> the command that (re)writes bench/results/<name>.md
BENCHES: dict[str, list[list[str]]] = {
    "ingest": [["-m", "bench.ingest_bench", "--n", "100000"]],
    "classify": [["-m", "bench.classify_bench"]],
    "api": [["-m", "bench.api_bench"]],
    "spikes": [["bench/nab_eval.py"], ["bench/injected_eval.py"], ["-m", "bench.slow_rise_eval"]],
    "load": [["-m", "bench.load_bench", "--posts", "300000", "--reuse"]],
}
ORDER = ["ingest", "classify", "api", "spikes", "load"]


def collect() -> Path:
    """Concatenate the per-benchmark results into BENCHMARKS.md."""
    parts = [
        "# Benchmarks\n",
        "Each section is written by its benchmark (`make bench` runs them all; each names its "
        "machine, commit and command). Numbers from a 2-core machine vary 10-15% run to run.\n",
    ]
    for name in ORDER + sorted(p.stem for p in RESULTS.glob("*.md") if p.stem not in ORDER):
        path = RESULTS / f"{name}.md"
        if path.exists():
            parts.append(path.read_text().strip() + "\n")
    out = ROOT / "BENCHMARKS.md"
    out.write_text("\n".join(parts))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=",".join(ORDER))
    ap.add_argument("--collect-only", action="store_true")
    args = ap.parse_args()
    if not args.collect_only:
        for name in args.only.split(","):
            for cmd in BENCHES[name]:
                print(f"== {name}: {' '.join(cmd)}", flush=True)
                subprocess.run([sys.executable, *cmd], cwd=ROOT, check=True)
    print(f"wrote {collect()}")


if __name__ == "__main__":
    main()
