"""t-SNE as separate pieces: perplexity affinities from a kNN graph, a PCA start, a gradient, openTSNE's optimiser.

The affinities come from our own graph (so the pipeline's cached neighbours are reused). Our gradient is
exact attraction over P plus repulsion summed over all pairs (below 10,000 points) or interpolated on a
grid and convolved by FFT (Linderman et al. 2019, 2D); openTSNE's gradient descent (momentum, gains)
drives it. Only large 3D maps use openTSNE's Barnes-Hut gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import scipy.fft
import scipy.sparse as sp

from embedscope.errors import ParameterError
from embedscope.maps.neighbors import KnnGraph, knn_graph
from embedscope.maps.pca import PCA
from embedscope.maps.projector import as_vectors, check_map_shape
from embedscope.progress import SILENT, Reporter

EXAGGERATION = 12.0
EXAGGERATION_ITERATIONS = 250
ITERATIONS = 500
MOMENTUM = 0.8
THREADS = 2
LARGE_N = 10_000
ITERATIONS_PER_CALL = 50
INITIAL_STD = 1e-4
JITTER = 0.01
PLACE_PERPLEXITY = 5.0
PLACE_START_NEIGHBOURS = 25
PLACE_ITERATIONS = 250
SEARCH_STEPS = 200
TOLERANCE = 1e-8
MIN_BOXES = 50
NODES_PER_BOX = 3


def neighbours_for(perplexity: float) -> int:
    """Neighbours the perplexity needs: three times it, as in openTSNE and van der Maaten (2014)."""
    return int(3 * perplexity)


def check_size(n: int, perplexity: float) -> None:
    """Refuse a perplexity that the data cannot support (each point needs 3 x perplexity neighbours)."""
    if n - 1 < neighbours_for(perplexity):
        raise ParameterError(
            f"perplexity {perplexity:g} needs more than {neighbours_for(perplexity)} points; "
            f"the data has {n}: use --perplexity {(n - 1) / 3:.3g} or less"
        )


def conditional_probabilities(distances: np.ndarray, perplexity: float) -> np.ndarray:
    """p(j | i) over each row's neighbours: Gaussian weights whose entropy is log(perplexity).

    Each row gets its own precision by binary search (van der Maaten and Hinton 2008); rows sum to 1.
    """
    distances = np.ascontiguousarray(distances, dtype=np.float64)
    return _conditional_probabilities(distances, np.log(min(perplexity, distances.shape[1])))


def joint_probabilities(knn: KnnGraph, perplexity: float) -> sp.csr_matrix:
    """The symmetric affinity matrix P (summing to 1) of a kNN graph, as t-SNE optimises it."""
    n, k = knn.indices.shape
    conditional = conditional_probabilities(knn.distances, perplexity)
    rows = np.repeat(np.arange(n), k)
    directed = sp.csr_matrix((conditional.ravel(), (rows, knn.indices.ravel())), shape=(n, n))
    joint = (directed + directed.T).tocsr()
    joint.data /= joint.data.sum()
    return joint


def kl_gradient(embedding: np.ndarray, P: sp.csr_matrix, **_: object) -> tuple[float, np.ndarray]:
    """Gradient of the KL divergence of a map, in the form openTSNE's optimiser calls and scales.

    The divergence itself is not evaluated (0 is returned): only callbacks and verbose logging read it.
    """
    y = np.ascontiguousarray(embedding, dtype=np.float64)
    gradient = np.empty_like(y)
    _attraction(P.indptr, P.indices, P.data, y, gradient)
    return 0.0, gradient - repulsion(y)


def repulsion(y: np.ndarray) -> np.ndarray:
    """The repulsive half of the t-SNE gradient, sum_j q_ij^2 (y_i - y_j) / Z with Z = sum_ij q_ij.

    Exact below 10,000 points (all pairs, vectorised float32: faster there than any tree or grid),
    interpolated on a grid above (2D only).
    """
    return exact_repulsion(y) if len(y) < LARGE_N else interpolated_repulsion(y)


def exact_repulsion(y: np.ndarray) -> np.ndarray:
    """The repulsion summed over all pairs of a 2D or 3D map, O(n^2)."""
    n, dims = y.shape
    coordinates = np.zeros((3, n), dtype=np.float32)
    coordinates[:dims] = y.T
    forces, row_sums = np.empty((n, 3)), np.empty(n)
    _all_pairs(coordinates, forces, row_sums)
    return forces[:, :dims] / row_sums.sum()


def interpolated_repulsion(y: np.ndarray) -> np.ndarray:
    """The repulsion of a 2D map by grid interpolation (Linderman et al. 2019), O(n + grid log grid).

    Charges (1, y, |y|^2) are spread onto 3 Lagrange nodes per unit box and convolved with the squared
    Cauchy kernel by FFT; the potentials interpolated back give both the forces and Z.
    """
    y = y - (y.max(axis=0) + y.min(axis=0)) / 2
    low, high = float(y.min()), float(y.max())
    boxes = max(MIN_BOXES, int(high - low))
    width = max(high - low, 1e-12) / boxes
    nodes = NODES_PER_BOX * boxes
    size = scipy.fft.next_fast_len(2 * nodes - 1, real=True)
    charges = np.zeros((4, size, size), dtype=np.float32)
    _spread(y, low, width, boxes, charges)
    offsets = np.minimum(np.arange(size), size - np.arange(size)) * (width / NODES_PER_BOX)
    kernel = (1.0 / (1.0 + offsets[:, None] ** 2 + offsets[None, :] ** 2) ** 2).astype(np.float32)
    product = scipy.fft.rfft2(charges, workers=THREADS) * scipy.fft.rfft2(kernel, workers=THREADS)
    potentials = np.ascontiguousarray(scipy.fft.irfft2(product, s=(size, size), workers=THREADS)[:, :nodes, :nodes])
    phi = np.empty((len(y), 4))
    _gather(y, low, width, boxes, potentials, phi)
    total = ((1.0 + (y**2).sum(axis=1)) * phi[:, 0] - 2.0 * (y * phi[:, 1:3]).sum(axis=1) + phi[:, 3]).sum() - len(y)
    return (y * phi[:, :1] - phi[:, 1:3]) / total


@dataclass
class TSNE:
    """t-SNE in 2D or 3D: exact repulsion below 10,000 points; above, FFT-interpolated (2D) or Barnes-Hut (3D).

    Parameter names are scikit-learn's and openTSNE's; the schedule is openTSNE's default, and
    `engine="reference"` runs openTSNE's own TSNE on the vectors.
    """

    n_components: int = 2
    perplexity: float = 30.0
    metric: str = "euclidean"
    random_state: int = 0
    engine: str = "fast"

    def __post_init__(self) -> None:
        self.check()

    @property
    def graph_k(self) -> int:
        """Neighbours per item that the perplexity needs (three times it)."""
        return neighbours_for(self.perplexity)

    def check(self, n: int | None = None) -> None:
        """Refuse parameters that cannot work, and with `n` a perplexity that n vectors cannot support."""
        check_map_shape(self.n_components, self.metric, self.engine)
        if self.perplexity <= 0:
            raise ParameterError(f"perplexity must be positive; got {self.perplexity:g}")
        if n is not None:
            check_size(n, self.perplexity)

    def fit_transform(self, X: np.ndarray, knn: KnnGraph | None = None, reporter: Reporter = SILENT) -> np.ndarray:
        """Embed `X` (n, dim); `knn` is its own neighbour graph, computed here when absent."""
        vectors = as_vectors(X)
        self.check(len(vectors))
        if self.engine == "reference":
            self.embedding_ = self._reference(vectors, reporter)
        else:
            if knn is None:
                knn = knn_graph(vectors, self.graph_k, self.metric, reporter=reporter)
            self.embedding_ = self._fit(vectors, knn.first(self.graph_k), reporter)
        self.embedding_ -= (self.embedding_.max(axis=0) + self.embedding_.min(axis=0)) / 2
        return np.asarray(self.embedding_, dtype=np.float32)

    def place(self, X: np.ndarray, knn: KnnGraph, reporter: Reporter = SILENT) -> np.ndarray:
        """Embed new vectors against the fitted map, which stays fixed (openTSNE's transform schedule).

        `knn` holds their neighbours among the fitted vectors; each point starts at the median of its nearest.
        """
        from openTSNE import PartialTSNEEmbedding

        near = knn.first(min(knn.k, neighbours_for(PLACE_PERPLEXITY)))
        conditional = conditional_probabilities(near.distances, PLACE_PERPLEXITY)
        m, k = conditional.shape
        P = sp.csr_matrix((conditional.ravel(), near.indices.ravel(), np.arange(0, m * k + 1, k)),
                          shape=(m, len(self.embedding_)))
        start = np.median(self.embedding_[knn.indices[:, :PLACE_START_NEIGHBOURS]], axis=1)
        method = "fft" if self.n_components == 2 and len(self.embedding_) >= LARGE_N else "bh"
        partial = PartialTSNEEmbedding(start, self.embedding_, P, negative_gradient_method=method,
                                       n_jobs=self._threads(len(self.embedding_)))
        with reporter.phase("t-sne: place", PLACE_ITERATIONS) as advance:
            for _ in range(0, PLACE_ITERATIONS, ITERATIONS_PER_CALL):
                partial.optimize(ITERATIONS_PER_CALL, inplace=True, learning_rate=0.1, exaggeration=1.5,
                                 momentum=MOMENTUM, max_grad_norm=0.25, max_step_norm=None)
                advance(ITERATIONS_PER_CALL)
        return np.asarray(partial, dtype=np.float32)

    def _fit(self, vectors: np.ndarray, knn: KnnGraph, reporter: Reporter):
        """Early exaggeration (12x for 250 iterations) then 500 normal ones, momentum 0.8: openTSNE's defaults."""
        from openTSNE import TSNEEmbedding
        from openTSNE.affinity import Affinities

        affinities = Affinities()
        with reporter.phase("t-sne: affinities", None):
            affinities.P = joint_probabilities(knn, self.perplexity)
        gradient = kl_gradient if self.n_components == 2 or len(vectors) < LARGE_N else "bh"
        embedding = TSNEEmbedding(self._initial(vectors), affinities, negative_gradient_method=gradient,
                                  n_jobs=self._threads(len(vectors)), random_state=self.random_state)
        with reporter.phase("t-sne: layout", EXAGGERATION_ITERATIONS + ITERATIONS) as advance:
            for done in range(0, EXAGGERATION_ITERATIONS + ITERATIONS, ITERATIONS_PER_CALL):
                exaggeration = EXAGGERATION if done < EXAGGERATION_ITERATIONS else None
                embedding.optimize(ITERATIONS_PER_CALL, inplace=True, momentum=MOMENTUM, exaggeration=exaggeration)
                advance(ITERATIONS_PER_CALL)
        return embedding

    def _initial(self, vectors: np.ndarray) -> np.ndarray:
        """The first principal components scaled to a standard deviation of 1e-4, plus 1% seeded jitter.

        This is openTSNE's start; the jitter separates duplicate points and makes the seed matter.
        """
        start = PCA(self.n_components).fit_transform(vectors).astype(np.float64)
        start *= INITIAL_STD / max(float(start[:, 0].std()), np.finfo(float).tiny)
        return start + np.random.default_rng(self.random_state).normal(scale=INITIAL_STD * JITTER, size=start.shape)

    @staticmethod
    def _threads(n: int) -> int:
        """Two threads for large maps; below 10,000 points an iteration is too short to share."""
        return THREADS if n >= LARGE_N else 1

    def _reference(self, vectors: np.ndarray, reporter: Reporter):
        """openTSNE's TSNE with its defaults (Annoy neighbours, one thread), given only our seed and shape."""
        import openTSNE

        model = openTSNE.TSNE(n_components=self.n_components, perplexity=self.perplexity, metric=self.metric,
                              negative_gradient_method="auto" if self.n_components == 2 else "bh",
                              random_state=self.random_state)
        with reporter.phase("t-sne: openTSNE", None):
            return model.fit(vectors)


@numba.njit(parallel=True, cache=True)
def _conditional_probabilities(distances, target):  # pragma: no cover - compiled
    n, k = distances.shape
    out = np.empty((n, k))
    for i in numba.prange(n):
        squared = distances[i] ** 2
        squared -= squared.min()
        beta, low, high = 1.0, 0.0, np.inf
        weights = np.exp(-squared * beta)
        for _ in range(SEARCH_STEPS):
            weights = np.exp(-squared * beta)
            total = weights.sum()
            entropy = np.log(total) + beta * (squared * weights).sum() / total
            if abs(entropy - target) < TOLERANCE:
                break
            if entropy > target:
                low = beta
                beta = beta * 2.0 if high == np.inf else (beta + high) / 2.0
            else:
                high = beta
                beta = (beta + low) / 2.0
        out[i] = weights / weights.sum()
    return out


@numba.njit(parallel=True, cache=True)
def _attraction(indptr, indices, data, y, out):  # pragma: no cover - compiled
    """out_i = sum_j p_ij (y_i - y_j) / (1 + |y_i - y_j|^2), one row per thread iteration."""
    dims = y.shape[1]
    for i in numba.prange(y.shape[0]):
        out[i] = 0.0
        for edge in range(indptr[i], indptr[i + 1]):
            j = indices[edge]
            dist2 = 0.0
            for d in range(dims):
                dist2 += (y[i, d] - y[j, d]) ** 2
            weight = data[edge] / (1.0 + dist2)
            for d in range(dims):
                out[i, d] += weight * (y[i, d] - y[j, d])


@numba.njit(parallel=True, fastmath=True, cache=True)
def _all_pairs(coordinates, forces, row_sums):  # pragma: no cover - compiled
    """Per point, sum_j q_ij^2 (y_i - y_j) and sum_j q_ij over all j != i; 3 coordinate rows (2D: third is 0)."""
    n = coordinates.shape[1]
    one = np.float32(1.0)
    for i in numba.prange(n):
        x0, x1, x2 = coordinates[0, i], coordinates[1, i], coordinates[2, i]
        force0, force1, force2, total = np.float32(0.0), np.float32(0.0), np.float32(0.0), np.float32(0.0)
        for j in range(n):
            d0, d1, d2 = x0 - coordinates[0, j], x1 - coordinates[1, j], x2 - coordinates[2, j]
            q = one / (one + d0 * d0 + d1 * d1 + d2 * d2)
            total += q
            force0 += q * q * d0
            force1 += q * q * d1
            force2 += q * q * d2
        forces[i, 0], forces[i, 1], forces[i, 2] = force0, force1, force2
        row_sums[i] = total - one


@numba.njit(cache=True)
def _node_weights(value, low, width, boxes):
    """The box holding `value` and the Lagrange weights of its three nodes (at 1/6, 1/2, 5/6 of the box)."""
    position = (value - low) / width
    box = min(int(position), boxes - 1)
    f = position - box
    t0, t1, t2 = 1.0 / 6.0, 0.5, 5.0 / 6.0
    w0 = (f - t1) * (f - t2) / ((t0 - t1) * (t0 - t2))
    w1 = (f - t0) * (f - t2) / ((t1 - t0) * (t1 - t2))
    w2 = (f - t0) * (f - t1) / ((t2 - t0) * (t2 - t1))
    return box * NODES_PER_BOX, (w0, w1, w2)


@numba.njit(cache=True)
def _spread(y, low, width, boxes, charges):  # pragma: no cover - compiled
    """Add each point's charges (1, y0, y1, |y|^2) to its 3 x 3 nodes (serial: the sums must not race)."""
    for i in range(y.shape[0]):
        first0, weights0 = _node_weights(y[i, 0], low, width, boxes)
        first1, weights1 = _node_weights(y[i, 1], low, width, boxes)
        charge = (1.0, y[i, 0], y[i, 1], y[i, 0] ** 2 + y[i, 1] ** 2)
        for a in range(NODES_PER_BOX):
            for b in range(NODES_PER_BOX):
                weight = weights0[a] * weights1[b]
                for c in range(4):
                    charges[c, first0 + a, first1 + b] += weight * charge[c]


@numba.njit(parallel=True, cache=True)
def _gather(y, low, width, boxes, potentials, phi):  # pragma: no cover - compiled
    """Interpolate the four potentials at each point from its 3 x 3 nodes."""
    for i in numba.prange(y.shape[0]):
        first0, weights0 = _node_weights(y[i, 0], low, width, boxes)
        first1, weights1 = _node_weights(y[i, 1], low, width, boxes)
        for c in range(4):
            total = 0.0
            for a in range(NODES_PER_BOX):
                for b in range(NODES_PER_BOX):
                    total += weights0[a] * weights1[b] * potentials[c, first0 + a, first1 + b]
            phi[i, c] = total
