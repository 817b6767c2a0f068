#!/usr/bin/env python3
"""Writes tests/data/blur_pool/torch_cases.json: anti-aliased pooling computed
by PyTorch the way the paper's code does it (Zhang 2019, antialiased-cnns
BlurPool: ReflectionPad2d, then a depthwise conv2d of the outer product of
binomial filters with the stride), after F.max_pool2d / F.avg_pool2d at stride
1 on the blurred axes. nn_blur_pool_test compares nn::BlurPool2d with it.

    /usr/bin/python3 scripts/blur_pool_fixture.py > tests/data/blur_pool/torch_cases.json
"""
import json
import math

import torch
import torch.nn.functional as F

# name, kind, [C, H, W], batch, kernel (h, w), stride (h, w), pad (h, w), include_pad, blur
CASES = [
    ("max_2x2_s2_blur3", "max", [3, 8, 12], 2, (2, 2), (2, 2), (0, 0), False, 3),
    ("max_unequal_strides_blur5", "max", [2, 11, 17], 1, (3, 2), (2, 3), (1, 0), False, 5),
    ("max_time_only_blur4", "max", [2, 6, 19], 2, (1, 3), (1, 2), (0, 1), False, 4),
    ("max_1d_blur2", "max", [4, 1, 23], 1, (1, 3), (1, 2), (0, 1), False, 2),
    ("avg_include_pad_blur3", "avg", [2, 9, 14], 2, (3, 3), (2, 2), (1, 1), True, 3),
    ("avg_exclude_pad_blur7", "avg", [1, 13, 20], 1, (2, 3), (3, 2), (1, 1), False, 7),
    ("avg_freq_only_blur6", "avg", [2, 16, 9], 1, (4, 1), (4, 1), (0, 0), False, 6),
]


def binomial(n):
    return torch.tensor([math.comb(n - 1, k) for k in range(n)], dtype=torch.float64) / 2 ** (n - 1)


def blur_pool(x, kind, k, s, p, include_pad, blur):
    bh = blur > 1 and s[0] > 1
    bw = blur > 1 and s[1] > 1
    stage_stride = (1 if bh else s[0], 1 if bw else s[1])
    if kind == "max":
        y = F.max_pool2d(x, k, stage_stride, p)
    else:
        y = F.avg_pool2d(x, k, stage_stride, p, count_include_pad=include_pad)
    fh = binomial(blur) if bh else torch.ones(1, dtype=torch.float64)
    fw = binomial(blur) if bw else torch.ones(1, dtype=torch.float64)
    # (left, right, top, bottom): floor((n-1)/2) before, ceil((n-1)/2) after.
    pad = ((len(fw) - 1) // 2, len(fw) // 2, (len(fh) - 1) // 2, len(fh) // 2)
    y = F.pad(y, pad, mode="reflect")
    c = x.shape[1]
    filt = (fh[:, None] * fw[None, :])[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(y, filt, stride=(s[0] if bh else 1, s[1] if bw else 1), groups=c)


def main():
    g = torch.Generator().manual_seed(7)
    out = []
    for name, kind, shape, batch, k, s, p, include_pad, blur in CASES:
        x = torch.rand([batch] + shape, generator=g, dtype=torch.float64) * 2 - 1
        x = x.float().double()  # values exactly representable in float
        y = blur_pool(x, kind, k, s, p, include_pad, blur)
        out.append({
            "name": name, "kind": kind, "in": shape, "batch": batch,
            "kernel": list(k), "stride": list(s), "pad": list(p),
            "include_pad": include_pad, "blur": blur,
            "out": list(y.shape[1:]),
            "x": [float(v) for v in x.flatten()],
            "y": [float(v) for v in y.flatten()],
        })
    print(json.dumps({"torch": torch.__version__, "cases": out}))


if __name__ == "__main__":
    main()
