"""The first error lines of a failed step's log, on logs shaped like the real failures: DeepEP v1.2.1
on CUDA 13 (a host-compiled file missing <cuda/std/tuple>, then ninja's and setuptools' tracebacks), its
link against the pip NVSHMEM package, pip's resolver, CMake, nvcc and coloured compiler output."""

from __future__ import annotations

import pytest

from rebuilt.build import builder, logscan

SITE = "/opt/env/lib/python3.11/site-packages"
BUILD = "/w/src/DeepEP/build/temp.linux-x86_64-cpython-311"
FATAL = (f"{SITE}/nvidia/nvshmem/include/device_host/nvshmem_tensor.h:10:10: fatal error: cuda/std/tuple: "
         "No such file or directory")


def traceback_frames(n: int = 30) -> list[str]:
    """The tail of a failed torch cpp_extension build: ninja's CalledProcessError, then setuptools'."""
    frames = ["Traceback (most recent call last):",
              f'  File "{SITE}/torch/utils/cpp_extension.py", line 2595, in _run_ninja_build',
              "    subprocess.run(",
              '  File "/usr/lib/python3.11/subprocess.py", line 571, in run',
              "    raise CalledProcessError(retcode, process.args,",
              "subprocess.CalledProcessError: Command '['ninja', '-v', '-j', '16']' returned non-zero exit status 1.",
              "", "The above exception was the direct cause of the following exception:", "",
              "Traceback (most recent call last):",
              '  File "/w/src/DeepEP/setup.py", line 89, in <module>', "    setuptools.setup("]
    while len(frames) < n - 1:
        frames += [f'  File "{SITE}/setuptools/_distutils/cmd.py", line {300 + len(frames)}, in run_command',
                   "    self.distribution.run_command(command)"]
    return frames[:n - 1] + ["RuntimeError: Error compiling objects for extension"]


def deepep_cccl_log() -> str:
    head = ["# step deepep:build", "# cwd /w/src/DeepEP", "# /opt/env/bin/python setup.py build",
            "+ /opt/env/bin/python setup.py build", "running build", "running build_py",
            "copying deep_ep/__init__.py -> build/lib.linux-x86_64-cpython-311/deep_ep",
            "running build_ext", f"Emitting ninja build file {BUILD}/build.ninja...", "Compiling objects...",
            "Allowing ninja to set a default number of workers... (overridable by setting the environment variable "
            "MAX_JOBS=N)",
            f"[1/6] c++ -MMD -MF {BUILD}/csrc/deep_ep.o.d -Wno-unused-result -Werror=format-security -fPIC "
            f"-I{SITE}/nvidia/nvshmem/include -c -c /w/src/DeepEP/csrc/deep_ep.cpp -o {BUILD}/csrc/deep_ep.o",
            f"FAILED: {BUILD}/csrc/deep_ep.o",
            f"c++ -MMD -MF {BUILD}/csrc/deep_ep.o.d -c -c /w/src/DeepEP/csrc/deep_ep.cpp -o {BUILD}/csrc/deep_ep.o",
            f"In file included from {SITE}/nvidia/nvshmem/include/host/nvshmem_api.h:12,",
            "                 from /w/src/DeepEP/csrc/kernels/configs.cuh:8,",
            "                 from /w/src/DeepEP/csrc/deep_ep.cpp:10:",
            FATAL,
            "   10 | #include <cuda/std/tuple>",
            "      |          ^~~~~~~~~~~~~~~~",
            "compilation terminated."]
    # 70 lines of the other objects compiling (nvcc command lines, warnings that are not errors)
    middle = []
    for i in range(35):
        middle.append(f"[{2 + i % 5}/6] /usr/local/cuda/bin/nvcc --generate-dependencies-with-compile "
                      f"-I/w/src/DeepEP/csrc -c /w/src/DeepEP/csrc/kernels/intranode_{i}.cu -o "
                      f"{BUILD}/csrc/kernels/intranode_{i}.o -D__CUDA_NO_HALF_OPERATORS__ --expt-relaxed-constexpr "
                      f"-Xcompiler -Werror=return-type")
        middle.append(f"/w/src/DeepEP/csrc/kernels/intranode_{i}.cu(41): warning #177-D: variable \"x\" was "
                      f"declared but never referenced")
    tail = ["ninja: build stopped: subcommand failed."] + traceback_frames(30)
    return "\n".join(head + middle + tail) + "\n"


def nvshmem_link_log() -> str:
    lines = ["running bdist_wheel", "running build_ext",
             f"g++ -shared -Wl,-O1 {BUILD}/csrc/deep_ep.o {BUILD}/csrc/kernels/runtime.o "
             f"-L{SITE}/nvidia/nvshmem/lib -L/usr/local/cuda/lib64 -lcudart -l:libnvshmem_host.so "
             "-o build/lib.linux-x86_64-cpython-311/deep_ep_cpp.cpython-311-x86_64-linux-gnu.so",
             "/usr/bin/ld: cannot find -l:libnvshmem_host.so: No such file or directory",
             "collect2: error: ld returned 1 exit status",
             "error: command '/usr/bin/g++' failed with exit code 1"]
    lines += [f"  building wheel step {i}" for i in range(40)]
    return "\n".join(lines + traceback_frames(30)) + "\n"


def write(tmp_path, text: str, name: str = "01-deepep-build.log"):
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def test_deepep_cuda13_failure_shows_the_missing_header_above_the_traceback(tmp_path):
    log = write(tmp_path, deepep_cccl_log())
    tail_text, _ = logscan.tail(log, 30)
    assert FATAL not in tail_text and tail_text.rstrip().endswith("RuntimeError: Error compiling objects for extension")
    text, errors = logscan.excerpt(log)
    assert [(e.kind, e.text) for e in errors] == [("ninja", f"FAILED: {BUILD}/csrc/deep_ep.o"), ("compiler", FATAL)]
    lines = log.read_text().splitlines()
    assert all(lines[e.number - 1] == e.text for e in errors)  # real line numbers
    assert errors[1].number == 18
    assert text.index(FATAL) < text.index("--- last 30 lines of") < text.index("RuntimeError: Error compiling")
    assert "warning #177-D" not in text.split("--- last 30")[0]  # nvcc warnings and -Werror flags are not errors


def test_the_nvshmem_link_failure_shows_the_linker_lines(tmp_path):
    errors = logscan.excerpt(write(tmp_path, nvshmem_link_log()))[1]
    assert [(e.kind, e.text) for e in errors] == [
        ("linker", "/usr/bin/ld: cannot find -l:libnvshmem_host.so: No such file or directory"),
        ("linker", "collect2: error: ld returned 1 exit status"),
        ("compiler", "error: command '/usr/bin/g++' failed with exit code 1")]


def test_pip_resolver_cmake_nvcc_make_and_coloured_compiler_errors(tmp_path):
    text = "\n".join([
        "Collecting xformers==0.0.28.post3 (from -r requirements-cuda.txt (line 9))",
        "ERROR: Cannot install -r requirements-cuda.txt (line 9) because these package versions have conflicting "
        "dependencies.",
        "    xformers 0.0.28.post3 depends on torch==2.5.1",
        "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/",
        "CMake Error at cmake/utils.cmake:124 (message):",
        "nvcc fatal   : Unsupported gpu architecture 'compute_100a'",
        "make[2]: *** [CMakeFiles/common_ops.dir/build.make:76: csrc/allreduce.cu.o] Error 1",
        "\x1b[01m\x1b[K/w/sgl-kernel/csrc/gemm.cu:12:10:\x1b[m\x1b[K \x1b[01;31m\x1b[Kerror: \x1b[m\x1b[K"
        "'cute' has not been declared",
        "/w/sgl-kernel/csrc/moe.cu(88): error: identifier \"__nv_fp8_e4m3\" is undefined",
        "/w/sgl-kernel/csrc/moe.cu(90): error #20: identifier \"__nv_fp8_e5m2\" is undefined",
        "ModuleNotFoundError: No module named 'torch'",
    ] + ["filler"] * 40) + "\n"
    errors = logscan.excerpt(write(tmp_path, text))[1]
    assert [e.kind for e in errors] == ["pip", "pip", "cmake", "nvcc", "make", "compiler", "compiler", "compiler",
                                        "python"]
    assert errors[5].text == "/w/sgl-kernel/csrc/gemm.cu:12:10: error: 'cute' has not been declared"  # colours gone


def test_no_false_errors_and_no_section_when_the_tail_holds_them(tmp_path):
    quiet = "\n".join(["-- Configuring done", "c++ -Werror=format-security -c error_handler.cpp -o error_handler.o",
                       "warning: unused variable 'x' [-Wunused-variable]", "0 errors, 1 warning",
                       "ninja: no work to do."] * 20) + "\n"
    assert logscan.first_errors(write(tmp_path, quiet)) == []
    short = write(tmp_path, "step\nFAILED: a.o\nfatal error: x.h: No such file or directory\n", "short.log")
    text, errors = logscan.excerpt(short)
    assert errors == [] and text.startswith("--- last 30 lines of") and "fatal error: x.h" in text


@pytest.mark.parametrize("block", [7, 64, 1 << 20])
def test_block_boundaries_and_limits_change_nothing(tmp_path, monkeypatch, block):
    """Lines cut by a block boundary are read whole: the same lines and numbers whatever the block size."""
    monkeypatch.setattr(logscan, "BLOCK", block)
    log = write(tmp_path, deepep_cccl_log() + nvshmem_link_log())
    errors = logscan.first_errors(log)
    assert [(e.number, e.kind) for e in errors] == [(13, "ninja"), (18, "compiler"), (98, "python"), (122, "python"),
                                                    (126, "linker"), (127, "linker"), (128, "compiler")]
    assert errors[4].text.startswith("/usr/bin/ld: cannot find")
    assert len(logscan.first_errors(log, limit=2)) == 2
    assert logscan.first_errors(log, stop=log.read_bytes().index(FATAL.encode())) == errors[:1]


def test_tail(tmp_path):
    log = write(tmp_path, "".join(f"line {i}\n" for i in range(100)))
    text, start = logscan.tail(log, 3)
    assert text == "line 97\nline 98\nline 99\n" and log.read_bytes()[start:] == text.encode()
    assert logscan.tail(write(tmp_path, "a\nb", "x.log"), 5) == ("a\nb", 0)
    assert logscan.tail(write(tmp_path, "", "e.log"), 5) == ("", 0)


def test_a_failure_message_puts_the_first_errors_above_the_tail(tmp_path):
    class Step:
        title = "deepep:build"

    message = builder._failure(Step(), "step deepep:build failed: exit status 1 after 2m 3s",
                               write(tmp_path, deepep_cccl_log()))
    lines = message.splitlines()
    assert lines[0] == "step deepep:build failed: exit status 1 after 2m 3s"
    assert lines[1].startswith("--- first error lines of") and lines[3] == f"18: {FATAL}"
    assert message.index(FATAL) < message.index("RuntimeError: Error compiling")
    assert lines[-1].startswith("--- full log:")
