{
  "targets": [
    {
      "target_name": "fedclr_kernels",
      "sources": ["kernels.c", "gemm.c"],
      "variables": { "multiarch": "<!(gcc -print-multiarch)" },
      "cflags": ["-O3", "-std=c11", "-fvisibility=hidden", "-isystem", "/usr/include/<(multiarch)/blis-serial"],
      "libraries": ["/usr/lib/<(multiarch)/blis-serial/libblis.a", "-Wl,--exclude-libs,ALL", "-lm"]
    }
  ]
}
