"""Plain NumPy reference of the published PCNN equations, for the kernel tests.

Written from the equations of each paper, in float32, with the arithmetic order
the kernels document (float32 addition is not associative, so the order is part
of what is compared). Slow and obvious on purpose.
"""
import numpy as np

from pcnnseg import ICM, PCNN, SCM, SPCNN

f32 = np.float32


def _synaptic_sum2(Y, weights):
    """Weighted count of pulsing 3x3 neighbours, zero outside the image."""
    H, W = Y.shape
    Yp = np.zeros((H + 2, W + 2), dtype=f32)
    Yp[1:-1, 1:-1] = Y
    w = np.asarray(weights, dtype=f32)
    acc = np.zeros((H, W), dtype=f32)
    for a in range(3):
        for b in range(3):
            acc = acc + w[a, b] * Yp[a:a + H, b:b + W]
    return acc


def synaptic_sum3(Y, weights):
    """Weighted count of pulsing 3x3x3 neighbours, zero outside the volume."""
    Z, H, W = Y.shape
    Yp = np.zeros((Z + 2, H + 2, W + 2), dtype=f32)
    Yp[1:-1, 1:-1, 1:-1] = Y
    w = np.asarray(weights, dtype=f32)
    acc = np.zeros((Z, H, W), dtype=f32)
    for a in range(3):
        for b in range(3):
            for c in range(3):
                acc = acc + w[a, b, c] * Yp[a:a + Z, b:b + H, c:c + W]
    return acc


def run(S, model, n_iter, volume_weights=None):
    """Simulate ``model`` on the float32 stimulus ``S``.

    With ``volume_weights = (M, W)``, two (3, 3, 3) kernels, ``S`` is a volume
    and the synaptic sums run over 26 neighbours: ``M`` replaces the feeding
    weights, ``W`` the linking weights (the only weights of SPCNN, ICM and SCM).

    Returns
    -------
    fire_time : (H, W) int32, counts : (n_iter,) int64, spikes : (n_iter, H, W) bool
    (with one more leading axis of ``S`` for a volume)
    """
    if volume_weights is None:
        total = _synaptic_sum2
        feeding_w = getattr(model, "feeding_weights", None)
        linking_w = getattr(model, "linking_weights", getattr(model, "weights", None))
    else:
        total = synaptic_sum3
        feeding_w, linking_w = volume_weights
    S = np.asarray(S, dtype=f32)
    Y = np.zeros(S.shape, dtype=f32)
    U = np.zeros(S.shape, dtype=f32)
    spikes = np.zeros((n_iter,) + S.shape, dtype=bool)
    if isinstance(model, PCNN):
        F = np.zeros(S.shape, dtype=f32)
        L = np.zeros(S.shape, dtype=f32)
        E = np.full(S.shape, model.e0, dtype=f32)
        df, dl, de = (f32(np.exp(-a)) for a in (model.alpha_f, model.alpha_l, model.alpha_e))
        for k in range(n_iter):
            F = (df * F + f32(model.v_f) * total(Y, feeding_w)) + S
            L = dl * L + f32(model.v_l) * total(Y, linking_w)
            U = F * (f32(1) + f32(model.beta) * L)
            Y = (U > E).astype(f32)
            E = de * E + f32(model.v_e) * Y
            spikes[k] = Y > 0
    elif isinstance(model, SPCNN):
        E = np.full(S.shape, model.e0, dtype=f32)
        df, de = f32(np.exp(-model.alpha_f)), f32(np.exp(-model.alpha_e))
        for k in range(n_iter):
            L = f32(model.v_l) * total(Y, linking_w)
            U = df * U + S * (f32(1) + f32(model.beta) * L)
            Y = (U > E).astype(f32)
            E = de * E + f32(model.v_e) * Y
            spikes[k] = Y > 0
    elif isinstance(model, ICM):
        F = np.zeros(S.shape, dtype=f32)
        T = np.full(S.shape, model.e0, dtype=f32)
        for k in range(n_iter):
            F = (f32(model.f) * F + total(Y, linking_w)) + S
            Y = (F > T).astype(f32)
            T = f32(model.g) * T + f32(model.h) * Y
            spikes[k] = Y > 0
    elif isinstance(model, SCM):
        E = np.zeros(S.shape, dtype=f32)
        for k in range(n_iter):
            U = f32(model.f) * U + S * (f32(1) + total(Y, linking_w))
            Y = (U > E).astype(f32)
            E = f32(model.g) * E + f32(model.h) * Y
            spikes[k] = Y > 0
    else:
        raise TypeError(type(model))
    counts = spikes.reshape(n_iter, -1).sum(axis=1).astype(np.int64)
    fired = spikes.any(axis=0)
    fire_time = np.where(fired, spikes.argmax(axis=0), -1).astype(np.int32)
    return fire_time, counts, spikes


def felzenszwalb(image, k, min_size):
    """Felzenszwalb & Huttenlocher (2004) graph segmentation, written plainly.

    Same edge list and order as the kernel (8-connected, right / down /
    down-right / down-left per pixel, stable sort by weight) and the same
    union rule (the larger component stays root, the first on ties).
    """
    H, W = image.shape
    edges = []
    for i in range(H):
        for j in range(W):
            for di, dj in ((0, 1), (1, 0), (1, 1), (1, -1)):
                ii, jj = i + di, j + dj
                if ii < H and 0 <= jj < W:
                    edges.append((abs(image[i, j] - image[ii, jj]), i * W + j, ii * W + jj))
    edges.sort(key=lambda e: e[0])  # stable
    parent = list(range(H * W))
    size = [1] * (H * W)
    internal = [float(k)] * (H * W)

    def find(p):
        while parent[p] != p:
            p = parent[p]
        return p

    def union(a, b):
        if size[a] < size[b]:
            a, b = b, a
        parent[b] = a
        size[a] += size[b]
        return a

    for w, p, q in edges:
        a, b = find(p), find(q)
        if a != b and w <= internal[a] and w <= internal[b]:
            r = union(a, b)
            internal[r] = w + k / size[r]
    for w, p, q in edges:
        a, b = find(p), find(q)
        if a != b and (size[a] < min_size or size[b] < min_size):
            union(a, b)
    labels = np.empty((H, W), dtype=np.int32)
    names = {}
    for i in range(H):
        for j in range(W):
            labels[i, j] = names.setdefault(find(i * W + j), len(names))
    return labels


def grouping(labels, colour_bin, n_colour, texture_bin, n_texture):
    """Uijlings et al. (2013) hierarchical grouping, written plainly: regions as
    pixel sets, neighbours re-derived from the pixels after every merge."""
    H, W = labels.shape
    n_orient = texture_bin.shape[2]
    regions = {}
    for r in range(labels.max() + 1):
        ys, xs = np.nonzero(labels == r)
        colour = np.bincount(colour_bin[ys, xs], minlength=n_colour) / len(ys)
        texture = np.concatenate([np.bincount(texture_bin[ys, xs, o], minlength=n_texture)
                                  for o in range(n_orient)]) / (len(ys) * n_orient)
        regions[r] = dict(pixels=set(zip(ys.tolist(), xs.tolist())), colour=colour,
                          texture=texture)

    def box(reg):
        ys = [p[0] for p in reg["pixels"]]
        xs = [p[1] for p in reg["pixels"]]
        return min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1

    def touching(a, b):
        return any((y + dy, x + dx) in b["pixels"] for y, x in a["pixels"]
                   for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)))

    def similarity(a, b):
        x0, y0, w0, h0 = box(a)
        x1, y1, w1, h1 = box(b)
        bw = max(x0 + w0, x1 + w1) - min(x0, x1)
        bh = max(y0 + h0, y1 + h1) - min(y0, y1)
        na, nb = len(a["pixels"]), len(b["pixels"])
        return (np.minimum(a["colour"], b["colour"]).sum()
                + np.minimum(a["texture"], b["texture"]).sum()
                + 1 - (na + nb) / (H * W) + 1 - (bw * bh - na - nb) / (H * W))

    boxes = [box(regions[r]) for r in sorted(regions)]
    alive = set(regions)
    t = len(regions)
    while True:
        pairs = [(a, b) for a in sorted(alive) for b in sorted(alive)
                 if a < b and touching(regions[a], regions[b])]
        if not pairs:
            break
        sims = [similarity(regions[a], regions[b]) for a, b in pairs]
        a, b = pairs[int(np.argmax(sims))]
        ra, rb = regions[a], regions[b]
        na, nb = len(ra["pixels"]), len(rb["pixels"])
        regions[t] = dict(pixels=ra["pixels"] | rb["pixels"],
                          colour=(ra["colour"] * na + rb["colour"] * nb) / (na + nb),
                          texture=(ra["texture"] * na + rb["texture"] * nb) / (na + nb))
        boxes.append(box(regions[t]))
        alive -= {a, b}
        alive.add(t)
        t += 1
    return np.array(boxes, dtype=np.int64)
