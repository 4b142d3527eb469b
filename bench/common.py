"""Shared bits of the benchmarks: the machine description and the results files."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).with_name("results")


def machine() -> str:
    """CPU model, cores, memory, Python and the git commit, for the record."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        mem_kb = 0
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = "unknown"
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_kb // 1024 // 1024} GiB, Python "
        f"{platform.python_version()}, commit {commit or 'unknown'}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def write_result(name: str, title: str, body: str, *, machine: str) -> Path:
    """Write bench/results/NAME.md; `make bench` collects these into BENCHMARKS.md."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(f"## {title}\n\nMachine: {machine}\n\n{body}\n")
    return path
