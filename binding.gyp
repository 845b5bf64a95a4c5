# The moekit native core: OpenBLAS sgemm/sgemv + hand-written C++ kernels (native/).
# Portable build: baseline x86-64 flags only (never -march=native); the AVX2/FMA paths are
# compiled per function with __attribute__((target("avx2,fma"))) and chosen at run time.
{
  'targets': [
    {
      'target_name': 'moekit_native',
      'sources': [
        'native/addon.cc',
        'native/amx.cc',
        'native/attn.cc',
        'native/bf16.cc',
        'native/bf16_avx512.cc',
        'native/experts.cc',
        'native/gemm.cc',
        'native/gemm_small.cc',
        'native/kernels_scalar.cc',
        'native/kernels_avx2.cc',
        'native/quant.cc',
        'native/quant_vnni.cc',
        'native/topk.cc',
        'native/train.cc',
      ],
      'include_dirs': [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        '/usr/include/openblas',  # Fedora/Arch put cblas.h here; Debian's is on the default path
      ],
      'defines': ['NAPI_VERSION=8', 'NAPI_CPP_EXCEPTIONS', 'NODE_ADDON_API_DISABLE_DEPRECATED'],
      'cflags!': ['-fno-exceptions', '-O2', '-O0'],
      'cflags_cc!': ['-fno-exceptions', '-fno-rtti', '-O2', '-O0'],
      'cflags': ['-O3', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'cflags_cc': ['-fexceptions'],
      'libraries': ['-lopenblas'],
      'xcode_settings': {
        'GCC_ENABLE_CPP_EXCEPTIONS': 'YES',
        'OTHER_CFLAGS': ['-O3'],
      },
    },
  ],
}
