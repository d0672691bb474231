#!/usr/bin/env bash
# DeepEP v1.2.1 through `inv build.deepep` on one H200, on a fresh machine (cold work dir) (CUDA 13.0, torch 2.11, NVSHMEM from the
# nvidia-nvshmem-cu13 pip package), from the repository root, with .whl/ (invoke, orjson) and
# .carry/deepep (the v1.2.1 git checkout) carried. Everything it prints lands in $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1   # NVLink multicast off
export PIP_NO_INDEX=1 INVOKE_REBUILT_AUTO_BACKUP=false PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .whl/invoke-*.whl .whl/orjson-*.whl || exit 1
export PYTHONPATH=/tmp/site
PY=$(python3 -c 'import sys; print(sys.executable)')
NV=$($PY -c 'import importlib.util as u; print(u.find_spec("nvidia.nvshmem").submodule_search_locations[0])')
{ nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv; nvcc --version | tail -2
  $PY -c 'import torch; print("torch", torch.__version__, torch.version.cuda)'; gcc --version | head -1
  $PY -m pip show nvidia-nvshmem-cu13 2>/dev/null | sed -n 1,2p; echo "nvidia.nvshmem: $NV"; ls "$NV/lib"
  ls -d /usr/local/cuda/include/cccl/cuda/std/tuple /usr/include/infiniband/mlx5dv.h; nproc
  git -C .carry/deepep log -1 --format='%H %d'; } > "$OUT/machine.txt" 2>&1
$PY -m pip install --no-index --no-deps --no-build-isolation -e . > "$OUT/install.txt" 2>&1 \
  || { echo "editable install failed; using PYTHONPATH" >> "$OUT/install.txt"; export PYTHONPATH=/tmp/site:$PWD; }
$PY -c 'import rebuilt; print("rebuilt from", rebuilt.__file__)' >> "$OUT/install.txt" 2>&1
COMMON=(--stack aiak --python "$PY" --set cuda=13.0 --set torch.expect= --set deepep.url="file://$PWD/.carry/deepep")

echo "== doctor (deepep)" > "$OUT/doctor.txt"
$PY -m invoke doctor "${COMMON[@]}" --recipe deepep --offline >> "$OUT/doctor.txt" 2>&1; echo "rc=$?" >> "$OUT/doctor.txt"
echo "== doctor with nvshmem_dir pointing at the pip package (must fail)" >> "$OUT/doctor.txt"
$PY -m invoke doctor "${COMMON[@]}" --recipe deepep --offline --set nvshmem_dir="$NV" 2>&1 | grep -A1 'deepep' >> "$OUT/doctor.txt"
echo "== doctor with the arch list 8.0;9.0 (must fail)" >> "$OUT/doctor.txt"
$PY -m invoke doctor "${COMMON[@]}" --recipe deepep --offline --set 'deepep.torch_cuda_arch_list=8.0;9.0' 2>&1 \
  | grep -A1 -E 'deepep arch|failed' >> "$OUT/doctor.txt"

S=$(date +%s)
$PY -m invoke build.deepep "${COMMON[@]}" --workdir /tmp/wd --jobs 16 --dry-run > "$OUT/build.txt" 2>&1
$PY -m invoke build.deepep "${COMMON[@]}" --workdir /tmp/wd --jobs 16 >> "$OUT/build.txt" 2>&1
echo "rc=$? wall=$(( $(date +%s) - S ))s" >> "$OUT/build.txt"
cp /tmp/wd/manifests/*deepep*.json "$OUT/" 2>/dev/null || ls -R /tmp/wd/manifests >> "$OUT/build.txt"
tar czf "$OUT/step-logs.tgz" -C /tmp/wd logs 2>/dev/null

{ cd /tmp && $PY -c "import deep_ep; print(deep_ep.__file__)"; echo "rc=$?"
  SO=$($PY -c "import torch, deep_ep_cpp; print(deep_ep_cpp.__file__)"); readelf -d "$SO" | grep -E 'NEEDED|RUNPATH'
  echo "== tests/test_intranode.py --num-processes 1"
  (cd /tmp/wd/src/DeepEP/tests && timeout 120 $PY test_intranode.py --num-processes 1 > /tmp/intra.log 2>&1; echo "rc=$?"; tail -4 /tmp/intra.log)
  echo "== tests/test_low_latency.py --num-processes 1"
  (cd /tmp/wd/src/DeepEP/tests && timeout 150 $PY test_low_latency.py --num-processes 1 > /tmp/ll.log 2>&1; echo "rc=$?"; tail -8 /tmp/ll.log)
} > "$OUT/import.txt" 2>&1
ls -la "$OUT"
