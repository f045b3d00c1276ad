#!/usr/bin/env bash
# The webgpu check on a real GPU, for a machine with Python + CUDA PyTorch and NVIDIA's Vulkan driver
# but no Node, no Deno and no network (the device tool's nvidia-h200). Needs .gpu/ from
# bench/gpu-pack.sh. Runs under Deno (its own WebGPU, wgpu on Vulkan; Node's Dawn needs Node):
#   1. the parity cases of test/helpers/webgpu-parity.ts (rnn, gru, lstm × one-hot, gather × 1, 2
#      layers, 20 steps) on wasm and webgpu, and webgpu once more: differences, and whether two
#      webgpu runs agree bit for bit;
#   2. bench/train-bench.ts on webgpu, settings A, B and C, with our wasm and PyTorch (CUDA) in the
#      same run: tokens/s and the ratios (the goal on C: >= 0.25x PyTorch cuDNN, >= 20x wasm).
# Writes gpu.txt, parity.txt, train-webgpu.txt and train-webgpu.json to $OUT (default /tmp/lmpipe-gpu-check).
#   (device) run --carry .gpu --timeout 540 'bash bench/gpu-check.sh'
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/lmpipe-gpu-check}
mkdir -p "$OUT"
[ -f .gpu/deno.xz ] || { echo "error: .gpu/ is missing: run bench/gpu-pack.sh first and carry .gpu"; exit 1; }

# The Vulkan loader (libvulkan.so.1) and, where the loader does not find it, NVIDIA's driver manifest.
if ! ldconfig -p | grep -q 'libvulkan.so.1 '; then
  for deb in .gpu/debs/*.deb; do dpkg -x "$deb" /; done
  ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ] && export VK_DRIVER_FILES=$icd

deno=/tmp/lmpipe-deno/deno
mkdir -p "$(dirname "$deno")"
xz -dc .gpu/deno.xz > "$deno" && chmod +x "$deno"
tar -xJf .gpu/node_modules.tar.xz
export DENO_NO_UPDATE_CHECK=1 LMPIPE_PYTHON=${LMPIPE_PYTHON:-python3}
run() { "$deno" run -A --cached-only "$@"; }

{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; "$deno" --version | head -1; uptime; } 2>&1 | tee "$OUT/gpu.txt"

cases=$(seq -s, 0 11)
run test/helpers/webgpu-parity.ts "$cases" wasm webgpu > "$OUT/parity-1.json" 2> "$OUT/parity.log"
run test/helpers/webgpu-parity.ts "$cases" webgpu > "$OUT/parity-2.json" 2>> "$OUT/parity.log"
python3 - "$OUT/parity-1.json" "$OUT/parity-2.json" <<'PY' 2>&1 | tee "$OUT/parity.txt"
import json, sys
first, second = (json.loads(open(path).read().strip().splitlines()[-1]) for path in sys.argv[1:3])
print("adapter:", first["webgpu"]["detail"])
for i, (wasm, gpu, again) in enumerate(zip(first["wasm"]["runs"], first["webgpu"]["runs"], second["webgpu"]["runs"])):
    loss = max(abs(a - b) / abs(b) for a, b in zip(gpu["losses"], wasm["losses"]))
    param = max(max(abs(a - b) for a, b in zip(gpu["params"][k], v)) / max(map(abs, v)) for k, v in wasm["params"].items())
    same = gpu["losses"] == again["losses"] and gpu["params"] == again["params"]
    flat = len(set(gpu["tensorCounts"])) == 1
    print(f"case {i:2}: losses {loss:.1e} rel, params {param:.1e} of scale, numTensors flat {flat}, "
          f"sync reads {gpu['syncReads']}, second run {'bit for bit' if same else 'DIFFERS'}")
PY

run bench/train-bench.ts --backend webgpu --settings A,B,C --compare wasm --seconds 5 --json "$OUT/train-webgpu.json" 2>&1 | tee "$OUT/train-webgpu.txt"
