#!/usr/bin/env bash
# Run on a GPU host (H100/H200), from the repository root, with .whl/ carried (invoke).
# 1. the GPU health microbenchmark through the nox session's code (rebuilt.cli.nox_sessions.gpu_health);
# 2. the fixture CUDA torch extension built through the recipe machinery with TORCH_CUDA_ARCH_LIST=9.0a;
# 3. cuobjdump: the binary holds sm_90a code; 4. its kernel runs and matches torch on random data.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || exit 1
export PYTHONPATH=/tmp/site:$PWD PIP_NO_INDEX=1 INVOKE_REBUILT_AUTO_BACKUP=false PYTHONUNBUFFERED=1
PY=$(python3 -c 'import sys; print(sys.executable)')
{ nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv; nvcc --version | tail -2;
  $PY -c 'import torch; print("torch", torch.__version__, torch.version.cuda)'; } 2>&1 | tee "$OUT/machine.txt"

echo "== 1. GPU health through rebuilt.cli.nox_sessions.gpu_health"
$PY - <<PYEOF 2>&1 | tee "$OUT/gpu_health.txt"
import json
from rebuilt.cli import nox_sessions as s
r = s.gpu_health("$PY")
json.dump(r, open("$OUT/gpu_health.json", "w"), indent=2)
print(json.dumps({k: r[k] for k in r if k in ("device", "matmul", "copy", "harness")}, indent=1))
print("below the health minimum:", s.health_problems(r) or "none")
PYEOF

echo "== 2. cuda-ext through the recipe machinery (sm_90a)"
rm -rf /tmp/cuda_ext /tmp/wd && cp -r tests/fixtures/cuda_ext /tmp/cuda_ext
( cd /tmp/cuda_ext && git init -q && git add -A && git -c user.name=r -c user.email=r@example.invalid commit -qm fixture \
  && git tag v0.1.0 )
REBUILT_RECIPES_DIR=$PWD/tests/fixtures/recipes:$PWD/recipes $PY -m invoke build.cuda-ext --python "$PY" \
  --workdir /tmp/wd --jobs 8 --no-checks --set cuda-ext.url=/tmp/cuda_ext --set torch_cuda_arch_list=9.0a \
  --set cuda=13.0 --set host_compiler= 2>&1 | tee "$OUT/build.txt"
cp /tmp/wd/logs/*/*-cuda-ext-wheel.log "$OUT/wheel-step.log" 2>/dev/null

echo "== 3. cuobjdump"
SO=$(find /tmp/wd/src/cuda_ext/build -name '_C*.so' | head -1)
{ echo "$SO"; cuobjdump --list-elf "$SO"; cuobjdump --dump-sass "$SO" | grep -E 'code for sm_|Function' | head -8; } \
  2>&1 | tee "$OUT/cuobjdump.txt"

echo "== 4. the kernel against torch on random data"
$PY - <<'PYEOF' 2>&1 | tee "$OUT/kernel.txt"
import torch, cuda_ext
for n in (1, 1000, 1 << 24):
    x, y = torch.randn(n, device="cuda"), torch.randn(n, device="cuda")
    out = torch.full_like(x, float("nan"))
    out = cuda_ext.axpy(x, y, 2.5)
    ref = (2.5 * x.double() + y.double())
    err = ((out.double() - ref).norm() / ref.norm()).item()
    assert not torch.isnan(out).any() and err < 1e-6, (n, err)
    print(f"n={n}: relative error {err:.2e} ok")
print("cuda_ext", cuda_ext.__file__)
PYEOF
