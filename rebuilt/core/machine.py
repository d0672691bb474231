"""What is really here: interpreter, compilers, CUDA, build tools, torch identity, GPUs, cores, memory.

``probe()`` asks the real tools (through the runner) and never fails: a tool that
is absent is ``None``. The interpreter probe reads package metadata and
``torch/version.py`` as text, so it does not import torch (fast, and works for a
broken torch too).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rebuilt.core import probecache, runner

_PY_PROBE = r"""
import json, sys, sysconfig, os
from importlib import metadata, util
def ver(name):
    try: return metadata.version(name)
    except Exception: return None
info = {"version": "%d.%d.%d" % sys.version_info[:3], "executable": sys.executable,
        "prefix": sys.prefix, "base_prefix": sys.base_prefix, "purelib": sysconfig.get_paths()["purelib"],
        "packages": {n: ver(n) for n in NAMES}}
torch = {"version": ver("torch")}
spec = util.find_spec("torch") if torch["version"] else None
if spec and spec.origin:
    torch["path"] = os.path.dirname(spec.origin)
    try:
        text = open(os.path.join(torch["path"], "version.py")).read()
        for key in ("cuda", "git_version", "hip"):
            for line in text.splitlines():
                if line.startswith(key + " ") or line.startswith(key + ":") or line.startswith(key + "="):
                    torch[key] = line.split("=", 1)[1].strip().strip("'\"")
                    if torch[key] == "None": torch[key] = None
    except OSError:
        pass
    try:
        dist = metadata.distribution("torch")
        torch["direct_url"] = dist.read_text("direct_url.json")
        torch["installer"] = (dist.read_text("INSTALLER") or "").strip()
    except Exception:
        pass
info["torch"] = torch
nv = util.find_spec("nvidia.nvshmem") if util.find_spec("nvidia") else None
info["nvshmem"] = list(nv.submodule_search_locations)[0] if nv and nv.submodule_search_locations else None
watch = [p or os.getcwd() for p in sys.path]
for n in NAMES:
    try: watch.append(str(metadata.distribution(n)._path))
    except Exception: pass
if torch.get("path"): watch.append(os.path.join(torch["path"], "version.py"))
info["watch"] = watch
print(json.dumps(info))
"""

WATCHED = ("torch", "torchvision", "torchaudio", "triton", "flashinfer-python", "sgl-kernel", "sglang",
           "vllm", "deep-ep", "uv", "scikit-build-core", "setuptools", "ninja", "nvidia-nvshmem-cu12",
           "nvidia-nvshmem-cu13")


@dataclass
class PythonInfo:
    executable: str
    version: str | None = None
    prefix: str | None = None
    base_prefix: str | None = None
    purelib: str | None = None
    packages: dict = field(default_factory=dict)
    torch: dict = field(default_factory=dict)
    nvshmem: str | None = None
    error: str | None = None

    @property
    def in_venv(self) -> bool:
        return bool(self.prefix and self.base_prefix and self.prefix != self.base_prefix)


@dataclass
class Machine:
    python: PythonInfo
    tools: dict[str, str | None]
    cuda_home: str | None
    nvcc_version: str | None
    cpus: int
    mem_available_gb: float
    mem_total_gb: float
    gpus: list[dict]
    # CUDA 13 keeps libcu++/CUB/Thrust (cuda/std/...) in $CUDA_HOME/include/cccl, which nvcc adds by
    # itself and the host compiler does not; None where that folder does not exist (CUDA 12).
    cuda_cccl: str | None = None
    probe_cache: str | None = None  # where the probe's answers are remembered (None: nowhere)

    def as_dict(self) -> dict:
        return asdict(self)

    def tool_version(self, name: str) -> str | None:
        """The version of a tool the probe did not ask about (``g++-12``, a venv's ``cmake``), remembered like
        the probe's own answers."""
        return self._remembering(tool_version, name)

    def command_output(self, argv: list[str], inputs: tuple[str, ...] = ()) -> str | None:
        """What a query command prints (``ldconfig -p``), None when absent or failing; remembered while the
        program and the files it reads (``inputs``) are unchanged."""
        return self._remembering(_answer, argv, inputs)

    def _remembering(self, ask, *args):
        global _memo
        memo = self.__dict__.get("_memo")
        if memo is None and self.probe_cache:
            memo = self.__dict__["_memo"] = probecache.Memo(Path(self.probe_cache))
        _memo = memo
        try:
            answer = ask(*args)
            if memo:
                memo.save()
        finally:
            _memo = None
        return answer


def probe_python(python: str) -> PythonInfo:
    """Run one small script in the target interpreter (or reuse its remembered answer)."""
    script = _PY_PROBE.replace("NAMES", repr(WATCHED))
    key = probecache.python_key(python, script) if _memo else ""
    hit, out = _memo.get(f"python {python}", key) if _memo else (False, None)
    if hit and out:
        return _python_info(json.loads(out))
    try:
        proc = runner.capture([python, "-c", script], timeout=60)
    except Exception as exc:  # ToolMissing: the interpreter does not exist
        return PythonInfo(executable=python, error=str(exc))
    if proc.returncode != 0:
        return PythonInfo(executable=python, error=(proc.stderr or proc.stdout).strip()[-500:])
    try:
        line = (proc.stdout.strip().splitlines() or [""])[-1]
        data = json.loads(line)
        info = _python_info(data)
    except (ValueError, TypeError, AttributeError):  # not a Python 3 that ran the probe
        return PythonInfo(executable=python, error=f"it answered {proc.stdout.strip()[-200:]!r}, not the probe's JSON")
    if _memo and isinstance(data.get("watch"), list):
        _memo.put(f"python {python}", key, line, [str(w) for w in data["watch"]])
    return info


def _python_info(data: dict) -> PythonInfo:
    return PythonInfo(**{k: v for k, v in data.items() if k in PythonInfo.__dataclass_fields__})


def _answer(argv: list[str], inputs: tuple[str, ...] = ()) -> str | None:
    """What ``argv`` prints (stdout + stderr), or None when absent or failing: remembered while the program and
    the files in ``inputs`` are unchanged."""
    found = runner.which(argv[0])
    key = " ".join([probecache.program_key(found), *(probecache.fingerprint(i) for i in inputs)])
    name = " ".join(argv)
    hit, out = _memo.get(name, key) if _memo else (False, None)
    if hit:
        return out
    out = runner.version_of_all(argv) if found else None
    if _memo and (out is not None or not found):  # a program that is there but failed is asked again next time
        _memo.put(name, key, out)
    return out


def nvcc_version(nvcc: str | None) -> str | None:
    """``release 12.9`` from ``nvcc --version`` -> ``"12.9"``."""
    if not nvcc:
        return None
    out = _answer([nvcc, "--version"])
    m = re.search(r"release (\d+\.\d+)", out or "")
    return m.group(1) if m else None


def find_cuda_home(cuda: str, configured: str = "") -> str | None:
    """The CUDA root for the stack's version: setting, /usr/local/cuda-X.Y, $CUDA_HOME, nvcc on PATH."""
    if configured:
        return configured
    candidate = Path(f"/usr/local/cuda-{cuda}")
    if (candidate / "bin" / "nvcc").exists():
        return str(candidate)
    if os.environ.get("CUDA_HOME"):
        return os.environ["CUDA_HOME"]
    if (Path("/usr/local/cuda") / "bin" / "nvcc").exists():
        return "/usr/local/cuda"
    nvcc = runner.which("nvcc")
    return str(Path(nvcc).resolve().parent.parent) if nvcc else None


def tool_version(name: str) -> str | None:
    """``gcc`` -> ``"12.2.0"``: the first version-looking token the tool prints."""
    flag = "-V" if name in ("redis-server",) else "--version"
    text = (_answer([name, flag]) or "").strip()
    line = text.splitlines()[0] if text else None
    if not line:
        return None
    m = re.search(r"(\d+\.\d+(?:\.\d+)?)", line.split(")")[-1] if name in ("gcc", "g++") else line)
    m = m or re.search(r"(\d+\.\d+(?:\.\d+)?)", line)
    return m.group(1) if m else line


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cgroup_cpu_limit(root: str = "/sys/fs/cgroup") -> float | None:
    """CPUs allowed by a cgroup quota (v2 cpu.max, v1 cfs_quota/period), or None when unlimited."""
    v2 = _read(f"{root}/cpu.max")
    if v2 and not v2.startswith("max"):
        quota, period = v2.split()[:2]
        return int(quota) / int(period)
    quota, period = _read(f"{root}/cpu/cpu.cfs_quota_us"), _read(f"{root}/cpu/cpu.cfs_period_us")
    if quota and period and int(quota) > 0:
        return int(quota) / int(period)
    return None


def cgroup_memory_gb(root: str = "/sys/fs/cgroup") -> float | None:
    """Memory left under a cgroup limit (v2 memory.max, v1 limit_in_bytes) in GiB, or None when unlimited."""
    for limit_f, usage_f in ((f"{root}/memory.max", f"{root}/memory.current"),
                             (f"{root}/memory/memory.limit_in_bytes", f"{root}/memory/memory.usage_in_bytes")):
        limit = _read(limit_f)
        if limit and limit != "max" and int(limit) < 1 << 60:
            usage = int(_read(usage_f) or 0)
            return max(0.0, (int(limit) - usage) / 1024**3)
    return None


def cpus() -> int:
    """CPUs this process may use: its affinity mask, lowered by a cgroup CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        n = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    return max(1, min(n, int(quota))) if quota else n


def meminfo() -> tuple[float, float]:
    """(available GiB, total GiB) from /proc/meminfo, the available part lowered by a cgroup limit."""
    avail = total = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("MemAvailable", "MemTotal"):
                gib = int(rest.split()[0]) / 1024 / 1024
                avail, total = (gib, total) if key == "MemAvailable" else (avail, gib)
    except OSError:
        pass
    limit = cgroup_memory_gb()
    if limit is not None:
        avail = min(avail, limit)
    return round(avail, 1), round(total, 1)


# One GPU query for the whole program (the machine probe, the bench's checks, nox's h200_bench): the notes'
# fields, plus index and uuid to map CUDA_VISIBLE_DEVICES and processes to GPUs.
GPU_FIELDS = ("name", "compute_cap", "memory.total", "driver_version", "memory.used", "index", "uuid")
APP_FIELDS = ("pid", "used_memory", "gpu_uuid")


class NoGpu(Exception):
    """nvidia-smi cannot answer; ``missing``: it is not installed (else it failed)."""

    def __init__(self, message: str, missing: bool):
        super().__init__(message)
        self.missing = missing


def smi_argv(query: str, fields=GPU_FIELDS) -> list[str]:
    """``nvidia-smi --query-gpu=<fields> --format=csv,noheader`` (``query``: query-gpu, query-compute-apps)."""
    return ["nvidia-smi", f"--{query}={','.join(fields)}", "--format=csv,noheader"]


def smi(query: str, fields=GPU_FIELDS, timeout: float = 20) -> list[dict[str, str]]:
    """The rows of one nvidia-smi query as {field: text}; NoGpu when nvidia-smi is absent or fails."""
    from rebuilt.errors import ToolMissing

    if runner.which("nvidia-smi") is None:
        raise NoGpu("nvidia-smi is not on PATH", missing=True)
    try:
        proc = runner.capture(smi_argv(query, fields), timeout=timeout)
    except ToolMissing:
        raise NoGpu("nvidia-smi is not on PATH", missing=True) from None
    if proc.returncode != 0:
        text = (proc.stdout + proc.stderr).strip().splitlines()
        raise NoGpu(f"nvidia-smi failed (exit {proc.returncode}): {text[0] if text else 'no output'}", missing=False)
    return [dict(zip(fields, (v.strip() for v in line.split(",")))) for line in proc.stdout.splitlines()
            if line.strip()]


def _mib(text: str) -> int | None:
    m = re.match(r"\s*(\d+)", text or "")
    return int(m.group(1)) if m else None


def query_gpus(timeout: float = 20) -> list[dict]:
    """Each GPU: index, name, compute_cap, memory_total_mib, memory_used_mib, driver, uuid (NoGpu: see ``smi``)."""
    return [{"index": int(r["index"]) if r.get("index", "").isdigit() else i, "name": r.get("name", "?"),
             "compute_cap": r.get("compute_cap"), "memory_total_mib": _mib(r.get("memory.total", "")),
             "memory_used_mib": _mib(r.get("memory.used", "")), "driver": r.get("driver_version"),
             "uuid": r.get("uuid")}
            for i, r in enumerate(smi("query-gpu", GPU_FIELDS, timeout))]


def gpus() -> list[dict]:
    """The machine probe's GPUs: an empty list when nvidia-smi cannot answer (the probe never fails)."""
    try:
        return query_gpus()
    except NoGpu:
        return []


TOOLS = ("gcc", "g++", "cmake", "ninja", "make", "git", "uv", "ccache")
_memo: probecache.Memo | None = None  # the remembered answers, during one ``probe``


def probe(python: str, cuda: str = "12.9", cuda_home: str = "", host_compiler: str = "",
          cache: Path | None = None) -> Machine:
    """Probe everything the planner and the checks need; ``cache``: the file of remembered answers.

    The interpreter, the tools, nvcc and the GPUs are asked at the same time (each is a process
    that mostly waits on its own start-up).
    """
    global _memo
    from concurrent.futures import ThreadPoolExecutor

    home = find_cuda_home(cuda, cuda_home)
    nvcc = str(Path(home) / "bin" / "nvcc") if home and (Path(home) / "bin" / "nvcc").exists() else runner.which("nvcc")
    names = list(dict.fromkeys((*TOOLS, host_compiler) if host_compiler else TOOLS))
    memo = _memo = probecache.Memo(cache) if cache else None
    try:
        with ThreadPoolExecutor(max_workers=len(names) + 3) as pool:
            py, nv, gp = pool.submit(probe_python, python), pool.submit(nvcc_version, nvcc), pool.submit(gpus)
            versions = {t: pool.submit(tool_version, t) for t in names}
            tools = {t: f.result() for t, f in versions.items()}
            python_info, nvcc_v, gpu_list = py.result(), nv.result(), gp.result()
        if _memo:
            _memo.save()
    finally:
        _memo = None
    avail, total = meminfo()
    cccl = Path(home) / "include" / "cccl" if home else None
    machine = Machine(python=python_info, tools=tools, cuda_home=home, nvcc_version=nvcc_v,
                      cpus=cpus(), mem_available_gb=avail, mem_total_gb=total, gpus=gpu_list,
                      cuda_cccl=str(cccl) if cccl and cccl.is_dir() else None,
                      probe_cache=str(cache) if cache else None)
    machine.__dict__["_memo"] = memo  # later questions (Machine.tool_version) reuse the answers read
    return machine


def disk_free_gb(path: Path) -> float:
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return round(shutil.disk_usage(p).free / 1024**3, 1)
