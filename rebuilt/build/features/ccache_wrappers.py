"""ccache for compilers named by an absolute path (``CC=/opt/gcc/bin/gcc``, ``CXX=/opt/gcc/bin/g++``).

The masquerade folder on PATH (``g++`` -> ccache) only catches compilers looked up by name. A
compiler named by an absolute path bypasses it: torch's ``BuildExtension`` writes ``cxx = $CXX``
into its ninja file (``torch/utils/cpp_extension.py``, ``get_cxx_compiler`` and
``_write_ninja_file``; torch >= 2.10 prepends ccache itself unless ``TORCH_NO_COMPILER_WRAPPER``
is set, older ones never do), setuptools' ``customize_compiler`` compiles with ``$CC``, and
torch passes ``-ccbin $CC`` to nvcc. So a compiling step whose ``CC``/``CXX`` (its own or the
caller's) is an absolute path gets it replaced by a wrapper of the same base name,
``<workdir>/state/ccache-bin/abs/<the real path>``, that runs ``ccache <the real path>``.

The wrapper keeps ccache's key free of the work dir: ccache hashes the compiler it runs (the
real path given to it) and, for nvcc's ``-ccbin``, the size and mtime of the file named there,
so each wrapper has the same bytes in every work dir and the real compiler's mtime.
Run by ccache already (a CMake launcher, ``CMAKE_<LANG>_COMPILER_LAUNCHER=ccache``, in front of
a CMake compiler taken from ``$CC``/``$CXX``) it runs the compiler itself, so nothing is cached twice.
A name that is not a path (``CXX=g++-12``) gets a masquerade link of that name instead.

``CUDAHOSTCXX``, ``NVCC_CCBIN`` and CMake's ``CMAKE_CUDA_HOST_COMPILER`` stay as they are: that
compiler runs inside nvcc, and nvcc itself runs under ccache (``PYTORCH_NVCC``, the CUDA
launcher), whose key includes the host compiler nvcc uses. CMake compilers given as
``-DCMAKE_C_COMPILER=/abs/gcc`` run as ``ccache /abs/gcc`` through the launchers.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

NAMES = ("CC", "CXX")  # the variables whose compiler runs directly (not inside nvcc)


def root(masquerade: Path) -> Path:
    return Path(masquerade) / "abs"


def wrapper_path(masquerade: Path, real: str) -> Path:
    """``/opt/gcc/bin/g++`` -> ``<masquerade>/abs/opt/gcc/bin/g++`` (same base name: tools read it)."""
    return root(masquerade) / real.lstrip("/")


def real_of(masquerade: Path, wrapper: str) -> str | None:
    """The compiler a wrapper path stands for, or None when ``wrapper`` is not one."""
    try:
        return "/" + str(Path(wrapper).relative_to(root(masquerade)))
    except ValueError:
        return None


def _value(name: str, step_env: dict, environ) -> str | None:
    value = step_env[name] if name in step_env else environ.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def env_for(step_env: dict, masquerade: Path, environ=None) -> dict[str, str]:
    """``CC``/``CXX`` pointed at their wrappers, where the step would see an absolute path."""
    environ = os.environ if environ is None else environ
    out = {}
    for name in NAMES:
        value = _value(name, step_env, environ)
        if value and os.path.isabs(value) and " " not in value and real_of(masquerade, value) is None:
            out[name] = str(wrapper_path(masquerade, value))
    return out


def bare_names(step_env: dict, environ=None) -> set[str]:
    """Compilers named without a folder (``CXX=g++-12``): the masquerade folder gets a link of each name."""
    environ = os.environ if environ is None else environ
    values = (_value(n, step_env, environ) for n in NAMES)
    return {v for v in values if v and "/" not in v and " " not in v and v != "ccache"}


def script(real: str) -> str:
    """The wrapper's text: the same in every work dir (ccache hashes its size for nvcc's -ccbin)."""
    q = shlex.quote(real)
    return ("#!/bin/sh\n"
            f"# Written by rebuilt: ccache in front of {real}, named by an absolute path (CC/CXX).\n"
            "# Started by ccache already (a CMake launcher): the compiler itself, so nothing is cached twice.\n"
            'read -r parent 2>/dev/null <"/proc/$PPID/comm" || parent=\n'
            f'[ "$parent" = ccache ] && exec {q} "$@"\n'
            f'exec ccache {q} "$@"\n')


def write(masquerade: Path, real: str) -> Path:
    """Make (or refresh) the wrapper of ``real``; its mtime is the real compiler's (ccache's compiler_check)."""
    path = wrapper_path(masquerade, real)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = script(real)
    if not (path.is_file() and path.read_text() == text):
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, path)
    try:
        mtime = os.stat(real).st_mtime_ns
    except OSError:  # not installed: the step fails naming the real path, as it would without ccache
        return path
    if path.stat().st_mtime_ns != mtime:
        os.utime(path, ns=(mtime, mtime))
    return path
