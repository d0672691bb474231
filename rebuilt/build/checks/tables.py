"""Facts the checks compare against (CUDA's host_config.h and release notes, the upstream projects' setup files).

Entries not read from an upstream file are marked as assumptions where the checks use them.
"""

# Newest gcc major each CUDA's host_config.h accepts (nvcc: "unsupported GNU version! gcc versions
# later than N are not supported!"). 12.4-12.9 from each CUDA's include/crt/host_config.h; 12.0-12.3 and 12.5 from the same
# headers; 13.0 accepting gcc 15 is an assumption.
CUDA_MAX_GCC = {"12.0": 12, "12.1": 12, "12.2": 12, "12.3": 12, "12.4": 13, "12.5": 13, "12.6": 13,
                "12.8": 14, "12.9": 14, "13.0": 15}
# clang's major must be below this (host_config.h: "clang version must be less than N").
CUDA_CLANG_BELOW = {"12.4": 18, "12.5": 18, "12.6": 19, "12.8": 20, "12.9": 20, "13.0": 21}
# Limits that are assumptions (a CUDA newer than the table uses its newest entry, also an assumption).
ASSUMED_CUDA = {"13.0"}
# Compute capability -> the CUDA that first compiles its arch-specific kernels
# (sm_90a for H100/H200: the notes and sgl-kernel/FA3 need >= 12.4).
ARCH_MIN_CUDA = {"8.0": "11.0", "8.6": "11.1", "8.9": "11.8", "9.0": "12.4", "10.0": "12.8", "12.0": "12.8"}
# CUDA -> (the driver its release shipped with, the oldest driver that runs it through minor-version
# compatibility), from the CUDA release notes. Below the first, PTX JIT of newer code fails.
CUDA_DRIVER = {"12.4": ("550.54.14", "525.60.13"), "12.6": ("560.28.03", "525.60.13"),
               "12.8": ("570.26", "525.60.13"), "12.9": ("575.51.03", "525.60.13"),
               "13.0": ("580.65.06", "580.65.06")}
# torch -> its torchvision/torchaudio: rebuilt/build/companions.py (the guard reads the same table).
# (recipe, version) -> the torch pin its install metadata carries (its setup.py / pyproject.toml at that version).
TORCH_PINS = {("sglang", "0.5.4"): "torch==2.8.0", ("vllm", "0.6.4.post1"): "torch==2.5.1"}
# Free disk a recipe's build needs (checkout, build tree, wheel), GiB: rough upper figures.
DISK_GB = {"torch": 40, "sgl-kernel": 25, "vllm": 20, "flashinfer": 10, "deepep": 5, "speedgate": 5, "sglang": 3,
           "torchvision": 2, "extras": 1}
# Which steps run nvcc, need torch or a tool (and how new) is data in the recipes: each step's `needs`
# and `provides` (recipes/*.toml), read by rebuilt/build/checks/needs.py.
# DeepEP wants NVSHMEM >= 3.3.9 (nvidia-nvshmem-cu12 on the package index).
NVSHMEM_MIN = "3.3.9"
# Where libnuma's header lives (sgl-kernel's mscclpp includes <numa.h>).
NUMA_HEADERS = ("/usr/include/numa.h", "/usr/local/include/numa.h")
