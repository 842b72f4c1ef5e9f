"""Selective-search kernels: graph-based regions and their hierarchical grouping.

Three stages, each arrays in and arrays out:

- :func:`felzenszwalb_labels`: Felzenszwalb & Huttenlocher's graph-based
  segmentation (IJCV 59(2):167-181, 2004, doi:10.1023/B:VISI.0000022288.19776.77)
  on an 8-connected grid with absolute intensity differences as edge weights;
- :func:`region_statistics`: size, bounding box, intensity and texture
  histograms of every region, and the pairs of regions that touch;
- :func:`hierarchical_grouping`: Uijlings et al.'s greedy grouping (IJCV
  104(2):154-171, 2013, doi:10.1007/s11263-013-0620-5), merging the most similar
  pair of neighbours until one region is left; every region of the hierarchy is
  a box.

Ties are broken by order (stable edge sort, first maximum), so results are
deterministic.
"""
import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _find(parent, p):
    while parent[p] != p:
        parent[p] = parent[parent[p]]
        p = parent[p]
    return p


@njit(cache=True, inline="always")
def _union(parent, size, a, b):
    """Join the roots ``a`` and ``b``; the larger (``a`` on ties) stays root."""
    if size[a] < size[b]:
        a, b = b, a
    parent[b] = a
    size[a] += size[b]
    return a


@njit(cache=True)
def stable_argsort_nonnegative(x):
    """Stable argsort of non-negative float32 values (LSD radix sort, 2 x 16 bits).

    The bit patterns of non-negative IEEE floats sort like the floats, so two
    counting passes give the order of ``np.argsort(x, kind="stable")`` in linear
    time.
    """
    keys = x.view(np.uint32)
    n = keys.size
    order = np.arange(n)
    scratch = np.empty(n, dtype=np.int64)
    for shift in (0, 16):
        count = np.zeros(65537, dtype=np.int64)
        for i in range(n):
            count[((keys[i] >> shift) & 0xFFFF) + 1] += 1
        for b in range(65536):
            count[b + 1] += count[b]
        for i in range(n):
            k = order[i]
            digit = (keys[k] >> shift) & 0xFFFF
            scratch[count[digit]] = k
            count[digit] += 1
        order, scratch = scratch, order
    return order


@njit(cache=True)
def texture_bins(gx, gy, n_orient, n_bins):
    """Histogram bin of each oriented derivative response, (H, W, n_orient) int64.

    The response in orientation ``theta_o = 2 pi o / n_orient`` is the positive
    part of ``cos(theta_o) gx + sin(theta_o) gy``; bins split ``[0, top]``
    evenly, ``top`` being the largest response in the image.
    """
    H, W = gx.shape
    c = np.cos(np.arange(n_orient) * (2 * np.pi / n_orient))
    s = np.sin(np.arange(n_orient) * (2 * np.pi / n_orient))
    top = 0.0
    for i in range(H):
        for j in range(W):
            for o in range(n_orient):
                top = max(top, c[o] * gx[i, j] + s[o] * gy[i, j])
    out = np.zeros((H, W, n_orient), dtype=np.int64)
    if top == 0.0:
        return out
    for i in range(H):
        for j in range(W):
            for o in range(n_orient):
                r = max(c[o] * gx[i, j] + s[o] * gy[i, j], 0.0)
                out[i, j, o] = min(int(r / top * n_bins), n_bins - 1)
    return out


@njit(cache=True)
def grid_edges(image):
    """Edges of the 8-connected pixel grid and their weights ``|I(p) - I(q)|``.

    Each pixel links to its right, lower, lower-right and lower-left neighbours,
    in that order, pixels taken row by row. Returns ``(p, q, weight)``, pixel
    indices ``i * W + j``.
    """
    H, W = image.shape
    m = H * (W - 1) + (H - 1) * W + 2 * (H - 1) * max(W - 1, 0)
    p = np.empty(m, dtype=np.int64)
    q = np.empty(m, dtype=np.int64)
    weight = np.empty(m, dtype=np.float32)
    e = 0
    for i in range(H):
        for j in range(W):
            a = i * W + j
            for di, dj in ((0, 1), (1, 0), (1, 1), (1, -1)):
                ii = i + di
                jj = j + dj
                if ii < H and 0 <= jj < W:
                    p[e] = a
                    q[e] = ii * W + jj
                    weight[e] = abs(image[i, j] - image[ii, jj])
                    e += 1
    return p, q, weight


@njit(cache=True)
def felzenszwalb_labels(image, k, min_size):
    """Graph-based segmentation of a smoothed (H, W) float32 image.

    Edges are taken in increasing weight (stable order); components ``A`` and
    ``B`` merge when the edge weight is at most ``min(Int(A) + k / |A|,
    Int(B) + k / |B|)``, ``Int`` being the largest weight inside a component
    (Felzenszwalb & Huttenlocher 2004, eq. 5-6). A second pass over the same
    edges merges components smaller than ``min_size``.

    Returns (H, W) int32 labels ``0..n-1`` numbered in raster order, and ``n``.
    """
    H, W = image.shape
    n = H * W
    p, q, weight = grid_edges(image)
    order = stable_argsort_nonnegative(weight)
    parent = np.arange(n)
    size = np.ones(n, dtype=np.int64)
    threshold = np.full(n, k, dtype=np.float64)
    for e in order:
        a = _find(parent, p[e])
        b = _find(parent, q[e])
        w = weight[e]
        if a != b and w <= threshold[a] and w <= threshold[b]:
            r = _union(parent, size, a, b)
            threshold[r] = w + k / size[r]
    for e in order:
        a = _find(parent, p[e])
        b = _find(parent, q[e])
        if a != b and (size[a] < min_size or size[b] < min_size):
            _union(parent, size, a, b)
    labels = np.empty((H, W), dtype=np.int32)
    new_label = np.full(n, -1, dtype=np.int32)
    n_labels = 0
    for i in range(H):
        for j in range(W):
            r = _find(parent, i * W + j)
            if new_label[r] < 0:
                new_label[r] = n_labels
                n_labels += 1
            labels[i, j] = new_label[r]
    return labels, n_labels


@njit(cache=True)
def region_statistics(labels, n_regions, colour_bin, n_colour, texture_bin, n_texture):
    """Per-region statistics for the grouping.

    Parameters
    ----------
    labels : (H, W) int32, values ``0..n_regions-1``
    colour_bin : (H, W) int, values ``0..n_colour-1``
        Intensity histogram bin of each pixel.
    texture_bin : (H, W, O) int, values ``0..n_texture-1``
        Bin of each of ``O`` oriented derivative responses.

    Returns
    -------
    size : (n,) int64
    box : (n, 4) int64, inclusive ``x0, y0, x1, y1``
    colour : (n, n_colour) float64, L1-normalised
    texture : (n, O * n_texture) float64, L1-normalised
    pairs : (E, 2) int64, regions touching in the 4-neighbourhood, ``a < b``,
        sorted
    """
    H, W = labels.shape
    n_orient = texture_bin.shape[2]
    size = np.zeros(n_regions, dtype=np.int64)
    box = np.empty((n_regions, 4), dtype=np.int64)
    box[:, 0] = W
    box[:, 1] = H
    box[:, 2] = -1
    box[:, 3] = -1
    colour = np.zeros((n_regions, n_colour))
    texture = np.zeros((n_regions, n_orient * n_texture))
    keys = np.empty(2 * H * W, dtype=np.int64)
    n_keys = 0
    for i in range(H):
        for j in range(W):
            r = labels[i, j]
            size[r] += 1
            box[r, 0] = min(box[r, 0], j)
            box[r, 1] = min(box[r, 1], i)
            box[r, 2] = max(box[r, 2], j)
            box[r, 3] = max(box[r, 3], i)
            colour[r, colour_bin[i, j]] += 1.0
            for o in range(n_orient):
                texture[r, o * n_texture + texture_bin[i, j, o]] += 1.0
            for di, dj in ((0, 1), (1, 0)):
                ii = i + di
                jj = j + dj
                if ii < H and jj < W and labels[ii, jj] != r:
                    s = labels[ii, jj]
                    keys[n_keys] = min(r, s) * n_regions + max(r, s)
                    n_keys += 1
    for r in range(n_regions):
        colour[r] /= size[r]
        texture[r] /= size[r] * n_orient
    unique = np.unique(keys[:n_keys])
    pairs = np.empty((unique.size, 2), dtype=np.int64)
    pairs[:, 0] = unique // n_regions
    pairs[:, 1] = unique % n_regions
    return size, box, colour, texture, pairs


@njit(cache=True, inline="always")
def _intersection(h, a, b):
    s = 0.0
    for c in range(h.shape[1]):
        s += min(h[a, c], h[b, c])
    return s


@njit(cache=True)
def _similarity(a, b, size, box, colour, texture, image_size):
    """s_colour + s_texture + s_size + s_fill (Uijlings et al. 2013, sec. 3.2)."""
    bw = max(box[a, 2], box[b, 2]) - min(box[a, 0], box[b, 0]) + 1
    bh = max(box[a, 3], box[b, 3]) - min(box[a, 1], box[b, 1]) + 1
    s_size = 1.0 - (size[a] + size[b]) / image_size
    s_fill = 1.0 - (bw * bh - size[a] - size[b]) / image_size
    return (_intersection(colour, a, b) + _intersection(texture, a, b) + s_size
            + s_fill)


@njit(cache=True)
def hierarchical_grouping(size0, box0, colour0, texture0, pairs, image_size):
    """Greedy grouping of neighbouring regions, most similar pair first.

    Regions ``0..n-1`` are the inputs (see :func:`region_statistics`); merge
    number ``m`` creates region ``n + m`` with size-weighted histograms and the
    union of the boxes, and takes over the neighbours of both parts. Grouping
    stops when no neighbouring pairs are left (one region per connected piece).

    Returns
    -------
    (R, 4) int64 ndarray
        ``x, y, w, h`` of every region, inputs first, then in merge order.
    """
    n = size0.shape[0]
    total = 2 * n - 1 if n > 0 else 0
    size = np.zeros(total, dtype=np.int64)
    box = np.zeros((total, 4), dtype=np.int64)
    colour = np.zeros((total, colour0.shape[1]))
    texture = np.zeros((total, texture0.shape[1]))
    size[:n] = size0
    box[:n] = box0
    colour[:n] = colour0
    texture[:n] = texture0
    n_edges = pairs.shape[0]
    ea = pairs[:, 0].copy()
    eb = pairs[:, 1].copy()
    alive = np.ones(n_edges, dtype=np.bool_)
    sim = np.empty(n_edges)
    for e in range(n_edges):
        sim[e] = _similarity(ea[e], eb[e], size, box, colour, texture, image_size)
    seen = np.full(total, -1, dtype=np.int64)
    t = n
    while True:
        best = -1
        for e in range(n_edges):
            if alive[e] and (best < 0 or sim[e] > sim[best]):
                best = e
        if best < 0:
            break
        i = ea[best]
        j = eb[best]
        size[t] = size[i] + size[j]
        for c in range(2):
            box[t, c] = min(box[i, c], box[j, c])
            box[t, c + 2] = max(box[i, c + 2], box[j, c + 2])
        colour[t] = (colour[i] * size[i] + colour[j] * size[j]) / size[t]
        texture[t] = (texture[i] * size[i] + texture[j] * size[j]) / size[t]
        for e in range(n_edges):
            if not alive[e]:
                continue
            if ea[e] == i or ea[e] == j:
                other = eb[e]
            elif eb[e] == i or eb[e] == j:
                other = ea[e]
            else:
                continue
            if other == i or other == j or seen[other] == t:
                alive[e] = False  # the merged pair, or a second edge to one neighbour
                continue
            seen[other] = t
            ea[e] = other
            eb[e] = t
            sim[e] = _similarity(other, t, size, box, colour, texture, image_size)
        t += 1
    out = np.empty((t, 4), dtype=np.int64)
    for r in range(t):
        out[r, 0] = box[r, 0]
        out[r, 1] = box[r, 1]
        out[r, 2] = box[r, 2] - box[r, 0] + 1
        out[r, 3] = box[r, 3] - box[r, 1] + 1
    return out
