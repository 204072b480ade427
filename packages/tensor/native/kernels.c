// Convolutions and matrix products for the wasm backend on BLIS (gemm.c: AVX2 or AVX-512 with
// FMA, several times XNNPACK's 128-bit wasm SIMD on the same core). Every function works in place
// on a worker's wasm heap, passed as a Float32Array over the whole memory; offsets and sizes are
// in floats. BLIS's serial build: fedclr already runs one training worker per core.
#include <node_api.h>
#include "gemm.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// [N, H, W, CI, OH, OW, CO, KH, KW, SH, SW, DH, DW, padTop, padLeft], NHWC, filter [KH, KW, CI, CO].
typedef struct { int N, H, W, CI, OH, OW, CO, KH, KW, SH, SW, DH, DW, pt, pl; } Geometry;
enum { GEOMETRY_FIELDS = 15 };

// Rows of the patch matrix handled per pass: the patch chunk stays in L2 while BLAS reads it.
static const size_t CHUNK_VALUES = 1 << 16;
// dW accumulates into [K, CO] once per chunk: bigger chunks, fewer passes over it.
static const size_t FILTER_CHUNK_VALUES = 1 << 20;

typedef struct { float* data; size_t length; } Scratch;

static void freeScratch(napi_env env, void* data, void* hint) {
  (void)env; (void)hint;
  Scratch* s = data;
  free(s->data);
  free(s);
}

// One scratch buffer per Node environment (per worker thread), grown on demand.
static float* scratch(napi_env env, size_t values) {
  Scratch* s = NULL;
  napi_get_instance_data(env, (void**)&s);
  if (s->length < values) {
    free(s->data);
    s->data = malloc(values * sizeof(float));
    s->length = s->data == NULL ? 0 : values;
  }
  return s->data;
}

static napi_value fail(napi_env env, const char* code, const char* message) {
  napi_throw_error(env, code, message);
  return NULL;
}

typedef struct { float* heap; size_t length; } Heap;

static int readHeap(napi_env env, napi_value value, Heap* out) {
  napi_typedarray_type type;
  size_t length;
  void* data;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, &buffer, &offset) != napi_ok || type != napi_float32_array) return 0;
  out->heap = data;
  out->length = length;
  return 1;
}

static int readInts(napi_env env, napi_value* argv, int count, int64_t* out) {
  for (int i = 0; i < count; i++) {
    if (napi_get_value_int64(env, argv[i], &out[i]) != napi_ok || out[i] < 0) return 0;
  }
  return 1;
}

static int readGeometry(napi_env env, napi_value value, Geometry* g) {
  napi_typedarray_type type;
  size_t length;
  void* data;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, &buffer, &offset) != napi_ok) return 0;
  if (type != napi_int32_array || length != GEOMETRY_FIELDS) return 0;
  memcpy(g, data, sizeof(Geometry));
  const int* f = data;
  for (int i = 0; i < 13; i++) if (f[i] <= 0) return 0;
  return g->pt >= 0 && g->pl >= 0;
}

static int inHeap(const Heap* h, int64_t offset, int64_t values) {
  return offset >= 0 && values >= 0 && (uint64_t)(offset + values) <= h->length;
}

static size_t chunkRows(size_t rowValues, size_t budget, size_t rows) {
  size_t r = budget / (rowValues == 0 ? 1 : rowValues);
  if (r < 16) r = 16;
  return r > rows ? rows : r;
}

// Rows [m0, m0 + rows) of the patch matrix [N·OH·OW, KH·KW·CI], taps in the filter's order.
static void im2col(const float* x, float* col, const Geometry* g, size_t m0, size_t rows) {
  const int CI = g->CI;
  size_t ow = m0 % g->OW, oh = (m0 / g->OW) % g->OH, n = m0 / ((size_t)g->OW * g->OH);
  for (size_t r = 0; r < rows; r++) {
    float* dst = col + r * (size_t)g->KH * g->KW * CI;
    for (int kh = 0; kh < g->KH; kh++) {
      const long ih = (long)oh * g->SH - g->pt + (long)kh * g->DH;
      if (ih < 0 || ih >= g->H) {
        memset(dst, 0, sizeof(float) * g->KW * CI);
        dst += g->KW * CI;
        continue;
      }
      const float* row = x + ((n * g->H + ih) * g->W) * CI;
      for (int kw = 0; kw < g->KW; kw++, dst += CI) {
        const long iw = (long)ow * g->SW - g->pl + (long)kw * g->DW;
        if (iw < 0 || iw >= g->W) memset(dst, 0, sizeof(float) * CI);
        else if (CI == 1) *dst = row[iw];
        else memcpy(dst, row + iw * CI, sizeof(float) * CI);
      }
    }
    if (++ow == (size_t)g->OW) { ow = 0; if (++oh == (size_t)g->OH) { oh = 0; n++; } }
  }
}

// dx += the patch rows [m0, m0 + rows) scattered back to their pixels (im2col's adjoint).
static void col2imAdd(const float* col, float* dx, const Geometry* g, size_t m0, size_t rows) {
  const int CI = g->CI;
  size_t ow = m0 % g->OW, oh = (m0 / g->OW) % g->OH, n = m0 / ((size_t)g->OW * g->OH);
  for (size_t r = 0; r < rows; r++) {
    const float* src = col + r * (size_t)g->KH * g->KW * CI;
    for (int kh = 0; kh < g->KH; kh++) {
      const long ih = (long)oh * g->SH - g->pt + (long)kh * g->DH;
      if (ih < 0 || ih >= g->H) { src += g->KW * CI; continue; }
      float* row = dx + ((n * g->H + ih) * g->W) * CI;
      for (int kw = 0; kw < g->KW; kw++, src += CI) {
        const long iw = (long)ow * g->SW - g->pl + (long)kw * g->DW;
        if (iw < 0 || iw >= g->W) continue;
        float* d = row + iw * CI;
        for (int c = 0; c < CI; c++) d[c] += src[c];
      }
    }
    if (++ow == (size_t)g->OW) { ow = 0; if (++oh == (size_t)g->OH) { oh = 0; n++; } }
  }
}

static int isPointwise(const Geometry* g) {
  return g->KH == 1 && g->KW == 1 && g->SH == 1 && g->SW == 1 && g->pt == 0 && g->pl == 0 && g->OH == g->H && g->OW == g->W;
}

// Arguments shared by the three convolutions: (heap, aOffset, bOffset, outOffset, geometry).
typedef struct { Heap h; int64_t a, b, out; Geometry g; size_t M, K; } ConvCall;

static int readConvCall(napi_env env, napi_callback_info info, ConvCall* c, int which) {
  size_t argc = 5;
  napi_value argv[5];
  int64_t offsets[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5) return 0;
  if (!readHeap(env, argv[0], &c->h) || !readInts(env, argv + 1, 3, offsets) || !readGeometry(env, argv[4], &c->g)) return 0;
  c->a = offsets[0];
  c->b = offsets[1];
  c->out = offsets[2];
  const Geometry* g = &c->g;
  c->M = (size_t)g->N * g->OH * g->OW;
  c->K = (size_t)g->KH * g->KW * g->CI;
  const int64_t xValues = (int64_t)g->N * g->H * g->W * g->CI;
  const int64_t yValues = (int64_t)c->M * g->CO;
  const int64_t wValues = (int64_t)c->K * g->CO;
  // which: 0 forward (x, w -> y), 1 backprop input (dy, w -> dx), 2 backprop filter (x, dy -> dw)
  const int64_t sizes[3][3] = { { xValues, wValues, yValues }, { yValues, wValues, xValues }, { xValues, yValues, wValues } };
  return inHeap(&c->h, c->a, sizes[which][0]) && inHeap(&c->h, c->b, sizes[which][1]) && inHeap(&c->h, c->out, sizes[which][2]);
}

static napi_value Conv2d(napi_env env, napi_callback_info info) {
  ConvCall c;
  if (!readConvCall(env, info, &c, 0)) return fail(env, "FEDCLR_NATIVE_ARGUMENTS", "conv2d(heap, x, filter, y, geometry): bad arguments or offsets outside the heap");
  const Geometry* g = &c.g;
  const float* x = c.h.heap + c.a;
  const float* w = c.h.heap + c.b;
  float* y = c.h.heap + c.out;
  if (isPointwise(g)) {
    sgemm(NO_TRANSPOSE, NO_TRANSPOSE, c.M, g->CO, c.K, x, c.K, w, g->CO, 0.0f, y, g->CO);
    return NULL;
  }
  const size_t rows = chunkRows(c.K, CHUNK_VALUES, c.M);
  float* col = scratch(env, rows * c.K);
  if (col == NULL) return fail(env, "FEDCLR_NATIVE_MEMORY", "conv2d: out of memory for the patch buffer");
  for (size_t m0 = 0; m0 < c.M; m0 += rows) {
    const size_t r = c.M - m0 < rows ? c.M - m0 : rows;
    im2col(x, col, g, m0, r);
    sgemm(NO_TRANSPOSE, NO_TRANSPOSE, r, g->CO, c.K, col, c.K, w, g->CO, 0.0f, y + m0 * g->CO, g->CO);
  }
  return NULL;
}

static napi_value Conv2dBackpropInput(napi_env env, napi_callback_info info) {
  ConvCall c;
  if (!readConvCall(env, info, &c, 1)) return fail(env, "FEDCLR_NATIVE_ARGUMENTS", "conv2dBackpropInput(heap, dy, filter, dx, geometry): bad arguments or offsets outside the heap");
  const Geometry* g = &c.g;
  const float* dy = c.h.heap + c.a;
  const float* w = c.h.heap + c.b;
  float* dx = c.h.heap + c.out;
  if (isPointwise(g)) {
    sgemm(NO_TRANSPOSE, TRANSPOSE, c.M, c.K, g->CO, dy, g->CO, w, g->CO, 0.0f, dx, c.K);
    return NULL;
  }
  const size_t rows = chunkRows(c.K, CHUNK_VALUES, c.M);
  float* col = scratch(env, rows * c.K);
  if (col == NULL) return fail(env, "FEDCLR_NATIVE_MEMORY", "conv2dBackpropInput: out of memory for the patch buffer");
  memset(dx, 0, sizeof(float) * (size_t)g->N * g->H * g->W * g->CI);
  for (size_t m0 = 0; m0 < c.M; m0 += rows) {
    const size_t r = c.M - m0 < rows ? c.M - m0 : rows;
    sgemm(NO_TRANSPOSE, TRANSPOSE, r, c.K, g->CO, dy + m0 * g->CO, g->CO, w, g->CO, 0.0f, col, c.K);
    col2imAdd(col, dx, g, m0, r);
  }
  return NULL;
}

static napi_value Conv2dBackpropFilter(napi_env env, napi_callback_info info) {
  ConvCall c;
  if (!readConvCall(env, info, &c, 2)) return fail(env, "FEDCLR_NATIVE_ARGUMENTS", "conv2dBackpropFilter(heap, x, dy, dw, geometry): bad arguments or offsets outside the heap");
  const Geometry* g = &c.g;
  const float* x = c.h.heap + c.a;
  const float* dy = c.h.heap + c.b;
  float* dw = c.h.heap + c.out;
  if (isPointwise(g)) {
    sgemm(TRANSPOSE, NO_TRANSPOSE, c.K, g->CO, c.M, x, c.K, dy, g->CO, 0.0f, dw, g->CO);
    return NULL;
  }
  const size_t rows = chunkRows(c.K, FILTER_CHUNK_VALUES, c.M);
  float* col = scratch(env, rows * c.K);
  if (col == NULL) return fail(env, "FEDCLR_NATIVE_MEMORY", "conv2dBackpropFilter: out of memory for the patch buffer");
  for (size_t m0 = 0; m0 < c.M; m0 += rows) {
    const size_t r = c.M - m0 < rows ? c.M - m0 : rows;
    im2col(x, col, g, m0, r);
    sgemm(TRANSPOSE, NO_TRANSPOSE, c.K, g->CO, r, col, c.K, dy + m0 * g->CO, g->CO, m0 == 0 ? 0.0f : 1.0f, dw, g->CO);
  }
  return NULL;
}

// matMul(heap, a, b, out, batch, M, N, K, transA, transB, broadcastA, broadcastB): out[i] = op(a[i]) · op(b[i]).
static napi_value MatMul(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12];
  Heap h;
  int64_t v[11];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 12 || !readHeap(env, argv[0], &h) || !readInts(env, argv + 1, 11, v)) {
    return fail(env, "FEDCLR_NATIVE_ARGUMENTS", "matMul(heap, a, b, out, batch, M, N, K, transA, transB, broadcastA, broadcastB): bad arguments");
  }
  const int64_t batch = v[3], M = v[4], N = v[5], K = v[6];
  const int ta = v[7] != 0, tb = v[8] != 0;
  const int64_t strideA = v[9] ? 0 : M * K, strideB = v[10] ? 0 : K * N;
  if (!inHeap(&h, v[0], strideA * (batch - 1) + M * K) || !inHeap(&h, v[1], strideB * (batch - 1) + K * N) || !inHeap(&h, v[2], batch * M * N)) {
    return fail(env, "FEDCLR_NATIVE_ARGUMENTS", "matMul: operands outside the heap");
  }
  for (int64_t i = 0; i < batch; i++) {
    sgemm(ta, tb, M, N, K, h.heap + v[0] + i * strideA, ta ? M : K, h.heap + v[1] + i * strideB, tb ? K : N, 0.0f, h.heap + v[2] + i * M * N, N);
  }
  return NULL;
}

static void define(napi_env env, napi_value exports, const char* name, napi_callback fn) {
  napi_value f;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f);
  napi_set_named_property(env, exports, name, f);
}

NAPI_MODULE_INIT() {
  const char* unavailable = gemmInit();
  if (unavailable != NULL) {
    napi_throw_error(env, "FEDCLR_NATIVE_ARCH", unavailable);
    return NULL;
  }
  Scratch* s = calloc(1, sizeof(Scratch));
  if (s == NULL || napi_set_instance_data(env, s, freeScratch, NULL) != napi_ok) {
    napi_throw_error(env, "FEDCLR_NATIVE_MEMORY", "fedclr_kernels: cannot allocate its scratch state");
    return NULL;
  }
  define(env, exports, "conv2d", Conv2d);
  define(env, exports, "conv2dBackpropInput", Conv2dBackpropInput);
  define(env, exports, "conv2dBackpropFilter", Conv2dBackpropFilter);
  define(env, exports, "matMul", MatMul);
  napi_value description;
  napi_create_string_utf8(env, gemmDescription(), NAPI_AUTO_LENGTH, &description);
  napi_set_named_property(env, exports, "gemm", description);
  return exports;
}
