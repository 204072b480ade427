{
  "targets": [
    {
      "target_name": "fedclr_kernels",
      "sources": ["kernels.c", "gemm.c"],
      "variables": { "blis": "/usr/lib/<!(gcc -print-multiarch)/blis-serial", "blis_include": "/usr/include/<!(gcc -print-multiarch)/blis-serial" },
      "cflags": ["-O3", "-std=c11", "-fvisibility=hidden", "-isystem", "<(blis_include)"],
      "libraries": ["<(blis)/libblis.a", "-Wl,--exclude-libs,ALL", "-lpthread", "-lm"]
    }
  ]
}
