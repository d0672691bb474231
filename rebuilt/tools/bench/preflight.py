"""Checks before anything expensive: GPU, target environment, model path, free GPU memory.

Each ``check_*`` returns a ``Check`` in seconds; ``run`` runs the ones a spec needs and
raises one ``CheckFailed`` listing every failure. Without a GPU it stops at the first
check, so a bench on the wrong machine fails in about a second.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rebuilt.build.checks.model import Check
from rebuilt.core import machine, runner
from rebuilt.errors import CheckFailed, ToolMissing

BUSY_MIB = 1024  # more than this in use on an idle card means someone else holds it
IMPORTS = ("sglang", "sgl_kernel", "flashinfer")
NO_GPU_HINT = "run it on a GPU machine; --dry-run prints the commands anywhere"
PROBE = r"""
import importlib, json, sys
out = {"python": sys.executable, "version": sys.version.split()[0], "modules": {}}
for name in ["torch"] + sys.argv[1:]:
    try:
        mod = importlib.import_module(name)
        ver = getattr(mod, "__version__", None)
        if ver is None:
            from importlib import metadata
            try:
                ver = metadata.version(name.replace("_", "-"))
            except Exception:
                ver = "unknown"
        info = {"version": str(ver), "file": getattr(mod, "__file__", None)}
        if name == "torch":
            info["cuda"] = getattr(mod.version, "cuda", None)
        out["modules"][name] = info
    except BaseException as exc:
        out["modules"][name] = {"error": f"{type(exc).__name__}: {exc}".strip()[:400]}
print("REBUILT_PROBE " + json.dumps(out))
"""


def _no_gpu(exc: machine.NoGpu) -> CheckFailed:
    if exc.missing:
        return CheckFailed(f"no NVIDIA GPU: {exc}", hint=NO_GPU_HINT)
    return CheckFailed(str(exc), hint="is the NVIDIA driver loaded? " + NO_GPU_HINT)


def _smi(query: str, fields: Sequence[str], timeout: float) -> list[dict[str, str]]:
    try:
        return machine.smi(query, fields, timeout)
    except machine.NoGpu as exc:
        raise _no_gpu(exc) from None


def query_gpus(timeout: float = 15) -> list[dict[str, Any]]:
    """The GPUs nvidia-smi lists (rebuilt.core.machine.query_gpus); CheckFailed when there is none."""
    try:
        gpus = machine.query_gpus(timeout)
    except machine.NoGpu as exc:
        raise _no_gpu(exc) from None
    if not gpus:
        raise CheckFailed("no NVIDIA GPU: nvidia-smi lists none", hint=NO_GPU_HINT)
    return gpus


def select(gpus: list[dict], cuda_visible_devices: str | None) -> list[dict]:
    """The GPUs CUDA_VISIBLE_DEVICES leaves visible (indices or UUID prefixes), in its order."""
    if cuda_visible_devices is None:
        return list(gpus)
    chosen = []
    for item in filter(None, (s.strip() for s in str(cuda_visible_devices).split(","))):
        if item.isdigit():
            match = [g for g in gpus if g["index"] == int(item)]
        else:
            match = [g for g in gpus if g.get("uuid") and g["uuid"].startswith(item)]
        if not match:
            break  # CUDA stops at the first invalid entry
        chosen += match
    return chosen


def check_gpus(gpus: list[dict], cuda_visible_devices: str | None, need: int = 1) -> Check:
    """Enough visible GPUs for the spec's tensor parallelism; a warning when they are not H200s."""
    chosen = select(gpus, cuda_visible_devices)
    names = ", ".join(f"{g['index']}: {g['name']} (sm {g['compute_cap']}, {g['memory_total_mib']} MiB)"
                      for g in chosen) or "none"
    data = {"gpus": gpus, "selected": [g["index"] for g in chosen], "cuda_visible_devices": cuda_visible_devices}
    if len(chosen) < need:
        return Check("gpu", "fail", f"{need} GPU(s) needed, {len(chosen)} visible with "
                     f"CUDA_VISIBLE_DEVICES={cuda_visible_devices!r} (machine has {len(gpus)})", data=data)
    others = [g for g in chosen if "H200" not in g["name"]]
    if others:
        return Check("gpu", "warn", f"{names}; not an H200, so numbers are not comparable with H200 runs", data=data)
    return Check("gpu", "ok", names, data=data)


def check_gpu_free(gpus: list[dict], cuda_visible_devices: str | None, timeout: float = 15) -> Check:
    """No other process holds memory on the GPUs this run will use."""
    chosen = select(gpus, cuda_visible_devices)
    uuids = {g["uuid"] for g in chosen}
    apps = [a for a in _smi("query-compute-apps", machine.APP_FIELDS, timeout)
            if not a.get("gpu_uuid") or a.get("gpu_uuid") in uuids]
    if apps:
        procs = ", ".join(f"pid {a.get('pid')} ({a.get('used_memory')})" for a in apps)
        return Check("gpu-free", "fail", f"other processes hold GPU memory: {procs}", data={"apps": apps})
    busy = [g for g in chosen if (g["memory_used_mib"] or 0) > BUSY_MIB]
    if busy:
        used = ", ".join(f"GPU {g['index']}: {g['memory_used_mib']} MiB used" for g in busy)
        return Check("gpu-free", "fail", f"{used} by a process not visible here (another container?)")
    return Check("gpu-free", "ok", "no other process on the selected GPUs")


def check_imports(python: str, modules: Sequence[str] = IMPORTS, env: Mapping[str, str] | None = None,
                  timeout: float = 300) -> Check:
    """One probe run with the target interpreter: torch and ``modules`` import, with versions."""
    try:
        proc = runner.capture([python, "-c", PROBE, *modules], env=env, timeout=timeout)
    except ToolMissing:
        return Check("imports", "fail", f"target interpreter {python} does not exist")
    line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("REBUILT_PROBE ")), None)
    if line is None:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        return Check("imports", "fail", f"{python} could not run the import probe "
                     f"(exit {proc.returncode}): {' | '.join(tail)}")
    data = json.loads(line[len("REBUILT_PROBE "):])
    mods = data["modules"]
    bad = [f"{name}: {info['error']}" for name, info in mods.items() if "error" in info]
    have = ", ".join(f"{n} {i['version']}" for n, i in mods.items() if "version" in i)
    if bad:
        return Check("imports", "fail", f"in {python}: " + "; ".join(bad), data=data)
    return Check("imports", "ok", f"{have} ({python}, Python {data['version']})", data=data)


def check_model_path(model_path: str | None) -> Check:
    """The model is a local folder (with config.json); a hub id only warns, it needs network."""
    if not model_path:
        return Check("model", "fail", "no model path: pass --model-path or set bench.model_path")
    p = Path(model_path).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            return Check("model", "warn", f"{p} has no config.json")
        return Check("model", "ok", str(p))
    if re.fullmatch(r"[\w.-]+/[\w.-]+", model_path) and not model_path.startswith("."):
        return Check("model", "warn", f"{model_path} is not a local folder: sglang will fetch it from the hub")
    return Check("model", "fail", f"model path {model_path} does not exist")


def check_tool(program: str, why: str) -> Check:
    path = runner.which(program)
    if path is None:
        return Check(program, "fail", f"{program} is not on PATH ({why})")
    return Check(program, "ok", path)


def check_server(base_url: str, timeout: float = 5, hint: str = "") -> Check:
    """The sglang server a serving spec runs against answers ``/health``."""
    from rebuilt.core import net

    try:  # the whole request within ``timeout``, however slowly the server answers
        status = net.request("GET", base_url.rstrip("/") + "/health", deadline=timeout).status
    except net.NetError as exc:
        return Check("server", "fail", f"no sglang server at {base_url} ({exc.reason}){hint}")
    if status != 200:
        return Check("server", "fail", f"{base_url}/health answered {status}{hint}")
    return Check("server", "ok", f"{base_url} is up")


def tp_of(server_flags: Mapping[str, Any]) -> int:
    for key in ("tp", "tp-size", "tensor-parallel-size"):
        if key in server_flags:
            return int(server_flags[key])
    return 1


def raise_failures(checks: list[Check]) -> list[Check]:
    failed = [c for c in checks if c.status == "fail"]
    if failed:
        lines = "\n  ".join(c.line() for c in failed)
        raise CheckFailed(f"bench preflight failed:\n  {lines}")
    return checks


def run(spec, *, python: str, model_path: str | None, cuda_visible_devices: str | None = None,
        env: Mapping[str, str] | None = None, base_url: str | None = None,
        server_hint: str = "") -> list[Check]:
    """All checks a spec needs; raises CheckFailed (one message) when any fails, else returns them."""
    checks: list[Check] = []
    if spec.kind == "one_batch":
        gpus = query_gpus()  # no GPU: raises here, in about a second
        checks.append(check_gpus(gpus, cuda_visible_devices, tp_of(spec.server)))
        raise_failures(checks)
        checks.append(check_gpu_free(gpus, cuda_visible_devices))
        checks.append(check_model_path(model_path))
        checks.append(check_imports(python, IMPORTS, env))
        if spec.wrappers.nsys:
            checks.append(check_tool(spec.wrappers.nsys_program, "the spec wraps the bench in nsys profile"))
    else:
        from rebuilt.tools.bench.spec import DEFAULT_BASE_URL

        if not spec.profile:  # a profile's roles are started (or found) and checked by the run
            checks.append(check_server(base_url or DEFAULT_BASE_URL, hint=server_hint))
        checks.append(check_imports(python, ("sglang",), env))
    return raise_failures(checks)
