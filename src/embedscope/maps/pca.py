"""Principal components, exact and streamed: the covariance is summed block by block, so memory stays at one block
plus a dim x dim matrix however many vectors there are.

`PCA` is both a map (2 or 3 components) and the reduction that maps and clusters run first on wide vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embedscope.errors import ParameterError
from embedscope.maps.neighbors import KnnGraph, prepare
from embedscope.maps.projector import ENGINES, as_vectors
from embedscope.progress import SILENT, Reporter

BLOCK_ROWS = 16_384


@dataclass
class PCA:
    """Project vectors onto their `n_components` directions of largest variance, scikit-learn style.

    Each component's largest entry is positive (scikit-learn's convention), so the result is unique; the
    solver is exact, so `random_state` (kept for symmetry with the other maps) changes nothing.
    """

    n_components: int = 2
    random_state: int = 0
    engine: str = "fast"
    block_rows: int = BLOCK_ROWS

    graph_k = None  # a linear map needs no neighbours

    def __post_init__(self) -> None:
        self.check()

    def check(self, n: int | None = None) -> None:
        """Refuse a component count or engine that cannot work (no count of vectors is too many)."""
        if self.n_components < 1:
            raise ParameterError(f"PCA needs at least 1 component; got {self.n_components}")
        if self.engine not in ENGINES:
            raise ParameterError(f"engine must be one of {', '.join(ENGINES)}; got {self.engine!r}")

    def fit(self, X: np.ndarray, reporter: Reporter = SILENT) -> PCA:
        """Learn the mean, the components and the variance each explains (in float64, whatever X's type)."""
        self.check()
        X = as_vectors(X, dtype=None)
        n, dim = X.shape
        if self.n_components > dim:
            raise ParameterError(f"PCA cannot give {self.n_components} components of {dim}-dimensional vectors")
        if n < 2:
            raise ParameterError(f"PCA needs at least 2 vectors; got {n}")
        if self.engine == "reference":
            from sklearn.decomposition import PCA as ReferencePCA

            self.model_ = ReferencePCA(self.n_components, svd_solver="full").fit(X)
            return self
        mean = np.zeros(dim)
        for start in range(0, n, self.block_rows):
            mean += X[start : start + self.block_rows].sum(axis=0, dtype=np.float64)
        mean /= n
        scatter = np.zeros((dim, dim))
        with reporter.phase("pca: covariance", n) as advance:
            for start in range(0, n, self.block_rows):
                block = X[start : start + self.block_rows].astype(np.float64) - mean
                scatter += block.T @ block
                advance(len(block))
        variances, eigenvectors = np.linalg.eigh(scatter / (n - 1))
        order = np.argsort(variances)[::-1]
        variances, components = np.maximum(variances[order], 0.0), eigenvectors[:, order].T
        components *= np.sign(components[np.arange(dim), np.argmax(np.abs(components), axis=1)])[:, None]
        self.mean_ = mean
        self.components_ = components[: self.n_components]
        self.explained_variance_ = variances[: self.n_components]
        self.explained_variance_ratio_ = self.explained_variance_ / max(variances.sum(), np.finfo(float).tiny)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """The coordinates of `X` along the components, float32, computed block by block."""
        X = as_vectors(X, dtype=None)
        if self.engine == "reference":
            return np.asarray(self.model_.transform(X), dtype=np.float32)
        components, mean = self.components_.T.astype(np.float32), self.mean_.astype(np.float32)
        out = np.empty((len(X), self.n_components), dtype=np.float32)
        for start in range(0, len(X), self.block_rows):
            block = np.asarray(X[start : start + self.block_rows], dtype=np.float32) - mean
            out[start : start + len(block)] = block @ components
        return out

    def fit_transform(self, X: np.ndarray, knn: KnnGraph | None = None, reporter: Reporter = SILENT) -> np.ndarray:
        """Fit, then transform the same vectors (`knn` is accepted as every map accepts it, and not needed)."""
        return self.fit(X, reporter).transform(X)

    def place(self, X: np.ndarray, knn: KnnGraph | None = None, reporter: Reporter = SILENT) -> np.ndarray:
        """Coordinates of new vectors on the fitted components (no neighbours needed)."""
        return self.transform(X)


def reduce_dims(
    vectors: np.ndarray, dims: int = 50, metric: str = "euclidean", seed: int = 0, reporter: Reporter = SILENT
) -> np.ndarray:
    """The PCA pre-step: `dims` principal components, float32 (rows made unit length first for cosine).

    Vectors with at most `dims` dimensions are returned as they are; the PCA is exact, so `seed` changes nothing.
    """
    data = prepare(vectors, metric) if metric == "cosine" else vectors
    if data.shape[1] <= dims:
        return np.asarray(data, dtype=np.float32)
    return PCA(dims).fit_transform(data, reporter=reporter)

