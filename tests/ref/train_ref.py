"""Independent PyTorch reference of gradbrain's DINO training step (tests only).

Written from the DINO / DINOv2 definitions: student and EMA teacher (DINOv3-style ViT from
vit_ref.backbone, float64 autograd), DINO head (Linear-GELU-Linear-GELU-Linear, L2-normalize,
plain last layer), teacher targets softmax((t - center)/tt) with an EMA center (momentum 0.9)
or Sinkhorn-Knopp (3 iterations), multi-crop cross-entropy averaged over (teacher crop,
other student crop) pairs, optional KoLeo (DINOv2 formula) on each global crop's CLS,
torch.nn.utils.clip_grad_norm_ per module (backbone, head), torch.optim.AdamW with decay /
no-decay groups and per-step lr and weight decay from DINO's cosine_scheduler, teacher EMA.

Case ibot adds DINOv2's iBOT masked-patch loss: the masks of each step are read from
OUTDIR/masks_S.npy ((n_global B) x N, written by the C test from gb_ibot_make_masks), the student's
masked patch embeddings become a learned mask token (zeros at start, decayed, clipped with the
backbone), the shared DINO head on the final-normed masked patch tokens of student and (unmasked)
teacher, teacher targets softmax((t - c_p)/tt) with an EMA patch center c_p over the masked
teacher patch logits, loss += W * mean over crops of the mean over its masked patches of the
cross-entropy (DINOv2's forward_masked with 2 global crops).

Case ibot_sep: the same with a separate iBOT head (DINOv2's ibot.separate_head = true): its own
parameters (initial values written as ihead_init.npy, flat in the C layout w0 b0 w1 b1 w2 b2 last,
for the C side to start from), AdamW in the head's decay groups, clipped on its own, EMA teacher.

Case wn: ema_koleo with DINO's weight-normed last layer (torch.nn.utils.weight_norm semantics with
weight_g fixed to 1, as DINOv1/v2's norm_last_layer): the parameter is V, the layer uses
V / ||V|| per prototype row; V is decayed, clipped, and EMA-averaged into the teacher's V.
student/teacher.safetensors then hold V as the plain last_layer.weight (compared with the trainer's V).
Case ibot_sep_wn: ibot_sep with weight-normed last layers in both heads.
Case ibot_sk: ibot with Sinkhorn-Knopp centering for the DINO targets and the iBOT patch targets
(over all masked patches of a step at once; no centers kept).

Usage: python3 train_ref.py OUTDIR CASE   (CASE: ema_koleo | sinkhorn | ibot | ibot_sep | wn | ibot_sep_wn | ibot_sk)
Writes: model.safetensors + config.json (initial student = teacher, HF DINOv3 keys + head),
global_S.npy / local_S.npy (crops of step S), case.json (options for the C side),
losses.npy (3 steps), student.safetensors / teacher.safetensors / center.npy after 3 steps.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

import vit_ref

torch.set_default_dtype(torch.float64)
STEPS = 3


def cosine_scheduler(base, final, n, warmup=0, start_warmup=0.0):
    """DINO's utils.cosine_scheduler (one 'epoch' of n iterations)."""
    warm = np.linspace(start_warmup, base, warmup) if warmup > 0 else np.array([])
    it = np.arange(n - warmup)
    cos = final + 0.5 * (base - final) * (1 + np.cos(np.pi * it / len(it)))
    return np.concatenate((warm, cos))


def f32(t):
    return torch.tensor(np.asarray(t.detach().numpy(), dtype=np.float32).astype(np.float64))


def main():
    out, case = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(1234)
    c = dict(dim=32, depth=2, heads=2, patch=4, n_reg=2, eps=1e-5, mlp=128, image=16)
    opt = dict(batch=4, n_global=2, n_local=2, global_size=16, local_size=8, hidden=48, bottleneck=16, k=64,
               iters=10, warmup=3, tt_warmup=5, lr=2e-3, min_lr=1e-5, wd0=0.04, wd1=0.4, mom0=0.9, mom1=1.0,
               tt0=0.04, tt1=0.07, ts=0.1, center_m=0.9, clip=0.5, koleo=0.1 if case in ("ema_koleo", "wn") else 0.0, norm_last_layer=1 if case in ("wn", "ibot_sep_wn") else 0,
               sinkhorn=1 if case in ("sinkhorn", "ibot_sk") else 0, ibot=0.7 if case.startswith("ibot") else 0.0, ibot_mask_prob=0.75,
               ibot_sep=1 if case in ("ibot_sep", "ibot_sep_wn") else 0)
    B, G, L, K = opt["batch"], opt["n_global"], opt["n_local"], opt["k"]

    p = vit_ref.random_params("dinov3", c, g)
    hp = {"w0": torch.randn(opt["hidden"], c["dim"], generator=g) * 0.2,
          "b0": torch.randn(opt["hidden"], generator=g) * 0.1,
          "w1": torch.randn(opt["hidden"], opt["hidden"], generator=g) * 0.15,
          "b1": torch.randn(opt["hidden"], generator=g) * 0.1,
          "w2": torch.randn(opt["bottleneck"], opt["hidden"], generator=g) * 0.15,
          "b2": torch.randn(opt["bottleneck"], generator=g) * 0.1,
          "last": torch.randn(K, opt["bottleneck"], generator=g) * 0.5}
    HEAD_ORDER = ("w0", "b0", "w1", "b1", "w2", "b2", "last")
    if opt["ibot_sep"]:  # a separate iBOT head, same shapes, its own draws
        ihp = {k_: torch.randn(v.shape, generator=g) * (0.5 if k_ == "last" else 0.15) for k_, v in hp.items()}
        for k_ in ihp:
            ihp[k_] = f32(ihp[k_])
        np.save(os.path.join(out, "ihead_init.npy"),
                np.concatenate([ihp[k_].numpy().ravel() for k_ in HEAD_ORDER]).astype(np.float32))
    # start from float32-representable values, as the C side will
    for k_ in list(p):
        if torch.is_tensor(p[k_]):
            p[k_] = f32(p[k_])
    for b in p["blocks"]:
        for k_ in list(b):
            if b[k_] is not None:
                b[k_] = f32(b[k_])
    for k_ in hp:
        hp[k_] = f32(hp[k_])

    def save_model(path, p, hp):
        sd = vit_ref.hf_state_dict("dinov3", c, p)
        del sd["embeddings.mask_token"]
        sd.update({"dino_head.mlp.0.weight": hp["w0"], "dino_head.mlp.0.bias": hp["b0"],
                   "dino_head.mlp.2.weight": hp["w1"], "dino_head.mlp.2.bias": hp["b1"],
                   "dino_head.mlp.4.weight": hp["w2"], "dino_head.mlp.4.bias": hp["b2"],
                   "dino_head.last_layer.weight": hp["last"]})
        vit_ref.save_safetensors(path, sd)

    save_model(os.path.join(out, "model.safetensors"), p, hp)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(vit_ref.hf_config("dinov3", c), f)

    # parameters as leaves; decay groups as DINO (no decay on biases, norms, LayerScale)
    decay, no_decay = [], []
    def leaf(t, dec):
        t = t.clone().requires_grad_(True)
        (decay if dec else no_decay).append(t)
        return t
    sp = {"patch_w": leaf(p["patch_w"], 1), "patch_b": leaf(p["patch_b"], 0), "cls": leaf(p["cls"], 1),
          "reg": leaf(p["reg"], 1), "norm_w": leaf(p["norm_w"], 0), "norm_b": leaf(p["norm_b"], 0), "blocks": []}
    for b in p["blocks"]:
        nb = {}
        for k_, v in b.items():
            if v is None:
                nb[k_] = None
            else:
                nb[k_] = leaf(v, k_.endswith("_w") and not k_.startswith("ln"))
        sp["blocks"].append(nb)
    if opt["ibot"]:
        sp["mask_token"] = leaf(torch.zeros(c["dim"]), 1)  # DINOv2: zeros, weight-decayed like cls
    back_params = decay + no_decay
    hdecay, hno = [], []
    shp = {}
    for k_, v in hp.items():
        t = v.clone().requires_grad_(True)
        shp[k_] = t
        (hno if k_.startswith("b") else hdecay).append(t)
    head_params = hdecay + hno
    ihead_params = []
    if opt["ibot_sep"]:
        ishp = {}
        for k_, v in ihp.items():
            t = v.clone().requires_grad_(True)
            ishp[k_] = t
            (hno if k_.startswith("b") else hdecay).append(t)
            ihead_params.append(t)
    optim = torch.optim.AdamW([{"params": decay + hdecay, "wd": 1}, {"params": no_decay + hno, "wd": 0}],
                              lr=opt["lr"], betas=(0.9, 0.999), eps=1e-8)

    def clone_tree(x):
        if isinstance(x, dict):
            return {k_: clone_tree(v) for k_, v in x.items()}
        if isinstance(x, list):
            return [clone_tree(v) for v in x]
        return None if x is None else x.detach().clone()
    tp, thp = clone_tree(sp), clone_tree(shp)
    tp.pop("mask_token", None)  # the teacher is never masked
    if opt["ibot_sep"]:
        ithp = clone_tree(ishp)
    else:
        ishp, ithp = shp, thp  # shared: the DINO head

    def head(hp, f):
        z = F.gelu(F.linear(f, hp["w0"], hp["b0"]))
        z = F.gelu(F.linear(z, hp["w1"], hp["b1"]))
        z = F.normalize(F.linear(z, hp["w2"], hp["b2"]), dim=-1, p=2)
        if opt["norm_last_layer"]:  # weight_norm(dim=0) with g = 1: each prototype row V_k / ||V_k||
            return F.linear(z, hp["last"] / hp["last"].norm(dim=1, keepdim=True))
        return F.linear(z, hp["last"])

    def koleo(x):
        x = F.normalize(x, eps=1e-8, p=2, dim=-1)
        with torch.no_grad():
            dots = x @ x.t()
            n = x.shape[0]
            dots.view(-1)[:: n + 1] = -1
            idx = dots.argmax(dim=1)
        d = F.pairwise_distance(x, x[idx], p=2, eps=1e-8)
        return -torch.log(d + 1e-8).mean()

    def sinkhorn(t, temp):
        Q = torch.exp(t / temp).t()
        Bq, Kq = Q.shape[1], Q.shape[0]
        Q = Q / Q.sum()
        for _ in range(3):
            Q = Q / Q.sum(dim=1, keepdim=True) / Kq
            Q = Q / Q.sum(dim=0, keepdim=True) / Bq
        return (Q * Bq).t()

    lr_s = cosine_scheduler(opt["lr"], opt["min_lr"], opt["iters"], opt["warmup"])
    wd_s = cosine_scheduler(opt["wd0"], opt["wd1"], opt["iters"])
    mom_s = cosine_scheduler(opt["mom0"], opt["mom1"], opt["iters"])
    tt_s = np.concatenate((np.linspace(opt["tt0"], opt["tt1"], opt["tt_warmup"]),
                           np.ones(opt["iters"] - opt["tt_warmup"]) * opt["tt1"]))
    center = torch.zeros(K)
    pcenter = torch.zeros(K)
    npre = 1 + c["n_reg"]
    rng = np.random.default_rng(7)
    losses, entropies = [], []
    for step in range(STEPS):
        gl = rng.standard_normal((G * B, 3, opt["global_size"], opt["global_size"])).astype(np.float32)
        lo = rng.standard_normal((L * B, 3, opt["local_size"], opt["local_size"])).astype(np.float32)
        np.save(os.path.join(out, "global_%d.npy" % step), gl)
        np.save(os.path.join(out, "local_%d.npy" % step), lo)
        for grp in optim.param_groups:
            grp["lr"] = lr_s[step]
            grp["weight_decay"] = wd_s[step] * grp["wd"]
        with torch.no_grad():
            if opt["ibot"]:
                M = torch.tensor(np.load(os.path.join(out, "masks_%d.npy" % step)) != 0)
                tall = vit_ref.backbone("dinov3", c, tp, torch.tensor(gl, dtype=torch.float64), tokens=True)
                tf = tall[:, 0]
                tlp = head(ithp, tall[:, npre:][M])  # (crop, patch) order
                if opt["sinkhorn"]:  # DINOv2/v3: Sinkhorn-Knopp over all masked patches of the step
                    Pp = sinkhorn(tlp, tt_s[step])
                else:
                    Pp = F.softmax((tlp - pcenter) / tt_s[step], dim=-1)
            else:
                tf = vit_ref.backbone("dinov3", c, tp, torch.tensor(gl, dtype=torch.float64))
            tl = head(thp, tf)
            if opt["sinkhorn"]:
                P = sinkhorn(tl, tt_s[step])
            else:
                P = F.softmax((tl - center) / tt_s[step], dim=-1)
        if opt["ibot"]:
            sall = vit_ref.backbone("dinov3", c, sp, torch.tensor(gl, dtype=torch.float64), mask=M,
                                    mask_token=sp["mask_token"], tokens=True)
            sfg = sall[:, 0]
        else:
            sfg = vit_ref.backbone("dinov3", c, sp, torch.tensor(gl, dtype=torch.float64))
        sfl = vit_ref.backbone("dinov3", c, sp, torch.tensor(lo, dtype=torch.float64))
        sl = head(shp, torch.cat([sfg, sfl]))
        logq = F.log_softmax(sl / opt["ts"], dim=-1).chunk(G + L)
        Pc = P.chunk(G)
        loss, npairs = 0, 0
        for iq in range(G):
            for v in range(G + L):
                if v == iq:
                    continue
                loss = loss + torch.sum(-Pc[iq] * logq[v], dim=-1).mean()
                npairs += 1
        loss = loss / npairs
        if opt["koleo"] > 0:
            loss = loss + opt["koleo"] * sum(koleo(x) for x in sfg.chunk(G))
        if opt["ibot"]:
            slp = head(ishp, sall[:, npre:][M])
            ce = -(Pp * F.log_softmax(slp / opt["ts"], dim=-1)).sum(dim=-1)
            w = (1.0 / M.sum(dim=1).clamp(min=1).double()).unsqueeze(1).expand_as(M)[M]
            ibot_loss = (ce * w).sum() / M.shape[0]
            loss = loss + opt["ibot"] * ibot_loss
            print("  ibot loss %.6f over %d masked patches (%d of %d crops masked)" % (
                ibot_loss.item(), int(M.sum()), int((M.sum(1) > 0).sum()), M.shape[0]))
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(back_params, opt["clip"])
        torch.nn.utils.clip_grad_norm_(head_params, opt["clip"])  # (the DINO head only)
        if ihead_params:
            torch.nn.utils.clip_grad_norm_(ihead_params, opt["clip"])
        optim.step()
        with torch.no_grad():
            m = mom_s[step]
            def ema(t, s):
                if isinstance(t, dict):
                    for k_ in t:
                        ema(t[k_], s[k_])
                elif isinstance(t, list):
                    for a, b in zip(t, s):
                        ema(a, b)
                elif t is not None:
                    t.mul_(m).add_((1 - m) * s.detach())
            ema(tp, sp)
            ema(thp, shp)
            if opt["ibot_sep"]:
                ema(ithp, ishp)
            if not opt["sinkhorn"]:
                center = center * opt["center_m"] + tl.mean(dim=0) * (1 - opt["center_m"])
            if opt["ibot"] and tlp.shape[0] > 0 and not opt["sinkhorn"]:
                pcenter = pcenter * opt["center_m"] + tlp.mean(dim=0) * (1 - opt["center_m"])
        losses.append(loss.item())
        Pm = P.mean(dim=0)  # collapse monitors: mean target entropy, entropy of the batch mean
        entropies.append([-torch.special.xlogy(P, P).sum(dim=-1).mean().item(),
                          -torch.special.xlogy(Pm, Pm).sum().item()])
        print("step %d: loss %.6f lr %.3e wd %.3f mom %.4f tt %.4f" % (step, loss.item(), lr_s[step], wd_s[step],
                                                                        mom_s[step], tt_s[step]))
    np.save(os.path.join(out, "losses.npy"), np.array(losses, dtype=np.float64))
    np.save(os.path.join(out, "entropies.npy"), np.array(entropies, dtype=np.float64))
    np.save(os.path.join(out, "center.npy"), center.numpy().astype(np.float32))
    if opt["ibot"]:
        np.save(os.path.join(out, "mask_token.npy"), sp["mask_token"].detach().numpy().astype(np.float32))
        np.save(os.path.join(out, "patch_center.npy"), pcenter.numpy().astype(np.float32))
    if opt["ibot_sep"]:
        for name, hd in (("ihead_student.npy", ishp), ("ihead_teacher.npy", ithp)):
            np.save(os.path.join(out, name),
                    np.concatenate([hd[k_].detach().numpy().ravel() for k_ in HEAD_ORDER]).astype(np.float32))
    save_model(os.path.join(out, "student.safetensors"), clone_tree(sp), clone_tree(shp))
    save_model(os.path.join(out, "teacher.safetensors"), tp, thp)
    with open(os.path.join(out, "case.json"), "w") as f:
        json.dump(dict(opt, steps=STEPS), f, indent=1)


if __name__ == "__main__":
    main()
