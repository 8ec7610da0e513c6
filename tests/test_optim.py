"""PaperSGD against hand-computed steps of v <- 0.9 v - 0.0005 eps w - eps g; w <- w + v (Section 5)."""

import pytest
import torch

from alexnet import PaperSGD


def run_steps(opt_cls, w0, grads, lrs, **kw):
    w = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    opt = opt_cls([w], lr=lrs[0], **kw)
    out = []
    for g, lr in zip(grads, lrs):
        for group in opt.param_groups:
            group["lr"] = lr
        w.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append(w.detach().clone())
    return out


def test_three_hand_computed_steps_with_a_learning_rate_drop():
    w0, grads, lrs = [1.0, -2.0], [[0.5, 1.0], [-1.0, 2.0], [2.0, 0.0]], [0.1, 0.1, 0.01]
    # By hand, m = 0.9, d = 0.0005:
    # step 1 (eps 0.1): v = -0.00005*[1,-2] - 0.1*[0.5,1] = [-0.05005, -0.09990]
    #                   w = [0.94995, -2.09990]
    # step 2 (eps 0.1): v = 0.9*[-0.05005,-0.0999] - 0.00005*[0.94995,-2.0999] - 0.1*[-1,2]
    #                     = [-0.045045-0.0000474975+0.1, -0.08991+0.000104995-0.2]
    #                     = [0.0549075025, -0.289805005]
    #                   w = [1.0048575025, -2.389705005]
    # step 3 (eps 0.01, dropped): v = 0.9 v - 0.000005 w - 0.01 g
    #                     = [0.04941675225-0.0000050242875125-0.02, -0.2608245045+0.000011948525025-0]
    #                     = [0.0294117279624875, -0.260812555974975]
    #                   w = [1.0342692304624875, -2.650517560974975]
    want = [[0.94995, -2.0999], [1.0048575025, -2.389705005], [1.0342692304624875, -2.650517560974975]]
    got = run_steps(PaperSGD, w0, grads, lrs, momentum=0.9, weight_decay=5e-4)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, torch.tensor(w, dtype=torch.float64), rtol=0, atol=1e-14)


def test_differs_from_torch_sgd_only_after_a_rate_change():
    w0, grads = [0.3, -0.7, 1.1], [[0.2, -0.1, 0.4], [0.3, 0.5, -0.2], [-0.4, 0.1, 0.1], [0.2, 0.2, 0.2]]
    const = [0.05] * 4
    ours = run_steps(PaperSGD, w0, grads, const, momentum=0.9, weight_decay=5e-4)
    theirs = run_steps(torch.optim.SGD, w0, grads, const, momentum=0.9, weight_decay=5e-4)
    torch.testing.assert_close(ours[-1], theirs[-1], rtol=0, atol=1e-12)  # same while eps is constant
    dropped = [0.05, 0.05, 0.005, 0.005]
    ours = run_steps(PaperSGD, w0, grads, dropped, momentum=0.9, weight_decay=5e-4)
    theirs = run_steps(torch.optim.SGD, w0, grads, dropped, momentum=0.9, weight_decay=5e-4)
    assert (ours[-1] - theirs[-1]).abs().max() > 1e-3  # the velocity carries the old rate in ours


def test_group_weight_decay_and_missing_grads():
    a = torch.nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
    b = torch.nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
    c = torch.nn.Parameter(torch.tensor([5.0], dtype=torch.float64))
    opt = PaperSGD([{"params": [a]}, {"params": [b], "weight_decay": 0.0, "lr": 0.2}, {"params": [c]}], lr=0.1)
    a.grad = torch.tensor([1.0], dtype=torch.float64)
    b.grad = torch.tensor([1.0], dtype=torch.float64)
    opt.step()
    assert a.item() == pytest.approx(2.0 - 0.0005 * 0.1 * 2.0 - 0.1, abs=1e-15)
    assert b.item() == pytest.approx(2.0 - 0.2, abs=1e-15)
    assert c.item() == 5.0  # no gradient, no step


def test_state_round_trip():
    w = torch.nn.Parameter(torch.ones(3))
    opt = PaperSGD([w], lr=0.1)
    w.grad = torch.ones(3)
    opt.step()
    opt2 = PaperSGD([w], lr=0.1)
    opt2.load_state_dict(opt.state_dict())
    torch.testing.assert_close(opt2.state[w]["velocity"], opt.state[w]["velocity"])


@pytest.mark.parametrize("kw", [dict(lr=-1.0), dict(lr=0.1, momentum=1.0), dict(lr=0.1, weight_decay=-1.0),
                                dict(lr=float("nan")), dict(lr=float("inf")), dict(lr=0.1, weight_decay=float("nan"))])
def test_bad_hyper_parameters(kw):
    with pytest.raises(ValueError):
        PaperSGD([torch.nn.Parameter(torch.ones(1))], **kw)


def test_fused_update_is_the_same_rule():
    """`fused=True` (the update compiled into one kernel per group): the hand-computed steps above, and the
    default multi-tensor path on two groups through rate changes, with no recompilation per new rate."""
    import torch._dynamo

    w0, grads, lrs = [1.0, -2.0], [[0.5, 1.0], [-1.0, 2.0], [2.0, 0.0]], [0.1, 0.1, 0.01]
    want = [[0.94995, -2.0999], [1.0048575025, -2.389705005], [1.0342692304624875, -2.650517560974975]]
    got = run_steps(lambda p, **kw: PaperSGD(p, fused=True, **kw), w0, grads, lrs, momentum=0.9, weight_decay=5e-4)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, torch.tensor(w, dtype=torch.float64), rtol=0, atol=1e-12)

    torch.manual_seed(0)
    shapes = [(6, 3, 3, 3), (6,), (4, 6), (4,)]
    start = [torch.randn(s) for s in shapes]
    grads = [[torch.randn(s) for s in shapes] for _ in range(4)]
    finals = []
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    for fused in (False, True):
        ps = [torch.nn.Parameter(t.clone()) for t in start]
        opt = PaperSGD([{"params": ps[::2]}, {"params": ps[1::2], "lr": 0.02, "weight_decay": 0.0}], lr=0.01,
                       fused=fused)
        for step, gs in enumerate(grads):
            if step == 2:
                for group in opt.param_groups:
                    group["lr"] /= 10
            for p, g in zip(ps, gs):
                p.grad = g.clone()
            opt.step()
        finals.append([p.detach() for p in ps])
    for a, b in zip(*finals):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    # one graph per group (two groups: with and without decay), none more after the rate changes
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] <= 2
