#!/usr/bin/python3
"""PyTorch's side of `npm run bench:train`, for back-to-back comparisons on one machine.

The same step: convnet-s (3x3 convolutions 32/64/512 by default, strides 1/2/2, BatchNorm, ReLU, global
average pool), the MLP head 512-512-128, NT-Xent (temperature 0.2) over both views, backward,
Adam; view-size images fed directly (no augmentation), median of the timed steps. Needs Debian's
python3-torch (`apt-get install python3-torch`; not part of fedclr's set-up). Prints one JSON
object, with the same names as bench:train's.

  /usr/bin/python3 scripts/bench-torch.py --batch 64 --view-size 16 --threads 2
  /usr/bin/python3 scripts/bench-torch.py --batch 256 --view-size 28 --threads 2
"""
import argparse
import json
import os
import statistics
import time

# PyTorch's own threads (--threads) do the parallel work; a multi-threaded OpenBLAS under them
# (Debian's libblas.so.3 when libopenblas is installed) oversubscribes the cores: measured
# 1156 img/s with one BLAS thread against 1005 with two, at batch 64 / 16 px.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import torch
import torch.nn as nn
import torch.nn.functional as F


def convnet_s(widths, hidden, out):
    layers, channels = [], 1
    for filters, stride in zip(widths, (1, 2, 2)):
        layers += [nn.Conv2d(channels, filters, 3, stride, 1, bias=False), nn.BatchNorm2d(filters), nn.ReLU(inplace=True)]
        channels = filters
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out)]
    return nn.Sequential(*layers)


def nt_xent(z1, z2, temperature):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    logits = z @ z.t() / temperature
    logits.fill_diagonal_(float('-inf'))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(logits, targets)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--view-size', type=int, default=16)
    p.add_argument('--widths', default='32,64,512')
    p.add_argument('--head', default='512,128')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--steps', type=int, default=30)
    p.add_argument('--warmup', type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    widths = [int(w) for w in a.widths.split(',')]
    hidden, out = (int(h) for h in a.head.split(','))
    model = convnet_s(widths, hidden, out)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    v1 = torch.rand(a.batch, 1, a.view_size, a.view_size)
    v2 = torch.rand(a.batch, 1, a.view_size, a.view_size)
    forward, step = [], []
    for i in range(a.warmup + a.steps):
        t = time.perf_counter()
        with torch.no_grad():
            model(torch.cat([v1, v2]))
        if i >= a.warmup:
            forward.append(time.perf_counter() - t)
        t = time.perf_counter()
        z = model(torch.cat([v1, v2]))
        loss = nt_xent(z[: a.batch], z[a.batch :], 0.2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= a.warmup:
            step.append(time.perf_counter() - t)
    step_ms = statistics.median(step) * 1000
    print(json.dumps({
        'backend': f'pytorch {torch.__version__}',
        'threads': a.threads,
        'widths': widths,
        'head': [hidden, out],
        'batch': a.batch,
        'viewSize': a.view_size,
        'forwardMs': round(statistics.median(forward) * 1000, 1),
        'stepMs': round(step_ms, 1),
        'imagesPerSec': round(a.batch * 1000 / step_ms, 1),
    }))


if __name__ == '__main__':
    main()
