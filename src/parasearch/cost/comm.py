"""Collective communication times: ring all-reduce, all-to-all, pipeline send.

A group of n GPUs inside one scale-up domain (NVLink/NVSwitch, Infinity Fabric) uses that
fabric; a larger group is hierarchical: the in-domain part on the fast fabric, the rest over
each GPU's share of the scale-out network. Each collective pays a fixed latency.
"""

from __future__ import annotations

import numpy as np

from ..catalog.hardware import Hardware


def _split(hw: Hardware, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    local = np.minimum(n, hw.scale_up_domain_gpus)
    return local, np.maximum(-(-n // np.maximum(local, 1)), 1)  # domains touched, rounded up


def allreduce(hw: Hardware, n, nbytes, oneshot: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(bandwidth seconds, latency seconds) of an all-reduce of `nbytes` over `n` GPUs.

    Ring or two-shot: reduce-scatter then all-gather, 2(n-1)/n of the payload over each GPU's link.
    With `oneshot` (the engine has such a kernel) and a fabric that supports it, a group inside one
    domain may instead have every GPU read all n-1 peers' buffers and reduce locally: (n-1) times
    the payload over the link but one hop and one barrier. Engines pick it for small payloads
    (decode steps), where the fixed cost is most of the time; the faster of the two is taken.
    """
    n = np.asarray(n, dtype=np.int64)
    nbytes = np.asarray(nbytes, dtype=float)
    local, nodes = _split(hw, n)
    eff = hw.collective_efficiency
    up = 2.0 * (local - 1) / np.maximum(local, 1) * nbytes / (hw.scale_up_bytes_per_s * eff)
    out = 2.0 * (nodes - 1) / nodes * (nbytes / local) / (hw.scale_out_bytes_per_s * eff)
    lat = np.where(local > 1, hw.scale_up_latency_s, 0.0) + np.where(nodes > 1, hw.scale_out_latency_s, 0.0)
    bw = up + out
    if oneshot and hw.scale_up_oneshot_latency_s > 0:
        one_bw = (local - 1) * nbytes / (hw.scale_up_bytes_per_s * eff)
        one_lat = hw.scale_up_oneshot_latency_s
        pick = (nodes == 1) & (one_bw + one_lat < bw + lat)
        bw, lat = np.where(pick, one_bw, bw), np.where(pick, one_lat, lat)
    active = n > 1
    return np.where(active, bw, 0.0), np.where(active, lat, 0.0)


def alltoall(hw: Hardware, n, bytes_per_gpu, efficiency: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(bandwidth seconds, latency seconds) for each GPU to send `bytes_per_gpu` spread evenly
    over the other n - 1 GPUs; `efficiency` (share of link bandwidth) is the kernel's when it has one."""
    n = np.asarray(n, dtype=np.int64)
    b = np.asarray(bytes_per_gpu, dtype=float)
    local, nodes = _split(hw, n)
    eff = efficiency or hw.collective_efficiency
    remote_share = np.where(n > 1, (n - local) / np.maximum(n - 1, 1), 0.0)
    t_up = b * (1 - remote_share) / (hw.scale_up_bytes_per_s * eff)
    t_out = b * remote_share / (hw.scale_out_bytes_per_s * eff)
    lat = np.where(local > 1, hw.scale_up_latency_s, 0.0) + np.where(nodes > 1, hw.scale_out_latency_s, 0.0)
    active = n > 1
    return np.where(active, np.maximum(t_up, t_out), 0.0), np.where(active, lat, 0.0)


def send(hw: Hardware, nbytes, cross_domain) -> tuple[np.ndarray, np.ndarray]:
    """(bandwidth seconds, latency seconds) of a point-to-point send between pipeline stages."""
    nbytes = np.asarray(nbytes, dtype=float)
    cross = np.asarray(cross_domain, dtype=bool)
    bw = np.where(cross, hw.scale_out_bytes_per_s, hw.scale_up_bytes_per_s) * hw.collective_efficiency
    lat = np.where(cross, hw.scale_out_latency_s, hw.scale_up_latency_s)
    return nbytes / bw, lat
