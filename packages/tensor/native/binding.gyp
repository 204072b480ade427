{
  "targets": [
    {
      "target_name": "fedclr_kernels",
      "sources": ["kernels.c"],
      "libraries": ["-lopenblas"],
      "cflags": ["-O3", "-std=c11"]
    }
  ]
}
