"""Independent PyTorch reference for gradbrain's ViT engine (tests only).

Written from the papers' and repositories' definitions (DINOv3: RoPE on patch tokens with
periods base^(j/(hd/4)), rotate-half, registers, LayerScale; DINOv2: learned position
embedding resampled by F.interpolate(bicubic, align_corners=False) to the input grid,
registers; CLIP: ln_pre, QuickGELU, ln_post on CLS), computed in float64 with autograd.

For each case it writes into a directory: model.safetensors (random weights in the HF
transformers key layout, with a DINO head or classifier when the objective needs one),
config.json, images.npy (student view), teacher.npy (teacher view, when views differ),
labels.txt, case.json, and the reference taps fwd_XX.npy / bwd_XX.npy (B, T, D) for every
block, loss.npy (B) and feat.npy (B, D).

Usage: python3 vit_ref.py OUTDIR CASE [CASE ...], CASE = arch:size:objective:views
(arch dinov3|dinov2|clip, size tiny|vits, objective dino|xent|invariance, views same|diff).
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def save_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def size_config(arch, size):
    if size == "tiny":
        c = dict(dim=64, depth=3, heads=4, patch=4, image=16, batch=3)
        c["pos_grid"] = 5 if arch == "dinov2" else 4  # dinov2: exercise the bicubic resampling
    else:
        c = dict(dim=384, depth=12, heads=6, patch=16, image=224, batch=2)
        c["pos_grid"] = 14
        if arch == "dinov2":  # the real DINOv2 ViT-S/14 geometry: 37x37 learned grid, 16x16 input grid
            c.update(patch=14, pos_grid=37)
    c["mlp"] = 4 * c["dim"]
    c["n_reg"] = 0 if arch == "clip" else 4
    c["eps"] = {"dinov3": 1e-5, "dinov2": 1e-6, "clip": 1e-5}[arch]
    return c


def random_params(arch, c, g):
    D, Fh, P, L = c["dim"], c["mlp"], c["patch"], c["depth"]

    def rn(*shape, std=1.0):
        return torch.randn(*shape, generator=g) * std

    p = {"patch_w": rn(D, 3, P, P, std=1 / math.sqrt(3 * P * P)), "cls": rn(D, std=0.5)}
    p["patch_b"] = None if arch == "clip" else rn(D, std=0.1)
    if c["n_reg"]:
        p["reg"] = rn(c["n_reg"], D, std=0.5)
    if arch != "dinov3":
        p["pos"] = rn(1 + c["pos_grid"] ** 2, D, std=0.5)
    if arch == "clip":
        p["ln_pre_w"], p["ln_pre_b"] = 1 + rn(D, std=0.1), rn(D, std=0.1)
    blocks = []
    for _ in range(L):
        b = {}
        for n in ("ln1", "ln2"):
            b[n + "_w"], b[n + "_b"] = 1 + rn(D, std=0.1), rn(D, std=0.1)
        for n in ("q", "k", "v", "o"):
            b[n + "_w"] = rn(D, D, std=1 / math.sqrt(D))
            b[n + "_b"] = rn(D, std=0.1)
        if arch == "dinov3":
            b["k_b"] = None  # HF DINOv3: key_bias = False
        b["fc1_w"], b["fc1_b"] = rn(Fh, D, std=1 / math.sqrt(D)), rn(Fh, std=0.1)
        b["fc2_w"], b["fc2_b"] = rn(D, Fh, std=1 / math.sqrt(Fh)), rn(D, std=0.1)
        if arch != "clip":
            b["ls1"], b["ls2"] = 0.5 + rn(D, std=0.1), 0.5 + rn(D, std=0.1)
        blocks.append(b)
    p["blocks"] = blocks
    p["norm_w"], p["norm_b"] = 1 + rn(D, std=0.1), rn(D, std=0.1)
    return p


def hf_state_dict(arch, c, p):
    sd = {}
    if arch == "dinov3":
        sd["embeddings.cls_token"] = p["cls"].reshape(1, 1, -1)
        sd["embeddings.mask_token"] = torch.zeros(1, 1, c["dim"])
        sd["embeddings.register_tokens"] = p["reg"].reshape(1, c["n_reg"], -1)
        sd["embeddings.patch_embeddings.weight"] = p["patch_w"]
        sd["embeddings.patch_embeddings.bias"] = p["patch_b"]
        for i, b in enumerate(p["blocks"]):
            pre = "layer.%d." % i
            sd[pre + "norm1.weight"], sd[pre + "norm1.bias"] = b["ln1_w"], b["ln1_b"]
            for n, hf in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("o", "o_proj")):
                sd[pre + "attention.%s.weight" % hf] = b[n + "_w"]
                if b[n + "_b"] is not None:
                    sd[pre + "attention.%s.bias" % hf] = b[n + "_b"]
            sd[pre + "layer_scale1.lambda1"], sd[pre + "layer_scale2.lambda1"] = b["ls1"], b["ls2"]
            sd[pre + "norm2.weight"], sd[pre + "norm2.bias"] = b["ln2_w"], b["ln2_b"]
            sd[pre + "mlp.up_proj.weight"], sd[pre + "mlp.up_proj.bias"] = b["fc1_w"], b["fc1_b"]
            sd[pre + "mlp.down_proj.weight"], sd[pre + "mlp.down_proj.bias"] = b["fc2_w"], b["fc2_b"]
        sd["norm.weight"], sd["norm.bias"] = p["norm_w"], p["norm_b"]
    elif arch == "dinov2":
        sd["embeddings.cls_token"] = p["cls"].reshape(1, 1, -1)
        sd["embeddings.mask_token"] = torch.zeros(1, c["dim"])
        sd["embeddings.register_tokens"] = p["reg"].reshape(1, c["n_reg"], -1)
        sd["embeddings.position_embeddings"] = p["pos"].reshape(1, -1, c["dim"])
        sd["embeddings.patch_embeddings.projection.weight"] = p["patch_w"]
        sd["embeddings.patch_embeddings.projection.bias"] = p["patch_b"]
        for i, b in enumerate(p["blocks"]):
            pre = "encoder.layer.%d." % i
            sd[pre + "norm1.weight"], sd[pre + "norm1.bias"] = b["ln1_w"], b["ln1_b"]
            for n, hf in (("q", "query"), ("k", "key"), ("v", "value")):
                sd[pre + "attention.attention.%s.weight" % hf] = b[n + "_w"]
                sd[pre + "attention.attention.%s.bias" % hf] = b[n + "_b"]
            sd[pre + "attention.output.dense.weight"], sd[pre + "attention.output.dense.bias"] = b["o_w"], b["o_b"]
            sd[pre + "layer_scale1.lambda1"], sd[pre + "layer_scale2.lambda1"] = b["ls1"], b["ls2"]
            sd[pre + "norm2.weight"], sd[pre + "norm2.bias"] = b["ln2_w"], b["ln2_b"]
            sd[pre + "mlp.fc1.weight"], sd[pre + "mlp.fc1.bias"] = b["fc1_w"], b["fc1_b"]
            sd[pre + "mlp.fc2.weight"], sd[pre + "mlp.fc2.bias"] = b["fc2_w"], b["fc2_b"]
        sd["layernorm.weight"], sd["layernorm.bias"] = p["norm_w"], p["norm_b"]
    else:
        v = "vision_model."
        sd[v + "embeddings.class_embedding"] = p["cls"]
        sd[v + "embeddings.patch_embedding.weight"] = p["patch_w"]
        sd[v + "embeddings.position_embedding.weight"] = p["pos"]
        sd[v + "pre_layrnorm.weight"], sd[v + "pre_layrnorm.bias"] = p["ln_pre_w"], p["ln_pre_b"]
        for i, b in enumerate(p["blocks"]):
            pre = v + "encoder.layers.%d." % i
            sd[pre + "layer_norm1.weight"], sd[pre + "layer_norm1.bias"] = b["ln1_w"], b["ln1_b"]
            for n, hf in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("o", "out_proj")):
                sd[pre + "self_attn.%s.weight" % hf] = b[n + "_w"]
                sd[pre + "self_attn.%s.bias" % hf] = b[n + "_b"]
            sd[pre + "layer_norm2.weight"], sd[pre + "layer_norm2.bias"] = b["ln2_w"], b["ln2_b"]
            sd[pre + "mlp.fc1.weight"], sd[pre + "mlp.fc1.bias"] = b["fc1_w"], b["fc1_b"]
            sd[pre + "mlp.fc2.weight"], sd[pre + "mlp.fc2.bias"] = b["fc2_w"], b["fc2_b"]
        sd[v + "post_layernorm.weight"], sd[v + "post_layernorm.bias"] = p["norm_w"], p["norm_b"]
    return sd


def orig_state_dict(arch, c, p):
    """Key layouts of the original repositories: facebookresearch/dinov3 and dinov2
    (vision_transformer.py: fused qkv, ls1/ls2.gamma, storage/register tokens) and openai/CLIP
    (visual.*, in_proj, c_fc/c_proj, plus text-tower keys that must be ignored)."""
    D = c["dim"]
    sd = {}
    if arch in ("dinov3", "dinov2"):
        sd["cls_token"] = p["cls"].reshape(1, 1, -1)
        sd["mask_token"] = torch.zeros(1, D)
        sd["storage_tokens" if arch == "dinov3" else "register_tokens"] = p["reg"].reshape(1, c["n_reg"], -1)
        if arch == "dinov2":
            sd["pos_embed"] = p["pos"].reshape(1, -1, D)
        else:
            hd = D // c["heads"]
            sd["rope_embed.periods"] = 100.0 ** (torch.arange(hd // 4) / (hd // 4))
        sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"] = p["patch_w"], p["patch_b"]
        for i, b in enumerate(p["blocks"]):
            pre = "blocks.%d." % i
            sd[pre + "norm1.weight"], sd[pre + "norm1.bias"] = b["ln1_w"], b["ln1_b"]
            sd[pre + "attn.qkv.weight"] = torch.cat([b["q_w"], b["k_w"], b["v_w"]])
            kb = b["k_b"]
            if kb is None:  # dinov3: a nonzero k bias in the file, zeroed by bias_mask
                kb = torch.ones(D)
                sd[pre + "attn.qkv.bias_mask"] = torch.cat([torch.ones(D), torch.zeros(D), torch.ones(D)])
            sd[pre + "attn.qkv.bias"] = torch.cat([b["q_b"], kb, b["v_b"]])
            sd[pre + "attn.proj.weight"], sd[pre + "attn.proj.bias"] = b["o_w"], b["o_b"]
            sd[pre + "ls1.gamma"], sd[pre + "ls2.gamma"] = b["ls1"], b["ls2"]
            sd[pre + "norm2.weight"], sd[pre + "norm2.bias"] = b["ln2_w"], b["ln2_b"]
            sd[pre + "mlp.fc1.weight"], sd[pre + "mlp.fc1.bias"] = b["fc1_w"], b["fc1_b"]
            sd[pre + "mlp.fc2.weight"], sd[pre + "mlp.fc2.bias"] = b["fc2_w"], b["fc2_b"]
        sd["norm.weight"], sd["norm.bias"] = p["norm_w"], p["norm_b"]
    else:
        v = "visual."
        sd[v + "class_embedding"], sd[v + "positional_embedding"] = p["cls"], p["pos"]
        sd[v + "conv1.weight"] = p["patch_w"]
        sd[v + "ln_pre.weight"], sd[v + "ln_pre.bias"] = p["ln_pre_w"], p["ln_pre_b"]
        for i, b in enumerate(p["blocks"]):
            pre = v + "transformer.resblocks.%d." % i
            sd[pre + "ln_1.weight"], sd[pre + "ln_1.bias"] = b["ln1_w"], b["ln1_b"]
            sd[pre + "attn.in_proj_weight"] = torch.cat([b["q_w"], b["k_w"], b["v_w"]])
            sd[pre + "attn.in_proj_bias"] = torch.cat([b["q_b"], b["k_b"], b["v_b"]])
            sd[pre + "attn.out_proj.weight"], sd[pre + "attn.out_proj.bias"] = b["o_w"], b["o_b"]
            sd[pre + "ln_2.weight"], sd[pre + "ln_2.bias"] = b["ln2_w"], b["ln2_b"]
            sd[pre + "mlp.c_fc.weight"], sd[pre + "mlp.c_fc.bias"] = b["fc1_w"], b["fc1_b"]
            sd[pre + "mlp.c_proj.weight"], sd[pre + "mlp.c_proj.bias"] = b["fc2_w"], b["fc2_b"]
        sd[v + "ln_post.weight"], sd[v + "ln_post.bias"] = p["norm_w"], p["norm_b"]
        sd[v + "proj"] = torch.zeros(D, 8)
        sd["token_embedding.weight"] = torch.zeros(10, 8)  # text tower: ignored
        sd["logit_scale"] = torch.zeros(())
    return sd


def hf_config(arch, c):
    if arch == "dinov3":
        return dict(model_type="dinov3_vit", hidden_size=c["dim"], num_hidden_layers=c["depth"],
                    num_attention_heads=c["heads"], intermediate_size=c["mlp"], patch_size=c["patch"],
                    num_register_tokens=c["n_reg"], layer_norm_eps=c["eps"], rope_theta=100.0,
                    image_size=c["image"], hidden_act="gelu", key_bias=False)
    if arch == "dinov2":
        return dict(model_type="dinov2_with_registers", hidden_size=c["dim"], num_hidden_layers=c["depth"],
                    num_attention_heads=c["heads"], mlp_ratio=4, patch_size=c["patch"],
                    num_register_tokens=c["n_reg"], layer_norm_eps=c["eps"],
                    image_size=c["pos_grid"] * c["patch"], hidden_act="gelu")
    return dict(model_type="clip_vision_model", hidden_size=c["dim"], num_hidden_layers=c["depth"],
                num_attention_heads=c["heads"], intermediate_size=c["mlp"], patch_size=c["patch"],
                layer_norm_eps=c["eps"], image_size=c["pos_grid"] * c["patch"], hidden_act="quick_gelu")


def rope_cos_sin(gh, gw, hd, base):
    inv = 1.0 / base ** torch.arange(0, 1, 4 / hd)  # (hd/4,)
    ch = (torch.arange(gh) + 0.5) / gh
    cw = (torch.arange(gw) + 0.5) / gw
    coords = torch.stack(torch.meshgrid(ch, cw, indexing="ij"), dim=-1).flatten(0, 1) * 2 - 1  # (N, 2) y, x
    ang = (2 * math.pi * coords[:, :, None] * inv[None, None, :]).flatten(1, 2).tile(2)  # (N, hd)
    return torch.cos(ang), torch.sin(ang)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def backbone(arch, c, p, x, taps=None, mask=None, mask_token=None, tokens=False):
    """Returns the final-normed CLS (B, D); appends block outputs to taps (retain_grad).
    mask (B, N) bool: those patch embeddings are replaced by mask_token (D) before the blocks
    (iBOT); tokens=True returns every final-normed token (B, T, D) instead of the CLS."""
    B, D, P, H = x.shape[0], c["dim"], c["patch"], c["heads"]
    hd = D // H
    pe = F.conv2d(x, p["patch_w"], p["patch_b"], stride=P)
    gh, gw = pe.shape[2], pe.shape[3]
    pe = pe.flatten(2).transpose(1, 2)
    if mask is not None:
        pe = torch.where(mask.unsqueeze(-1), mask_token.reshape(1, 1, D).expand_as(pe), pe)
    cls = p["cls"].reshape(1, 1, D).expand(B, 1, D)
    if arch == "dinov3":
        h = torch.cat([cls, p["reg"].reshape(1, -1, D).expand(B, -1, D), pe], dim=1)
    else:
        pos = p["pos"]
        G = c["pos_grid"]
        if G != gh or G != gw:
            grid = pos[1:].reshape(1, G, G, D).permute(0, 3, 1, 2)
            grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False)
            pos = torch.cat([pos[:1], grid.permute(0, 2, 3, 1).reshape(-1, D)], dim=0)
        h = torch.cat([cls, pe], dim=1) + pos.unsqueeze(0)
        if c["n_reg"]:
            h = torch.cat([h[:, :1], p["reg"].reshape(1, -1, D).expand(B, -1, D), h[:, 1:]], dim=1)
        if arch == "clip":
            h = F.layer_norm(h, (D,), p["ln_pre_w"], p["ln_pre_b"], c["eps"])
    T = h.shape[1]
    npre = T - gh * gw
    if arch == "dinov3":
        cos, sin = rope_cos_sin(gh, gw, hd, 100.0)
    for b in p["blocks"]:
        y = F.layer_norm(h, (D,), b["ln1_w"], b["ln1_b"], c["eps"])
        q = F.linear(y, b["q_w"], b["q_b"]).reshape(B, T, H, hd).transpose(1, 2)
        k = F.linear(y, b["k_w"], b["k_b"]).reshape(B, T, H, hd).transpose(1, 2)
        v = F.linear(y, b["v_w"], b["v_b"]).reshape(B, T, H, hd).transpose(1, 2)
        if arch == "dinov3":
            qp, kp = q[:, :, npre:], k[:, :, npre:]
            q = torch.cat([q[:, :, :npre], qp * cos + rotate_half(qp) * sin], dim=2)
            k = torch.cat([k[:, :, :npre], kp * cos + rotate_half(kp) * sin], dim=2)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, D)
        o = F.linear(o, b["o_w"], b["o_b"])
        h = h + (o * b["ls1"] if "ls1" in b else o)
        y = F.layer_norm(h, (D,), b["ln2_w"], b["ln2_b"], c["eps"])
        y = F.linear(y, b["fc1_w"], b["fc1_b"])
        y = y * torch.sigmoid(1.702 * y) if arch == "clip" else F.gelu(y)
        y = F.linear(y, b["fc2_w"], b["fc2_b"])
        h = h + (y * b["ls2"] if "ls2" in b else y)
        if taps is not None:
            h.retain_grad()
            taps.append(h)
    if tokens:
        return F.layer_norm(h, (D,), p["norm_w"], p["norm_b"], c["eps"])
    return F.layer_norm(h[:, 0], (D,), p["norm_w"], p["norm_b"], c["eps"])


def dino_head(hp, f):
    z = F.gelu(F.linear(f, hp["w0"], hp["b0"]))
    z = F.gelu(F.linear(z, hp["w1"], hp["b1"]))
    z = F.normalize(F.linear(z, hp["w2"], hp["b2"]), dim=-1, p=2)
    w = hp["g"] * hp["v"] / hp["v"].norm(dim=1, keepdim=True)  # weight norm, dim 0
    return F.linear(z, w)


def make_case(outdir, spec, seed):
    """spec = arch:size:objective:views[:orig] (orig: original-repository key layout)."""
    parts = spec.split(":")
    arch, size, objective, views = parts[:4]
    orig = len(parts) > 4 and parts[4] == "orig"
    c = size_config(arch, size)
    g = torch.Generator().manual_seed(seed)
    p = random_params(arch, c, g)
    sd = orig_state_dict(arch, c, p) if orig else hf_state_dict(arch, c, p)
    D, B, S = c["dim"], c["batch"], c["image"]
    hp = None
    if objective == "dino":
        hid, bot, K = (48, 16, 40) if size == "tiny" else (2048, 256, 1024)
        hp = dict(w0=torch.randn(hid, D, generator=g) / math.sqrt(D), b0=torch.randn(hid, generator=g) * 0.1,
                  w1=torch.randn(hid, hid, generator=g) / math.sqrt(hid), b1=torch.randn(hid, generator=g) * 0.1,
                  w2=torch.randn(bot, hid, generator=g) / math.sqrt(hid), b2=torch.randn(bot, generator=g) * 0.1,
                  g=torch.rand(K, 1, generator=g) + 0.5, v=torch.randn(K, bot, generator=g))
        for i, k in enumerate(("0", "2", "4")):
            sd["dino_head.mlp.%s.weight" % k] = hp["w%d" % i]
            sd["dino_head.mlp.%s.bias" % k] = hp["b%d" % i]
        sd["dino_head.last_layer.weight_g"] = hp["g"]
        sd["dino_head.last_layer.weight_v"] = hp["v"]
    if objective == "xent":
        ncls = 10
        cw, cb = torch.randn(ncls, D, generator=g) / math.sqrt(D), torch.randn(ncls, generator=g) * 0.1
        cname = "head" if orig else "classifier"  # timm-style / HF-style classifier keys
        sd[cname + ".weight"], sd[cname + ".bias"] = cw, cb
    sd = {k: v for k, v in sd.items() if v is not None}
    os.makedirs(outdir, exist_ok=True)
    save_safetensors(os.path.join(outdir, "model.safetensors"), sd)
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(hf_config(arch, c), f, indent=1)
    # the reference uses the float32-rounded weights that the file holds
    rd = lambda t: None if t is None else t.float().double()
    p = {k: (rd(v) if torch.is_tensor(v) else v) for k, v in p.items()}
    p["blocks"] = [{k: rd(v) for k, v in b.items()} for b in p["blocks"]]
    if hp is not None:
        hp = {k: rd(v) for k, v in hp.items()}
    x = torch.randn(B, 3, S, S, generator=g).float().double()
    np.save(os.path.join(outdir, "images.npy"), x.numpy().astype(np.float32))
    xt = x
    if views == "diff":
        xt = (x + 0.5 * torch.randn(B, 3, S, S, generator=g)).float().double()
        np.save(os.path.join(outdir, "teacher.npy"), xt.numpy().astype(np.float32))
    labels = [-1] * B
    if objective == "xent":
        labels[0] = 3
    with open(os.path.join(outdir, "labels.txt"), "w") as f:
        f.write("".join("%d\n" % y for y in labels))
    taps = []
    fs = backbone(arch, c, p, x.clone().requires_grad_(True), taps)  # parameters frozen; grads flow from the input
    with torch.no_grad():
        ft = backbone(arch, c, p, xt) if views == "diff" else fs.detach()
    if objective == "dino":
        with torch.no_grad():
            t = dino_head(hp, ft)
            center = t.mean(dim=0, keepdim=True)  # mean teacher logits over the stimulus set (= this batch)
            target = torch.softmax((t - center) / 0.07, dim=-1)
        s = dino_head(hp, fs)
        loss = -(target * torch.log_softmax(s / 0.1, dim=-1)).sum(dim=-1)
    elif objective == "xent":
        logits = F.linear(fs, cw.float().double(), cb.float().double())
        y = torch.tensor([lab if lab >= 0 else int(logits[i].argmax()) for i, lab in enumerate(labels)])
        loss = F.cross_entropy(logits, y, reduction="none")
    else:
        loss = 1 - F.cosine_similarity(fs, ft.detach(), dim=-1, eps=0)
    loss.sum().backward()  # per-image losses: each image's gradient is that of its own L_i
    for l, h in enumerate(taps):
        np.save(os.path.join(outdir, "fwd_%02d.npy" % (l + 1)), h.detach().numpy().astype(np.float32))
        np.save(os.path.join(outdir, "bwd_%02d.npy" % (l + 1)), h.grad.numpy().astype(np.float32))
    np.save(os.path.join(outdir, "loss.npy"), loss.detach().numpy().astype(np.float32))
    np.save(os.path.join(outdir, "feat.npy"), fs.detach().numpy().astype(np.float32))
    with open(os.path.join(outdir, "case.json"), "w") as f:
        json.dump(dict(arch=arch, size=size, objective=objective, views=views, depth=c["depth"], batch=B,
                       image=S, labels=labels), f)


def main():
    out = sys.argv[1]
    for i, spec in enumerate(sys.argv[2:]):
        make_case(os.path.join(out, spec.replace(":", "_")), spec, 1000 + i)


if __name__ == "__main__":
    main()
