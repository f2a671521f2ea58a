"""Multi-group DTW in torch over the anti-diagonal wavefront: the FRD path for GPUs.

Many pairs run at once: for each anti-diagonal of the accumulated matrices the cells of every
pair and group are updated by a handful of tensor operations. Computed in float64 from the
float32 inputs like tslearn; the minimum over each query's candidates is a segment min.
Runs on CPU too (that is how it is tested against the numba path).
"""

from __future__ import annotations

import numpy as np

from evaluation.dtw import DIVISORS, G0, G1, G2, G3


def batch_group_dtw(x, y):
    """Combined group DTW of pairs ``x[b]``, ``y[b]``: (B, T1, 25), (B, T2, 25) float64 -> (B,)."""
    import torch

    b, t1, t2 = x.shape[0], x.shape[1], y.shape[1]
    inf = torch.tensor(float("inf"), dtype=x.dtype, device=x.device)
    y_rev = y.flip(1)  # y_rev[:, m] = y[:, t2 - 1 - m]: cells of a diagonal become a slice
    prev2 = torch.full((b, 3, t1 + 2), float("inf"), dtype=x.dtype, device=x.device)
    prev = prev2.clone()
    new = prev2.clone()
    prev2[:, :, 0] = 0.0  # the virtual cell before (0, 0)
    groups = ((G0, G1), (G1, G2), (G2, G3))
    for s in range(t1 + t2 - 1):
        lo, hi = max(0, s - t2 + 1), min(s, t1 - 1)
        y0 = t2 - 1 - s + lo
        sq = (x[:, lo:hi + 1] - y_rev[:, y0:y0 + hi - lo + 1]) ** 2  # (B, n, 25)
        cost = torch.stack([sq[..., a:e].sum(-1) for a, e in groups], dim=1)  # (B, 3, n)
        best = torch.minimum(prev[..., lo:hi + 1], prev[..., lo + 1:hi + 2])
        best = torch.minimum(best, prev2[..., lo:hi + 1])
        new[..., lo + 1:hi + 2] = cost + best
        new[..., lo] = inf  # outside the matrix (row -1 when lo == 0)
        new[..., hi + 2] = inf
        prev2, prev, new = prev, new, prev2
    final = prev[..., t1]  # (B, 3)
    return sum(torch.sqrt(final[:, g]) / DIVISORS[g] for g in range(3))


def min_group_dtw_torch(
    queries: np.ndarray | list[np.ndarray], references: np.ndarray | list[np.ndarray], cand_ptr: np.ndarray,
    cand: np.ndarray, device: str = "cpu", batch: int = 0, progress: bool = False,
) -> np.ndarray:
    """Same contract as ``evaluation.dtw.min_group_dtw`` (minimum only), every pair computed.

    ``batch`` pairs per step (0: 2048 on CUDA, 64 on CPU); sequences of different lengths (lists)
    are batched by pairs of equal lengths.
    """
    import torch

    counts = np.diff(np.asarray(cand_ptr))
    if np.any(counts < 1):
        raise ValueError("every query needs at least one candidate")
    pair_q = np.repeat(np.arange(len(counts)), counts)
    pair_r = np.asarray(cand)
    batch = batch or (2048 if device.startswith("cuda") else 64)
    q_len = np.array([len(q) for q in queries])[pair_q]
    r_len = np.array([len(r) for r in references])[pair_r]
    order = np.lexsort((r_len, q_len))  # pairs of equal lengths together (stable: dense keeps its order)
    cut = np.flatnonzero((np.diff(q_len[order]) != 0) | (np.diff(r_len[order]) != 0)) + 1
    groups = np.split(order, cut)
    steps = [group[i:i + batch] for group in groups for i in range(0, len(group), batch)]
    values = torch.empty(len(pair_q), dtype=torch.float64)
    if progress:
        from react.utils.progress import progress

        steps = progress(steps, desc="FRD (torch)", unit="batch")
    for sel in steps:
        x = _gather(queries, pair_q[sel]).to(device=device, dtype=torch.float64)
        y = _gather(references, pair_r[sel]).to(device=device, dtype=torch.float64)
        values[torch.from_numpy(sel)] = batch_group_dtw(x, y).cpu()
    minima = torch.full((len(counts),), float("inf"), dtype=torch.float64)
    minima.scatter_reduce_(0, torch.from_numpy(pair_q), values, reduce="amin")
    return minima.numpy()


def _gather(seqs: np.ndarray | list[np.ndarray], idx: np.ndarray):
    """``seqs[idx]`` as one float32 tensor (the items have one length)."""
    import torch

    if isinstance(seqs, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(seqs[idx], dtype=np.float32))
    return torch.from_numpy(np.stack([np.asarray(seqs[i], dtype=np.float32) for i in idx]))
