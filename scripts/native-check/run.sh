#!/usr/bin/env bash
# Builds scripts/native-check/check.cc against the native kernels (no Node, no OpenBLAS) and runs it with 1 and 2
# threads (or the counts given). Used on the device host, whose Xeon has the AMX and AVX-512 units these 2-core
# machines may lack.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${TMPDIR:-/tmp}/moekit-native-check
g++ -O3 -std=c++17 -pthread -Iscripts/native-check -Wno-attributes -o "$out" scripts/native-check/check.cc \
  native/amx.cc native/bf16.cc native/bf16_avx512.cc native/quant.cc native/quant_vnni.cc native/kernels_avx2.cc \
  native/kernels_scalar.cc
for t in "${@:-1 2}"; do "$out" "$t"; done
