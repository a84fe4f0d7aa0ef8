"""PyTorch CPU reference benchmark (run via build/bench-pytorch.sh).

Measures, in float32 on synthetic random data (torch.manual_seed(0)), with
torch.set_num_threads(--threads), each measurement timed for about --seconds
after a short warm-up:
  1. sgemm GFLOPS of torch.mm for (m,k,n) = 256x784x300, 64x784x300,
     1024x1024x1024  (GFLOPS = 2*m*k*n / seconds per call).
  2. Training samples/s (forward, cross-entropy, backward, SGD(lr=0.01,
     momentum=0.9) step, zero_grad) for "lenet" (MLP 784-300-100-10) and
     "cnn" (2x conv3x3+pool, 128-unit FC) at batch 64 and 256.
  3. Inference samples/s (eval mode, no_grad) at batch 1 and 256, plus
     microseconds per call at batch 1.
Throughput = total samples / total elapsed time over the timed window.
Human-readable lines go to stderr; the last stdout line is one JSON object.
"""
import argparse
import json
import re
import sys
import time

import torch
import torch.nn as nn


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def timed(fn, seconds, warmup=0.3):
    """Run fn() for ~warmup s (untimed), then ~seconds s. Returns (calls, elapsed)."""
    end = time.perf_counter() + warmup
    fn()
    while time.perf_counter() < end:
        fn()
    calls, start = 0, time.perf_counter()
    end = start + seconds
    while True:
        fn()
        calls += 1
        now = time.perf_counter()
        if now >= end:
            return calls, now - start


def lenet():
    return nn.Sequential(nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
                         nn.Linear(100, 10))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


MODELS = {"lenet": (lenet, (784,)), "cnn": (cnn, (1, 28, 28))}
NBATCHES = 4  # pre-generated batches, cycled through


def make_batches(shape, b):
    return [(torch.randn(b, *shape), torch.randint(0, 10, (b,))) for _ in range(NBATCHES)]


def bench_gemm(m, k, n, seconds):
    a, b = torch.randn(m, k), torch.randn(k, n)
    out = torch.empty(m, n)
    calls, el = timed(lambda: torch.mm(a, b, out=out), seconds)
    return 2.0 * m * k * n * calls / el / 1e9


def bench_train(name, b, seconds):
    build, shape = MODELS[name]
    model = build().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    data, i = make_batches(shape, b), [0]

    def step():
        x, y = data[i[0] % NBATCHES]
        i[0] += 1
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()

    calls, el = timed(step, seconds)
    return b * calls / el


def bench_infer(name, b, seconds):
    build, shape = MODELS[name]
    model = build().eval()
    data, i = make_batches(shape, b), [0]

    def call():
        model(data[i[0] % NBATCHES][0])
        i[0] += 1

    with torch.no_grad():
        calls, el = timed(call, seconds)
    return b * calls / el, el / calls * 1e6


def loaded_blas():
    """BLAS/LAPACK shared objects mapped into this process (call after a matmul)."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if re.search(r"lib(open)?blas|libblis|libmkl", path):
                libs.add(path)
    return sorted(libs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--gemm-only", action="store_true",
                    help="measure the sgemm shapes only (build/bench-gemm-alternating.sh)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    torch.mm(torch.randn(64, 64), torch.randn(64, 64))  # make sure BLAS is loaded
    blas = loaded_blas()

    log("torch", torch.__version__, "threads", torch.get_num_threads())
    log("\n".join(torch.__config__.show().splitlines()[:6]))
    log("BLAS loaded:", ", ".join(blas) or "(none found)")

    res = {"torch_version": torch.__version__, "blas": ", ".join(blas),
           "threads": torch.get_num_threads(), "gemm": {}, "train": {}, "infer": {},
           "infer_us": {}}
    s = args.seconds

    for m, k, n in [(256, 784, 300), (64, 784, 300), (1024, 1024, 1024)]:
        key = f"{m}x{k}x{n}"
        res["gemm"][key] = round(bench_gemm(m, k, n, s), 2)
        log(f"gemm  {key:16s} {res['gemm'][key]:10.2f} GFLOPS")

    if args.gemm_only:
        print(json.dumps(res), flush=True)
        return

    for name in MODELS:
        for b in (64, 256):
            key = f"{name}_b{b}"
            res["train"][key] = round(bench_train(name, b, s), 1)
            log(f"train {key:16s} {res['train'][key]:10.1f} samples/s")

    for name in MODELS:
        for b in (1, 16, 256):
            key = f"{name}_b{b}"
            sps, us = bench_infer(name, b, s)
            res["infer"][key] = round(sps, 1)
            log(f"infer {key:16s} {sps:10.1f} samples/s  {us:9.1f} us/call")
            if b == 1:
                res["infer_us"][key] = round(us, 2)

    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
