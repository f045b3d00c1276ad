#!/usr/bin/env bash
# Packs what bench/gpu-check.sh needs on a GPU machine that has Python with CUDA PyTorch and
# NVIDIA's Vulkan driver but no Node, no Deno and no network, into .gpu/ (ignored by git, about
# 40 MB; a device call carries at most 64 MiB):
#   .gpu/deno.xz              this checkout's Deno binary (node_modules/deno), xz-compressed
#   .gpu/node_modules.tar.xz  the runtime files of the packages the benchmark loads under Deno
#   .gpu/debs/*.deb           Debian's Vulkan loader (libvulkan1), unpacked there with dpkg -x
# Run once from the repository root after npm ci, on Debian or Ubuntu (apt-get download):
#   bench/gpu-pack.sh && (device) run --carry .gpu 'bash bench/gpu-check.sh'
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .gpu && mkdir -p .gpu/debs

xz -T2 -6 -c node_modules/deno/deno > .gpu/deno.xz

# package.json, the CommonJS bundle each "main" names and the wasm binaries: what Deno's npm
# resolution reads (nodeModulesDir "manual") for tfjs-core and the webgpu, wasm and cpu backends.
files=()
for package in @tensorflow/tfjs-core @tensorflow/tfjs-backend-webgpu @tensorflow/tfjs-backend-wasm @tensorflow/tfjs-backend-cpu long seedrandom node-fetch whatwg-url tr46 webidl-conversions; do
  dir=node_modules/$package
  main=$(node -p "require('./$dir/package.json').main || 'index.js'")
  files+=("$dir/package.json" "$dir/$main")
  [ "$package" = seedrandom ] && files+=("$dir/lib")
  [ "$package" = @tensorflow/tfjs-backend-wasm ] && files+=("$dir"/dist/*.wasm)
done
for package in whatwg-url tr46; do files+=("node_modules/$package/lib"); done
tar -cJf .gpu/node_modules.tar.xz "${files[@]}"

# Debian's amd64 Vulkan loader, fetched with the host's apt sources into a private list directory.
apt_options=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/lmpipe-apt-amd64)
mkdir -p /tmp/lmpipe-apt-amd64/partial
apt-get "${apt_options[@]}" update -qq
(cd .gpu/debs && apt-get "${apt_options[@]}" download libvulkan1 >/dev/null)
du -sh .gpu .gpu/*
