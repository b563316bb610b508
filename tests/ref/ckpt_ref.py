"""Reading `gradbrain train` checkpoints into the PyTorch reference (tests only).

Independent of the C loader: a plain safetensors reader (JSON header + little-endian F32 data),
the HF DINOv3ViTModel key layout mapped onto vit_ref's parameter dicts, the DINO head as a plain
Linear-GELU-Linear-GELU-Linear, L2-normalize, last layer (no weight norm: the trainer's head),
and an uncompressed 8-bit RGB PNG writer for stimuli (no resampling on the C side when the
image is already at the extraction size).
"""
import json
import struct
import zlib

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        assert h["dtype"] == "F32", (path, name, h["dtype"])
        a, b = h["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(h["shape"]).astype(np.float64)
    return out


def _t(a):
    return torch.tensor(a, dtype=torch.float64)


def dinov3_params(sd, depth):
    """vit_ref parameter dict (arch dinov3) from HF DINOv3ViTModel tensors."""
    D = sd["embeddings.cls_token"].shape[-1]
    p = {"cls": _t(sd["embeddings.cls_token"].reshape(D)),
         "patch_w": _t(sd["embeddings.patch_embeddings.weight"]),
         "patch_b": _t(sd["embeddings.patch_embeddings.bias"]),
         "norm_w": _t(sd["norm.weight"]), "norm_b": _t(sd["norm.bias"]), "blocks": []}
    if "embeddings.register_tokens" in sd:
        p["reg"] = _t(sd["embeddings.register_tokens"].reshape(-1, D))
    for i in range(depth):
        pre = "layer.%d." % i
        b = {"ln1_w": _t(sd[pre + "norm1.weight"]), "ln1_b": _t(sd[pre + "norm1.bias"]),
             "ln2_w": _t(sd[pre + "norm2.weight"]), "ln2_b": _t(sd[pre + "norm2.bias"]),
             "ls1": _t(sd[pre + "layer_scale1.lambda1"]), "ls2": _t(sd[pre + "layer_scale2.lambda1"]),
             "fc1_w": _t(sd[pre + "mlp.up_proj.weight"]), "fc1_b": _t(sd[pre + "mlp.up_proj.bias"]),
             "fc2_w": _t(sd[pre + "mlp.down_proj.weight"]), "fc2_b": _t(sd[pre + "mlp.down_proj.bias"])}
        for n, hf in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("o", "o_proj")):
            b[n + "_w"] = _t(sd[pre + "attention.%s.weight" % hf])
            key = pre + "attention.%s.bias" % hf
            b[n + "_b"] = _t(sd[key]) if key in sd else None
        p["blocks"].append(b)
    return p


def head_params(sd):
    return {"w0": _t(sd["dino_head.mlp.0.weight"]), "b0": _t(sd["dino_head.mlp.0.bias"]),
            "w1": _t(sd["dino_head.mlp.2.weight"]), "b1": _t(sd["dino_head.mlp.2.bias"]),
            "w2": _t(sd["dino_head.mlp.4.weight"]), "b2": _t(sd["dino_head.mlp.4.bias"]),
            "last": last_layer(sd)}


def last_layer(sd):
    """The prototypes: a plain weight, or torch weight_norm's (weight_g, weight_v): g * v / ||v|| per row."""
    if "dino_head.last_layer.weight" in sd:
        return _t(sd["dino_head.last_layer.weight"])
    g, v = _t(sd["dino_head.last_layer.weight_g"]), _t(sd["dino_head.last_layer.weight_v"])
    return g.reshape(-1, 1) * v / v.norm(dim=1, keepdim=True)


def head(hp, f):
    z = F.gelu(F.linear(f, hp["w0"], hp["b0"]))
    z = F.gelu(F.linear(z, hp["w1"], hp["b1"]))
    z = F.normalize(F.linear(z, hp["w2"], hp["b2"]), dim=-1, p=2)
    return F.linear(z, hp["last"])


def write_png(path, rgb):
    """rgb: (H, W, 3) uint8 -> an 8-bit RGB PNG (filter 0 rows, zlib)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind, data):
        c = kind + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw)))
        f.write(chunk(b"IEND", b""))


def normalize(rgb):
    """(H, W, 3) uint8 -> (3, H, W) float64 with ImageNet mean / std (DINO's normalization)."""
    x = rgb.astype(np.float64) / 255.0
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return x.transpose(2, 0, 1)
