"""`alexnet retrieval`: Section 6.1's proposal, image retrieval with short binary codes.

The last hidden layer's activations (4096-d in the paper) of a pool of training images are compressed
by an auto-encoder to `bits`-bit binary codes; queries (validation images) are answered by Hamming
distance between codes instead of Euclidean distance between the full vectors. Reported:
- recall@k: the share of the exact Euclidean k nearest that the Hamming k nearest also find;
- same-class precision@k of both searches (how often a neighbour shares the query's class);
- search time per query of both (numpy on the CPU, best of three) and bytes stored per image.

The auto-encoder (our choice of form; the paper names none): encoder D -> 1024 -> bits with a logistic
output, decoder bits -> 1024 -> D, trained on the pool's standardised features by mean squared error
with Adam; the codes are the encoder's outputs thresholded at 0.5, and during training the decoder
already sees the thresholded codes (straight-through gradient), so that what it learns to decode is
what is searched.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import AlexNetError
from ..files import refuse_to_replace_foreign_outputs, write_text
from ..runs.inference import outputs
from ..runs.trained import load_trained

RECALL_AT = (1, 6, 10, 50)


class BinaryAutoEncoder(nn.Module):
    def __init__(self, dims: int, bits: int, hidden: int = 1024) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(dims, hidden), nn.ReLU(), nn.Linear(hidden, bits))
        self.decoder = nn.Sequential(nn.Linear(bits, hidden), nn.ReLU(), nn.Linear(hidden, dims))

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Bits in {0, 1} as floats; gradients pass straight through the threshold."""
        soft = torch.sigmoid(self.encoder(x))
        return soft + ((soft > 0.5).float() - soft).detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.codes(x))


def train_autoencoder(features: torch.Tensor, bits: int, epochs: int = 30, batch_size: int = 256,
                      lr: float = 1e-3, seed: int = 0) -> tuple[BinaryAutoEncoder, float]:
    """Fit on `features` (already standardised); returns the model and its last epoch's mean loss."""
    torch.manual_seed(seed)
    model = BinaryAutoEncoder(features.shape[1], bits)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_value = float("nan")
    for _ in range(epochs):
        order = torch.randperm(len(features))
        total = 0.0
        for start in range(0, len(features), batch_size):
            x = features[order[start:start + batch_size]]
            loss = nn.functional.mse_loss(model(x), x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(x)
        loss_value = total / len(features)
    return model, loss_value


def pack_codes(bits: torch.Tensor) -> np.ndarray:
    """(N, B) {0, 1} -> (N, ceil(B / 8)) uint8, 8 bits per byte."""
    return np.packbits(bits.detach().cpu().numpy().astype(np.uint8), axis=1)


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def hamming_distances(queries: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """(Q, P) numbers of differing bits between packed codes."""
    xor = np.bitwise_xor(queries[:, None, :], pool[None, :, :])
    counts = np.bitwise_count(xor) if hasattr(np, "bitwise_count") else _POPCOUNT[xor]
    return counts.sum(axis=2, dtype=np.int32)


def euclidean_distances(queries: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """(Q, P) squared Euclidean distances, by |q|^2 - 2 q.p + |p|^2 (one matrix product)."""
    return (queries ** 2).sum(1)[:, None] - 2 * queries @ pool.T + (pool ** 2).sum(1)[None, :]


def k_nearest(distances: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k smallest distances per row, nearest first (ties by index, stably)."""
    return np.argsort(distances, axis=1, kind="stable")[:, :k]


def recall_at(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean over queries of |found ∩ exact| / k."""
    k = exact.shape[1]
    return float(np.mean([len(set(f[:k]) & set(e)) / k for f, e in zip(found, exact)]))


def _best_of(fn, repeats: int = 3) -> tuple[Any, float]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best


TITLE = "# Retrieval with "  # retrieval.md's first words: how a table of ours is told from a user's file
OUTPUTS = {"retrieval.md": (TITLE, "a table")}


def run_retrieval(run: str, out: str | Path, data: str | None = None, bits: int = 64, pool: int = 10000,
                  queries: int = 500, epochs: int = 30, seed: int = 0, device: str | None = None,
                  progress: bool = True, log=print, force: bool = False) -> dict[str, Any]:
    if bits < 1 or pool < 2 or queries < 1 or epochs < 1:
        raise AlexNetError("--bits, --queries and --epochs must be at least 1 and --pool at least 2")
    out = Path(out)
    if not force:  # before any work: a retrieval.md that is not ours stays
        refuse_to_replace_foreign_outputs(out, OUTPUTS)
    out.mkdir(parents=True, exist_ok=True)
    trained = load_trained(run, data, device)
    dataset = trained.dataset
    rng = np.random.default_rng(seed)
    pool_ids = np.sort(rng.choice(len(dataset.labels["train"]), min(pool, len(dataset.labels["train"])), replace=False))
    query_ids = np.sort(rng.choice(len(dataset.labels["val"]), min(queries, len(dataset.labels["val"])), replace=False))
    pool_features = outputs(trained, "train", pool_ids, features=True, progress=progress)
    query_features = outputs(trained, "val", query_ids, features=True, progress=progress)
    dims = pool_features.shape[1]
    log(f"retrieval: {len(query_ids)} validation queries against {len(pool_ids)} training images, "
        f"{dims}-d last hidden layer -> {bits}-bit codes")

    mean, std = pool_features.mean(0), pool_features.std(0).clamp_min(1e-6)
    model, loss = train_autoencoder((pool_features - mean) / std, bits, epochs=epochs, seed=seed)
    log(f"  auto-encoder: {epochs} epochs, reconstruction MSE {loss:.4f} (of standardised features, 1.0 = none)")
    with torch.no_grad():
        pool_codes = pack_codes(model.codes((pool_features - mean) / std))
        query_codes = pack_codes(model.codes((query_features - mean) / std))
    used = float(np.unpackbits(pool_codes, axis=1)[:, :bits].mean())

    pf, qf = pool_features.numpy().astype(np.float32), query_features.numpy().astype(np.float32)
    exact_d, exact_s = _best_of(lambda: euclidean_distances(qf, pf))
    hamming_d, hamming_s = _best_of(lambda: hamming_distances(query_codes, pool_codes))
    kmax = min(max(RECALL_AT), len(pool_ids))
    exact, found = k_nearest(exact_d, kmax), k_nearest(hamming_d, kmax)
    pool_labels, query_labels = dataset.labels["train"][pool_ids], dataset.labels["val"][query_ids]

    rows = []
    for k in (k for k in RECALL_AT if k <= kmax):
        rows.append({"k": k, "recall": recall_at(found[:, :k], exact[:, :k]),
                     "exact_same_class": float((pool_labels[exact[:, :k]] == query_labels[:, None]).mean()),
                     "hamming_same_class": float((pool_labels[found[:, :k]] == query_labels[:, None]).mean())})
    per_query = {"euclidean_ms": 1e3 * exact_s / len(query_ids), "hamming_ms": 1e3 * hamming_s / len(query_ids)}
    lines = [f"{TITLE}{bits}-bit codes ({Path(run)})", "",
             f"{len(query_ids)} validation queries, {len(pool_ids)} training images searched, features: the "
             f"{dims}-d last hidden layer (centre patch). Codes from an auto-encoder ({epochs} epochs, "
             f"reconstruction MSE {loss:.3f} of standardised features; {used:.0%} of bits set).", "",
             "| k | recall@k of Hamming vs exact Euclidean | same class, Euclidean | same class, Hamming |",
             "| --- | --- | --- | --- |"]
    lines += [f"| {r['k']} | {r['recall']:.1%} | {r['exact_same_class']:.1%} | {r['hamming_same_class']:.1%} |"
              for r in rows]
    lines += ["", "| search | time per query | bytes per stored image |", "| --- | --- | --- |",
              f"| Euclidean, {dims}-d float32 | {per_query['euclidean_ms']:.3f} ms | {4 * dims} |",
              f"| Hamming, {bits}-bit codes | {per_query['hamming_ms']:.3f} ms | {pool_codes.shape[1]} |", "",
              f"Hamming search {exact_s / max(hamming_s, 1e-12):.1f}x the speed of the exact search here "
              f"(numpy on the CPU, best of three, {len(pool_ids)} stored images), "
              f"{4 * dims / pool_codes.shape[1]:.0f}x less memory."]
    write_text(out / "retrieval.md", "\n".join(lines) + "\n", what="table")
    log("\n".join(lines))
    return {"rows": rows, "per_query": per_query, "bits": bits, "loss": loss, "bits_set": used,
            "speedup": exact_s / max(hamming_s, 1e-12), "file": out / "retrieval.md"}
