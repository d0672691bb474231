"""docs/BENCH.md's "Try it on any machine" commands, run as written on the shipped sample runs."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def try_it_commands() -> list[str]:
    text = (ROOT / "docs" / "BENCH.md").read_text()
    section = text.split("## Try it on any machine", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"^```shell\n(.*?)^```", section, re.MULTILINE | re.DOTALL).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_the_try_it_section_runs_on_the_shipped_samples(tmp_path):
    commands = try_it_commands()
    assert [c.split()[1] for c in commands] == ["bench.list", "bench.compare", "bench.compare", "bench.plot",
                                                "bench.parse"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_REBUILT_", "REBUILT_"))}
    bin_dir = tmp_path / "bin"  # `inv` as the reader's shell finds it: this interpreter's
    bin_dir.mkdir()
    (bin_dir / "inv").write_text(f"#!/bin/sh\nexec {os.sys.executable} -m invoke \"$@\"\n")
    (bin_dir / "inv").chmod(0o755)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    out = {}
    for command in commands:
        command = command.replace("/tmp/", f"{tmp_path}/")
        r = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{command}\n{r.stdout[-2000:]}{r.stderr[-2000:]}"
        out.setdefault(command.split()[1], []).append(r.stdout)
    listing = out["bench.list"][0].splitlines()
    assert len(listing) == 3 and all("complete" in row and "imitation" in row for row in listing[1:]), listing
    assert "18 worse, 0 better, 0 unchanged" in out["bench.compare"][0]
    assert "exit 1: a regression" in out["bench.compare"][1]
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert '"batch_size": 8' in out["bench.parse"][0] and '"input_len": 128' in out["bench.parse"][0]
    status = subprocess.run(["git", "status", "--porcelain", "--", "bench/samples"], cwd=ROOT, capture_output=True,
                            text=True)
    assert status.stdout == "" or all(line.startswith("??") for line in status.stdout.splitlines()), status.stdout
