"""The FetchContent reader: sgl-kernel's declarations, vLLM's real CMake files, and what it reports."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from rebuilt.build import fetchcontent

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "upstream_cmake"
VLLM_SDIST = Path(os.path.expanduser("~/.cache/rebuilt-tests/sdists/vllm-0.6.4.post1.tar.gz"))

SGL_KERNEL = {
    "repo-cutlass": ("https://github.com/NVIDIA/cutlass", "57e3cfb47a2d9e0d46eb6335c3dc411498efa198"),
    "repo-deepgemm": ("https://github.com/sgl-project/DeepGEMM", "f4adba8a6695e635b0106ce3dae3202016ad0ee5"),
    "repo-fmt": ("https://github.com/fmtlib/fmt", "553ec11ec06fbe0beebfbb45f9dc3c9eabd83d28"),
    "repo-triton": ("https://github.com/triton-lang/triton", "8f9f695ea8fde23a0c7c88e4ab256634ca27789f"),
    "repo-flashinfer": ("https://github.com/flashinfer-ai/flashinfer.git", "bc29697ba20b7e6bdb728ded98f04788e16ee021"),
    "repo-flash-attention": ("https://github.com/sgl-project/sgl-attn", "f20a52329482ddca4a627b2f028f88c2959ee299"),
    "repo-flash-attention-origin": ("https://github.com/Dao-AILab/flash-attention.git",
                                    "9dbed03d1a7a5862998c182c83d8265fea9dc21b"),
    "repo-mscclpp": ("https://github.com/microsoft/mscclpp.git", "51eca89d20f0cfb3764ccd764338d7b22cd486a6"),
    "repo-fast-hadamard-transform": ("https://github.com/sgl-project/fast-hadamard-transform.git",
                                     "48f3c13764dc2ec662ade842a4696a90a137f1bc"),
    "repo-flashmla": ("https://github.com/sgl-project/FlashMLA", "bc8576abc3e507425cf6498f3d3393df7733ce37"),
}


def test_sgl_kernel_every_dependency_with_its_commit():
    scan = fetchcontent.scan(FIX / "sgl-kernel-v0.5.4")
    assert {n: (d.git_repository, d.git_tag) for n, d in scan.deps.items()} == SGL_KERNEL
    assert scan.deps["repo-flashmla"].where == "cmake/flashmla.cmake:3"  # found through include()
    assert scan.files == ["CMakeLists.txt", "cmake/utils.cmake", "cmake/flashmla.cmake"]
    assert scan.subprojects == ["repo-mscclpp"]  # its own json/nanobind/dlpack: read once it is fetched
    assert scan.problems == []
    assert scan.deps["repo-flash-attention-origin"].cmake_var == "FETCHCONTENT_SOURCE_DIR_REPO-FLASH-ATTENTION-ORIGIN"


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_variables_includes_and_subdirectories(tmp_path):
    root = _tree(tmp_path, {
        "CMakeLists.txt": "set(BASE https://git.example/org)\nset(TAG v1.2 CACHE STRING \"the tag\")\n"
                          "list(APPEND CMAKE_MODULE_PATH ${CMAKE_CURRENT_LIST_DIR}/mods)\ninclude(Deps)\n"
                          "add_subdirectory(sub)\n#[[ FetchContent_Declare(ghost GIT_REPOSITORY x GIT_TAG y) ]]\n",
        "mods/Deps.cmake": "FetchContent_Declare(a GIT_REPOSITORY ${BASE}/a.git GIT_TAG ${TAG})\n",
        "sub/CMakeLists.txt": "if(WITH_B)\n  FetchContent_Declare(b URL https://x.example/b.tgz URL_HASH SHA256=ab)\n"
                              "endif()\nFetchContent_MakeAvailable(b)\n",
    })
    scan = fetchcontent.scan(root)
    assert (scan.deps["a"].git_repository, scan.deps["a"].git_tag) == ("https://git.example/org/a.git", "v1.2")
    assert (scan.deps["b"].url, scan.deps["b"].url_hash, scan.deps["b"].conditional) == \
        ("https://x.example/b.tgz", "SHA256=ab", True)
    assert "ghost" not in scan.deps and scan.subprojects == ["b"] and scan.problems == []


def test_what_it_cannot_follow_is_reported_with_file_and_line(tmp_path):
    root = _tree(tmp_path, {"CMakeLists.txt": "\n".join([
        "FetchContent_Declare(e GIT_REPOSITORY $ENV{MIRROR}/e.git GIT_TAG v1)",
        "FetchContent_Declare(u GIT_REPOSITORY ${NOT_SET}/u.git GIT_TAG v1)",
        "FetchContent_Declare(h GIT_REPOSITORY https://x.example/h.git)",
        "ExternalProject_Add(ep URL https://x.example/ep.tgz)",
        "file(DOWNLOAD https://x.example/f.txt f.txt)",
        "include(cmake/generated.cmake)",
        "CPMAddPackage(NAME cpm)",
        "FetchContent_Declare(h GIT_REPOSITORY https://x.example/other.git GIT_TAG v2)",
    ]) + "\n"})
    scan = fetchcontent.scan(root)
    text = [str(p) for p in scan.problems]
    assert text[0].startswith("CMakeLists.txt:1: e GIT_REPOSITORY") and "MIRROR" in text[0]
    assert text[1].startswith("CMakeLists.txt:2: u GIT_REPOSITORY") and "NOT_SET" in text[1]
    assert text[2].startswith("CMakeLists.txt:3: h: GIT_REPOSITORY without GIT_TAG")
    assert text[3].startswith("CMakeLists.txt:4: ExternalProject_Add(ep)")
    assert text[4].startswith("CMakeLists.txt:5: file(DOWNLOAD https://x.example/f.txt)")
    assert text[5].startswith("CMakeLists.txt:6: include(cmake/generated.cmake): not found")
    assert text[6].startswith("CMakeLists.txt:7: cpmaddpackage")
    assert text[7].startswith("CMakeLists.txt:8: h: declared again (first at CMakeLists.txt:3)")
    assert list(scan.deps) == ["h"]  # the others could not be resolved: reported above, not guessed


def test_a_variable_set_differently_in_if_branches_is_reported(tmp_path):
    # the shape of sgl-kernel's CMakeLists.txt in 2025 before the pins: DeepGEMM's repository and tag by CUDA version
    root = _tree(tmp_path, {"CMakeLists.txt": "\n".join([
        'if("${CUDA_VERSION}" VERSION_EQUAL "12.8")',
        '  set(DG_REPO "https://github.com/sgl-project/DeepGEMM")',
        '  set(DG_TAG "blackwell")',
        "else()",
        '  set(DG_REPO "https://github.com/deepseek-ai/DeepGEMM")',
        '  set(DG_TAG "8dfa3298274bfe6b242f6f8a3e6f3eff2707dd9f")',
        "endif()",
        "FetchContent_Declare(repo-deepgemm GIT_REPOSITORY ${DG_REPO} GIT_TAG ${DG_TAG})",
    ]) + "\n"})
    scan = fetchcontent.scan(root)
    assert (scan.deps["repo-deepgemm"].git_repository, scan.deps["repo-deepgemm"].git_tag) == \
        ("https://github.com/sgl-project/DeepGEMM", "blackwell")
    text = [str(p) for p in scan.problems]
    assert text == [
        "CMakeLists.txt:8: repo-deepgemm GIT_REPOSITORY: DG_REPO is set under conditions to "
        "https://github.com/sgl-project/DeepGEMM | https://github.com/deepseek-ai/DeepGEMM; the first is used here "
        "(a build that takes another branch needs that one bundled too)",
        "CMakeLists.txt:8: repo-deepgemm GIT_TAG: DG_TAG is set under conditions to blackwell | "
        "8dfa3298274bfe6b242f6f8a3e6f3eff2707dd9f; the first is used here (a build that takes another branch needs "
        "that one bundled too)"]


def test_no_cmakelists_is_a_problem_not_an_exception(tmp_path):
    scan = fetchcontent.scan(tmp_path)
    assert scan.deps == {} and "no CMakeLists.txt" in scan.problems[0].why


@pytest.mark.upstream
@pytest.mark.skipif(not VLLM_SDIST.is_file(), reason=f"needs the vLLM v0.6.4.post1 sdist in {VLLM_SDIST} "
                    "(pip download https://files.pythonhosted.org/packages/52/c0/b32d3fb5e863ab95e57afb5271e262b3ed93"
                    "d6103fc39c9bfeee055b43c5/vllm-0.6.4.post1.tar.gz --no-deps --no-build-isolation, "
                    "VLLM_TARGET_DEVICE=empty, in a venv with setuptools_scm and torch)")
def test_vllm_0_6_4_post1_real_cmake_files(tmp_path):
    with tarfile.open(VLLM_SDIST) as tar:
        tar.extractall(tmp_path, filter="data")
    scan = fetchcontent.scan(tmp_path / "vllm-0.6.4.post1")
    got = {n: (d.git_repository, d.git_tag, d.conditional) for n, d in scan.deps.items()}
    assert got == {
        "cutlass": ("https://github.com/nvidia/cutlass.git", "v3.5.1", True),
        "vllm-flash-attn": ("https://github.com/vllm-project/flash-attention.git",
                            "5259c586c403a4e4d8bf69973c159b40cc346fb9", True),
        "oneDNN": ("https://github.com/oneapi-src/oneDNN.git", "v3.6", True),  # the CPU build's, cpu_extension.cmake
    }
    assert [str(p) for p in scan.problems] == [
        "CMakeLists.txt:507: vllm-flash-attn: declared with a local SOURCE_DIR only (nothing to download in that "
        "branch)"]
    assert scan.subprojects == ["oneDNN", "cutlass", "vllm-flash-attn"]
