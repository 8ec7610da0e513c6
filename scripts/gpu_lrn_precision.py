"""On a GPU: how close the paper network's gradients stay to the CPU fp32 ones under each LRN
implementation and precision (cosine similarity per layer; conv1's is the most sensitive)."""

import torch
import torch.nn.functional as F

from alexnet import build_model
from alexnet.model import lrn


def grads(model, x, y, dev, bf16):
    model = model.to(dev, memory_format=torch.channels_last)
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
        out = model(x.to(dev).contiguous(memory_format=torch.channels_last))
    F.cross_entropy(out.float(), y.to(dev)).backward()
    return {n: p.grad.detach().cpu().double().flatten() for n, p in model.named_parameters()}


def main():
    torch.manual_seed(2)
    base = build_model("paper", 10).eval()
    x, y = torch.randn(8, 3, 224, 224) * 50, torch.arange(8) % 10
    reference = build_model("paper", 10).eval()
    reference.load_state_dict(base.state_dict())
    ref = grads(reference, x, y, torch.device("cpu"), False)
    dev = torch.device("cuda")
    original = lrn.LocalResponseNorm.forward
    for name, impl in (("banded", lrn._BandedCrossMapNorm), ("shifted", lrn._CrossMapNorm)):
        lrn.LocalResponseNorm.forward = lambda self, t, impl=impl: impl.apply(t, self.size, self.alpha, self.beta,
                                                                              self.k, self.groups)
        for bf16 in (False, True):
            torch.manual_seed(2)
            m = build_model("paper", 10).eval()
            m.load_state_dict(base.state_dict())
            g = grads(m, x, y, dev, bf16)
            cos = {n: float(F.cosine_similarity(g[n], ref[n], dim=0)) for n in ref}
            worst = sorted(cos.items(), key=lambda kv: kv[1])[:3]
            print(f"{name:8s} {'bf16' if bf16 else 'fp32'}: " + ", ".join(f"{n} {c:.4f}" for n, c in worst), flush=True)
    lrn.LocalResponseNorm.forward = original


if __name__ == "__main__":
    main()
