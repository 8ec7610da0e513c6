"""How close the paper network's gradients stay to the CPU fp32 ones under each LRN implementation and
precision (cosine similarity per layer; conv1's is the most sensitive). On a GPU: fp32, bf16 and fp16
autocast, and bf16 with TF32 allowed for fp32 matrix products (the candidate for the banded LRN's window
sums: BENCHMARKS.md); `--dry`: fp32 and bf16 on the CPU at 64 px, so that the script cannot rot."""

import argparse

import torch
import torch.nn.functional as F

from alexnet import build_model
from alexnet.model import lrn

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16, "bf16+tf32": torch.bfloat16}


def grads(model, x, y, dev, dtype):
    model = model.to(dev, memory_format=torch.channels_last)
    with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        out = model(x.to(dev).contiguous(memory_format=torch.channels_last))
    F.cross_entropy(out.float(), y.to(dev)).backward()
    return {n: p.grad.detach().cpu().double().flatten() for n, p in model.named_parameters()}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dry", action="store_true")
    args = parser.parse_args()
    dev, side = (torch.device("cpu"), 64) if args.dry else (torch.device("cuda"), 224)
    precisions = ("fp32", "bf16") if args.dry else ("fp32", "bf16", "fp16", "bf16+tf32")
    torch.manual_seed(2)
    base = build_model("paper", 10, input_size=side).eval()
    # ReLU outputs of up to a few hundred: what overflowed fp16 squares before the LRN summed in fp32
    x, y = torch.randn(8, 3, side, side) * 50, torch.arange(8) % 10
    reference = build_model("paper", 10, input_size=side).eval()
    reference.load_state_dict(base.state_dict())
    ref = grads(reference, x, y, torch.device("cpu"), None)
    original = lrn.LocalResponseNorm.forward
    try:
        for name, impl in (("banded", lrn._BandedCrossMapNorm), ("shifted", lrn._CrossMapNorm)):
            lrn.LocalResponseNorm.forward = lambda self, t, impl=impl: impl.apply(t, self.size, self.alpha, self.beta,
                                                                                  self.k, self.groups)
            for precision in precisions:
                torch.manual_seed(2)
                m = build_model("paper", 10, input_size=side).eval()
                m.load_state_dict(base.state_dict())
                torch.set_float32_matmul_precision("high" if precision.endswith("tf32") else "highest")
                g = grads(m, x, y, dev, DTYPES[precision])
                cos = {n: float(F.cosine_similarity(g[n], ref[n], dim=0)) for n in ref}
                worst = sorted(cos.items(), key=lambda kv: kv[1])[:3]
                print(f"{name:8s} {precision}: " + ", ".join(f"{n} {c:.4f}" for n, c in worst), flush=True)
    finally:
        lrn.LocalResponseNorm.forward = original


if __name__ == "__main__":
    main()
