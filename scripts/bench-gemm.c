// One-core sgemm timings on a convolution's three products (forward, dX, dW), in im2col chunks
// of 113/256/512/all rows (dW's first row uses kernels.c's FILTER_CHUNK_VALUES), on OpenBLAS (the addon's
// BLAS until session 14; needs libopenblas-dev, which set-up no longer installs). Not part of the build:
//   gcc -O2 scripts/bench-gemm.c -o /tmp/bench-gemm -lopenblas
//   OPENBLAS_CORETYPE=Haswell /tmp/bench-gemm 1024 576 512; OPENBLAS_CORETYPE=SkylakeX /tmp/bench-gemm 1024 576 512
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
void openblas_set_num_threads(int);
char* openblas_get_corename(void);
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static void fill(float*a,size_t n){for(size_t i=0;i<n;i++)a[i]=(float)rand()/RAND_MAX-0.5f;}
// forward: [M,K]x[K,N] in chunks of r rows
static double fwd(int M,int K,int N,int r,float*A,float*B,float*C,int reps){
  double t=now();
  for(int k=0;k<reps;k++) for(int m0=0;m0<M;m0+=r){int rr=M-m0<r?M-m0:r;
    cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,rr,N,K,1,A+(size_t)m0*K,K,B,N,0,C+(size_t)m0*N,N);}
  return (now()-t)/reps;}
static double dx(int M,int K,int N,int r,float*dY,float*B,float*col,int reps){
  double t=now();
  for(int k=0;k<reps;k++) for(int m0=0;m0<M;m0+=r){int rr=M-m0<r?M-m0:r;
    cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,rr,K,N,1,dY+(size_t)m0*N,N,B,N,0,col+(size_t)m0*K,K);}
  return (now()-t)/reps;}
static double dw(int M,int K,int N,int r,float*A,float*dY,float*W,int reps){
  double t=now();
  for(int k=0;k<reps;k++) for(int m0=0;m0<M;m0+=r){int rr=M-m0<r?M-m0:r;
    cblas_sgemm(CblasRowMajor,CblasTrans,CblasNoTrans,K,N,rr,1,A+(size_t)m0*K,K,dY+(size_t)m0*N,N,m0?1:0,W,N);}
  return (now()-t)/reps;}
int main(int argc,char**argv){
  openblas_set_num_threads(1);
  int M=atoi(argv[1]),K=atoi(argv[2]),N=atoi(argv[3]);
  float*A=malloc(4L*M*K),*B=malloc(4L*K*N),*C=malloc(4L*M*N),*col=malloc(4L*M*K),*W=malloc(4L*K*N);
  fill(A,(size_t)M*K);fill(B,(size_t)K*N);fill(C,(size_t)M*N);
  int reps=20; double mac=(double)M*K*N;
  printf("core %s M%d K%d N%d\n",openblas_get_corename(),M,K,N);
  int rs[]={113,256,512,M};
  int filterRows=(1<<20)/K; // kernels.c: FILTER_CHUNK_VALUES / K
  for(int i=0;i<4;i++){int r=rs[i];
    fwd(M,K,N,r,A,B,C,3);double f=fwd(M,K,N,r,A,B,C,reps);
    dx(M,K,N,r,C,B,col,3);double d=dx(M,K,N,r,C,B,col,reps);
    int wr=i==0?filterRows:r;
    double w=dw(M,K,N,wr,A,C,W,reps);
    printf(" rows %5d fwd %.2f ms (%.1f GMAC/s) dX %.2f ms (%.1f) dW(rows %d) %.2f ms (%.1f)\n",r,f*1e3,mac/f/1e9,d*1e3,mac/d/1e9,wr,w*1e3,mac/w/1e9);}
}
