#!/usr/bin/python3
"""PyTorch reference throughput for the architectures of Mantissa's layers/models.

Builds the same networks as Mantissa (same layers, shapes, parameter counts, same input sizes as
the apps: 1x28x28 images, 10 classes), then measures on synthetic data:

  training   one step = forward, loss, backward, optimizer step (images/s):
             classifiers: cross-entropy, SGD (lr 0.01, momentum 0.9, weight decay 5e-4), as
             mantissa-bench-train; dcgan: the DCGAN step of mantissa-gan (discriminator step on
             real + detached fake with BCE-with-logits, then generator step with the
             non-saturating loss, Adam lr 2e-4 betas (0.5, 0.999) on both), B real images per
             step.
  inference  eval mode under torch.no_grad(): a classifier's forward on B images; dcgan: the
             generator's forward on B latent vectors (sampling), B images.

With --fake-quant hbfp8 the classifiers train and infer as a Python framework emulates block
floating point today: every Conv2d and Linear quantizes its input and its weight to BFP8 (blocks
of 64 along the input channels, one shared exponent e = ceil(log2 max|x|) per block, 8-bit
signed mantissas, round to nearest) on the way forward, with straight-through gradients, and
quantizes the gradient of its output the same way (blocks along the output channels) on the way
back. This is the cost Mantissa's hbfp8 recipe is compared with in docs/performance.md ("Against
a fake-quantizing emulator"); it does less than Mantissa's emulation, which also re-blocks both
operands of the weight-gradient GEMM along (N, H, W).

Warm-up steps are excluded; the figure is the median over --rounds timed steps. Run it with
Debian's python3-torch (1.13), which is installed for /usr/bin/python3, not for a pyenv or venv
python that may come first on PATH:

  /usr/bin/python3 bench/pytorch/compare.py --threads 1,2 --batch 128 \
      --models resnet20,resnet56,resnet110,alexnet-small,dcgan --rounds 5 --csv pytorch.csv

Output: the parameter count of every model, CSV (to --csv, or stdout) and a Markdown table.
peak_rss_mib is the process's peak resident set so far (getrusage), so it is per model only
when one process measures one model (bench/perf-table.sh runs it that way).
"""

import argparse
import ctypes
import csv
import os
import resource
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.exit("compare.py: cannot import torch; install Debian's python3-torch and run this "
             "script with /usr/bin/python3 (found: %s)" % sys.executable)

MODELS = ("resnet20", "resnet56", "resnet110", "alexnet-small", "dcgan")
LATENT = 100
CLASSES = 10
SIDE = 28


# --- CIFAR ResNet-(6n+2), option A (layers/models/CifarResNet.* and BasicBlock.*) ------------

class ShortcutA(nn.Module):
    """Option A: subsample by the stride (positions 0, s, 2s, ...) and zero-pad the new
    channels, half in front and half behind (akamaster/pytorch_resnet_cifar10's LambdaLayer)."""

    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.stride = stride
        self.front = (planes - in_planes) // 2
        self.back = planes - in_planes - self.front

    def forward(self, x):
        if self.stride != 1:
            x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.front, self.back))


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        reshape = stride != 1 or in_planes != planes
        self.shortcut = ShortcutA(in_planes, planes, stride) if reshape else nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, depth, in_channels=1, num_classes=CLASSES):
        super().__init__()
        assert depth >= 8 and (depth - 2) % 6 == 0, "depth must be 6n + 2"
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        planes_in = 16
        stages = []
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(planes_in, planes, stride if i == 0 else 1))
                planes_in = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():  # akamaster's _weights_init (Mantissa does the same)
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


# --- AlexNet, small-input variant (layers/models/AlexNet.*) -----------------------------------

def alexnet_small(in_channels=1, num_classes=CLASSES, side=SIDE):
    # Paper LRN (n 5, k 2, alpha 1e-4 on the plain sum) is alpha 5e-4 in PyTorch's averaged form.
    def lrn():
        return nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)

    s = side  # conv1 5x5 pad 2 keeps the size; three 3x3/2 poolings
    for _ in range(3):
        s = (s - 3) // 2 + 1
    features = nn.Sequential(
        nn.Conv2d(in_channels, 64, 5, padding=2), nn.ReLU(inplace=True), lrn(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), lrn(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
    # Mantissa's order: Linear - ReLU - Dropout (dropout on the outputs of fc6 and fc7).
    classifier = nn.Sequential(
        nn.Linear(256 * s * s, 1024), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(1024, 1024), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(1024, num_classes))
    return nn.Sequential(features, nn.Flatten(1), classifier)


# --- DCGAN-28 generator and discriminator (layers/models/Dcgan.*) -----------------------------

def dcgan_init(m):
    # The PyTorch DCGAN example's weights_init, as Mantissa's dcganInit.
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def dcgan28_generator(channels=1, latent=LATENT, w=64):
    g = nn.Sequential(
        nn.ConvTranspose2d(latent, 4 * w, 4, 1, 0, bias=False), nn.BatchNorm2d(4 * w),
        nn.ReLU(True),                                                        # 1 -> 4
        nn.ConvTranspose2d(4 * w, 2 * w, 3, 2, 1, bias=False), nn.BatchNorm2d(2 * w),
        nn.ReLU(True),                                                        # 4 -> 7
        nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w),
        nn.ReLU(True),                                                        # 7 -> 14
        nn.ConvTranspose2d(w, channels, 4, 2, 1, bias=False), nn.Tanh())      # 14 -> 28
    g.apply(dcgan_init)
    return g


def dcgan28_discriminator(channels=1, w=64):
    # mantissa-gan's DCGAN game: batch norm, no sigmoid (BCE on logits).
    d = nn.Sequential(
        nn.Conv2d(channels, w, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),  # 28 -> 14
        nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w),
        nn.LeakyReLU(0.2, True),                                                # 14 -> 7
        nn.Conv2d(2 * w, 4 * w, 3, 2, 1, bias=False), nn.BatchNorm2d(4 * w),
        nn.LeakyReLU(0.2, True),                                                # 7 -> 4
        nn.Conv2d(4 * w, 1, 4, 1, 0, bias=False), nn.Flatten(0))               # 4 -> 1
    d.apply(dcgan_init)
    return d


def count(*models):
    return sum(p.numel() for m in models for p in m.parameters())


# --- BFP8 fake quantization (--fake-quant hbfp8) ----------------------------------------------

def bfp(x, dim, block=64, bits=8):
    """x with blocks of `block` along `dim` snapped to BFP: shared exponent per block, signed
    mantissas of `bits` bits (|m| <= 2^(bits-1) - 1), round to nearest even."""
    xt = x.transpose(dim, -1)
    shape = xt.shape
    n = shape[-1]
    pad = (-n) % block
    if pad:
        xt = F.pad(xt, (0, pad))
    xb = xt.reshape(*shape[:-1], -1, block)
    amax = xb.abs().amax(dim=-1, keepdim=True)
    scale = torch.exp2(torch.ceil(torch.log2(amax.clamp_min(2.0 ** -126))) - (bits - 1))
    limit = 2 ** (bits - 1) - 1
    q = torch.clamp(torch.round(xb / scale), -limit, limit) * scale
    q = q.reshape(*shape[:-1], -1)[..., :n]
    return q.transpose(dim, -1)


class BfpForward(torch.autograd.Function):
    """Forward: BFP along `dim`; backward: straight through."""

    @staticmethod
    def forward(ctx, x, dim):
        return bfp(x, dim)

    @staticmethod
    def backward(ctx, g):
        return g, None


class BfpBackward(torch.autograd.Function):
    """Forward: identity; backward: the gradient to BFP along `dim`."""

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        return x.clone()  # a view would break the in-place ReLU that follows some layers

    @staticmethod
    def backward(ctx, g):
        return bfp(g, ctx.dim), None


class FakeQuant(nn.Module):
    """A Conv2d or Linear whose input, weight and output gradient go through BFP8."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        m = self.layer
        xq = BfpForward.apply(x, 1)
        wq = BfpForward.apply(m.weight, 1)
        if isinstance(m, nn.Conv2d):
            y = F.conv2d(xq, wq, m.bias, m.stride, m.padding, m.dilation, m.groups)
        else:
            y = F.linear(xq, wq, m.bias)
        return BfpBackward.apply(y, y.dim() - 1 if isinstance(m, nn.Linear) else 1)


def fake_quantize(module):
    """Wraps every Conv2d and Linear of `module` in FakeQuant, in place."""
    for name, child in module.named_children():
        if isinstance(child, (nn.Conv2d, nn.Linear)):
            setattr(module, name, FakeQuant(child))
        else:
            fake_quantize(child)
    return module


# --- Benchmarks ------------------------------------------------------------------------------

def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def classifier_bench(name, batch, rounds, warmup, fake_quant):
    model = alexnet_small() if name == "alexnet-small" else CifarResNet(int(name[6:]))
    if fake_quant == "hbfp8":
        fake_quantize(model)
    x = torch.randn(batch, 1, SIDE, SIDE)
    y = torch.randint(0, CLASSES, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def train_step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def infer():
        with torch.no_grad():
            model(x)

    model.train()
    train = measure(train_step, rounds, warmup)
    model.eval()
    inference = measure(infer, rounds, warmup)
    return count(model), train, inference


def dcgan_bench(batch, rounds, warmup):
    gen, disc = dcgan28_generator(), dcgan28_discriminator()
    opt_g = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(batch, 1, SIDE, SIDE) * 2 - 1
    ones, zeros = torch.ones(batch), torch.zeros(batch)
    bce = F.binary_cross_entropy_with_logits

    def train_step():
        # apps/cli/GanRun.cpp, DCGAN branch: fakes from fresh noise; D on real (target 1) and
        # detached fakes (target 0); then G through D on the same fakes (target 1).
        fake = gen(torch.randn(batch, LATENT, 1, 1))
        opt_d.zero_grad(set_to_none=True)
        loss_d = bce(disc(real), ones) + bce(disc(fake.detach()), zeros)
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        loss_g = bce(disc(fake), ones)
        loss_g.backward()
        opt_g.step()

    z = torch.randn(batch, LATENT, 1, 1)

    def infer():
        with torch.no_grad():
            gen(z)

    gen.train()
    disc.train()
    train = measure(train_step, rounds, warmup)
    gen.eval()
    inference = measure(infer, rounds, warmup)
    return count(gen, disc), train, inference


# --- BLAS ------------------------------------------------------------------------------------
# PyTorch's Linear layers (addmm) and, in 1.13, every ConvTranspose2d (aten::slow_conv_transpose2d:
# im2col + GEMM; no oneDNN path for these shapes) run on the system BLAS, not on oneDNN. Debian's
# python3-torch links libblas.so.3, which is the netlib *reference* BLAS unless an optimised one
# (libopenblas0-pthread) is installed: measured on the project machine, the DCGAN generator's
# four transposed convolutions took 8x longer on it than on OpenBLAS. Such figures handicap
# PyTorch, so the script names the BLAS it found, warns about the reference one, and gives
# OpenBLAS the --threads count (it otherwise starts one thread per core on its own).

def blas_library():
    """Real path of the BLAS library mapped into this process (after one GEMM), or ''."""
    torch.mm(torch.ones(8, 8), torch.ones(8, 8))
    with open("/proc/self/maps") as f:
        paths = sorted({line.split()[-1] for line in f if "/" in line})
    # An optimised library first: Debian's OpenBLAS libblas.so.3 is a wrapper around it.
    for prefixes in (("libopenblas", "libmkl_rt", "libblis"), ("libblas",)):
        for path in paths:
            if os.path.basename(path).startswith(prefixes):
                return os.path.realpath(path)
    return ""


def set_blas_threads(path, threads):
    if "openblas" in os.path.basename(path):
        try:
            ctypes.CDLL(path).openblas_set_num_threads(threads)
        except (OSError, AttributeError):
            print("compare.py: could not set OpenBLAS threads in %s" % path, file=sys.stderr)


def measure(fn, rounds, warmup):
    for _ in range(warmup):
        fn()
    return statistics.median(timed(fn) for _ in range(rounds))


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # ru_maxrss is KiB


def int_list(text):
    try:
        values = [int(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers, got '%s'" % text)
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive integers, got '%s'" % text)
    return values


def model_list(text):
    names = [m for m in text.split(",") if m]
    bad = [m for m in names if m not in MODELS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            "unknown model(s) %s (allowed: %s)" % (",".join(bad) or "''", ",".join(MODELS)))
    return names


FIELDS = ["framework", "model", "threads", "batch", "params", "train_step_ms",
          "train_images_per_sec", "infer_ms", "infer_images_per_sec", "peak_rss_mib",
          "fake_quant"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Run with /usr/bin/python3 (Debian's python3-torch).")
    p.add_argument("--threads", type=int_list, default=[2],
                   help="comma-separated thread counts, e.g. 1,2 (default 2)")
    p.add_argument("--batch", type=int_list, default=[128],
                   help="comma-separated batch sizes, e.g. 32,64,128,256 (default 128)")
    p.add_argument("--models", type=model_list, default=list(MODELS),
                   help="comma-separated: " + ",".join(MODELS) + " (default all)")
    p.add_argument("--rounds", type=int, default=5, help="timed steps per figure (median)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    p.add_argument("--csv", default="", help="write the CSV here (default: stdout)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--fake-quant", choices=["none", "hbfp8"], default="none",
                   help="classifiers: BFP8 fake quantization around every Conv2d and Linear "
                        "(see the top of this file); dcgan is not supported")
    args = p.parse_args()
    if args.fake_quant != "none" and "dcgan" in args.models:
        p.error("--fake-quant applies to the classifiers; leave dcgan out of --models")
    if args.rounds < 1 or args.warmup < 0:
        p.error("--rounds must be >= 1 and --warmup >= 0")

    torch.manual_seed(args.seed)
    blas = blas_library()
    print("blas %s" % (blas or "(none found)"), file=sys.stderr)
    if "/blas/libblas" in blas:
        print("WARNING: PyTorch runs on the netlib reference BLAS (%s): its Linear layers and "
              "ConvTranspose2d (alexnet-small, dcgan) are far slower than with an optimised "
              "BLAS. For a fair comparison install libopenblas0-pthread, or run with "
              "LD_LIBRARY_PATH=<dir holding OpenBLAS's libblas.so.3>." % blas, file=sys.stderr)
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        set_blas_threads(blas, threads)
        for name in args.models:
            for batch in args.batch:
                if name == "dcgan":
                    params, train, infer = dcgan_bench(batch, args.rounds, args.warmup)
                else:
                    params, train, infer = classifier_bench(name, batch, args.rounds,
                                                            args.warmup, args.fake_quant)
                rows.append({
                    "framework": "pytorch-" + torch.__version__, "model": name,
                    "threads": threads, "batch": batch, "params": params,
                    "train_step_ms": "%.2f" % (1e3 * train),
                    "train_images_per_sec": "%.1f" % (batch / train),
                    "infer_ms": "%.2f" % (1e3 * infer),
                    "infer_images_per_sec": "%.1f" % (batch / infer),
                    "peak_rss_mib": "%.1f" % peak_rss_mib(),
                    "fake_quant": args.fake_quant})
                if threads == args.threads[0] and batch == args.batch[0]:
                    print("params %s %d" % (name, params), file=sys.stderr)

    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
    else:
        w = csv.DictWriter(sys.stdout, fieldnames=FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        print()
    print("| model | fake quant | threads | batch | params | train images/s | inference images/s | "
          "peak RSS (MiB) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| %s | %s | %d | %d | %s | %.0f | %.0f | %s |" % (
            r["model"], r["fake_quant"], r["threads"], r["batch"], format(r["params"], ","),
            float(r["train_images_per_sec"]), float(r["infer_images_per_sec"]),
            r["peak_rss_mib"]))


if __name__ == "__main__":
    main()
