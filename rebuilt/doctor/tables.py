"""Facts the checks compare against (shared/UPSTREAM.md)."""

# Newest gcc major (and clang below which) each CUDA's host_config.h accepts.
CUDA_MAX_GCC = {"12.0": 12, "12.1": 12, "12.2": 12, "12.3": 12, "12.4": 13, "12.5": 13, "12.6": 13,
                "12.8": 14, "12.9": 14,
                # assumption, not from UPSTREAM.md: CUDA 13.0 accepts gcc up to 15
                "13.0": 15}
CUDA_MAX_CLANG = {"12.4": 18, "12.6": 19, "12.8": 20, "12.9": 20, "13.0": 20}
# sm_90 needs CUDA >= 12.0; sm_90a kernels (sgl-kernel, FA3) need >= 12.4.
ARCH_MIN_CUDA = {"9.0": "12.4", "10.0": "12.8", "12.0": "12.8", "8.9": "11.8", "8.0": "11.0"}
# torch minor -> the torchvision minor built for it; torchaudio follows torch's version.
TORCHVISION_FOR = {"2.5": "0.20", "2.6": "0.21", "2.7": "0.22", "2.8": "0.23", "2.9": "0.24", "2.10": "0.25",
                   "2.11": "0.26", "2.12": "0.27", "2.13": "0.28", "2.14": "0.29"}
# Free disk a recipe's build needs (source, build tree, wheel), GiB: rough upper figures.
DISK_GB = {"torch": 40, "sgl-kernel": 25, "vllm": 20, "flashinfer": 10, "deepep": 5, "speedgate": 5, "sglang": 3}
# Recipes that run nvcc (need a matching CUDA and host compiler).
CUDA_RECIPES = {"torch", "sgl-kernel", "deepep", "vllm", "speedgate", "flashinfer"}
# Debian/Ubuntu and conda packages for a missing compiler.
COMPILER_PACKAGE = "apt-get install {cc} {cxx}   (conda: conda install -c conda-forge gxx_linux-64={major})"
