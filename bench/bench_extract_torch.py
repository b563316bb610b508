"""PyTorch peer of bench_extract: the same ViT-S/16 224 px DINOv3-style model (4 registers,
RoPE, LayerScale), DINO head with K = 65536, identity views (teacher logits = detached student
logits), forward + the backprop taps of all 12 blocks via retain_grad, parameters frozen
(requires_grad False), float32, same thread count. The graph starts at the first block's
output (a leaf requiring grad), so autograd neither records nor backpropagates block 1 and the
embeddings, which no tap needs and gradbrain skips as well (until 2026-11-23 the graph started
at the embeddings: about 1/23 more backward work than needed).

  python3 bench_extract_torch.py [threads=2] [batch=16] [iters=5]

Last line: "images_per_s X"."""
import math
import sys
import time

import torch
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
B = int(sys.argv[2]) if len(sys.argv) > 2 else 16
iters = int(sys.argv[3]) if len(sys.argv) > 3 else 5
torch.set_num_threads(threads)
torch.manual_seed(0)
D, L, H, P, R, S, Fh, K = 384, 12, 6, 16, 4, 224, 1536, 65536
hd = D // H
g = S // P


def rn(*s, std=0.02):
    return torch.randn(*s) * std


patch_w, patch_b, cls, reg = rn(D, 3, P, P), rn(D), rn(1, 1, D), rn(1, R, D)
blocks = [dict(n1w=torch.ones(D), n1b=torch.zeros(D), qkv_w=rn(3 * D, D), qkv_b=rn(3 * D), o_w=rn(D, D), o_b=rn(D),
               ls1=torch.full((D,), 0.5), n2w=torch.ones(D), n2b=torch.zeros(D), f1w=rn(Fh, D), f1b=rn(Fh),
               f2w=rn(D, Fh), f2b=rn(D), ls2=torch.full((D,), 0.5)) for _ in range(L)]
norm_w, norm_b = torch.ones(D), torch.zeros(D)
head = [rn(2048, D), torch.zeros(2048), rn(2048, 2048), torch.zeros(2048), rn(256, 2048), torch.zeros(256)]
last = F.normalize(rn(K, 256), dim=1)
center = torch.zeros(K)
inv = 1.0 / 100.0 ** torch.arange(0, 1, 4 / hd)
c = (torch.arange(g) + 0.5) / g
coords = torch.stack(torch.meshgrid(c, c, indexing="ij"), -1).flatten(0, 1) * 2 - 1
ang = (2 * math.pi * coords[:, :, None] * inv[None, None, :]).flatten(1, 2).tile(2)
cos, sin = torch.cos(ang), torch.sin(ang)


def rot(x):
    return torch.cat((-x[..., hd // 2:], x[..., :hd // 2]), -1)


def step(x):
    pe = F.conv2d(x, patch_w, patch_b, stride=P).flatten(2).transpose(1, 2)
    h = torch.cat([cls.expand(B, -1, -1), reg.expand(B, -1, -1), pe], 1)  # no grad: everything is frozen
    T = h.shape[1]
    taps = []
    for i, b in enumerate(blocks):
        y = F.layer_norm(h, (D,), b["n1w"], b["n1b"], 1e-5)
        q, k, v = F.linear(y, b["qkv_w"], b["qkv_b"]).reshape(B, T, 3, H, hd).permute(2, 0, 3, 1, 4)
        q = torch.cat([q[:, :, :1 + R], q[:, :, 1 + R:] * cos + rot(q[:, :, 1 + R:]) * sin], 2)
        k = torch.cat([k[:, :, :1 + R], k[:, :, 1 + R:] * cos + rot(k[:, :, 1 + R:]) * sin], 2)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), -1)
        o = F.linear((a @ v).transpose(1, 2).reshape(B, T, D), b["o_w"], b["o_b"])
        h = h + o * b["ls1"]
        y = F.linear(F.gelu(F.linear(F.layer_norm(h, (D,), b["n2w"], b["n2b"], 1e-5), b["f1w"], b["f1b"])), b["f2w"], b["f2b"])
        h = h + y * b["ls2"]
        if i == 0:  # the graph starts at the first tap: no gradient below it (gradbrain stops there too)
            h.requires_grad_(True)
        h.retain_grad()
        taps.append(h)
    f = F.layer_norm(h[:, 0], (D,), norm_w, norm_b, 1e-5)
    z = F.gelu(F.linear(f, head[0], head[1]))
    z = F.gelu(F.linear(z, head[2], head[3]))
    z = F.normalize(F.linear(z, head[4], head[5]), dim=-1)
    s = F.linear(z, last)
    t = s.detach()  # identity views: the teacher sees what the student sees
    loss = -(torch.softmax((t - center) / 0.07, -1) * torch.log_softmax(s / 0.1, -1)).sum(-1)
    loss.sum().backward()
    return [(h.detach(), h.grad) for h in taps]


x = torch.randn(B, 3, S, S)
times, cpu = [], []
for it in range(iters + 1):
    t0, c0 = time.perf_counter(), time.process_time()
    step(x)
    if it:
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
times.sort()
cpu.sort()
med, cmed = times[len(times) // 2], cpu[len(cpu) // 2]
print("torch %s, threads %d, batch %d: %.3f s/batch, %.3f CPU-s/batch" % (torch.__version__, threads, B, med, cmed))
print("images_per_cpu_s %.3f" % (B / cmed))
print("images_per_s %.3f" % (B / med))
