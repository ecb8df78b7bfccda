"""Principal component analysis from the covariance matrix, accumulated over row blocks.

Only one block of rows is ever copied (to float64), so 1M x 256 vectors need about the input's
memory; the eigenvectors of a dim x dim matrix are exact and their signs fixed, so runs agree.
"""

from __future__ import annotations

import numpy as np

from embedscope.errors import ParameterError
from embedscope.progress import SILENT, Reporter

BLOCK_ROWS = 16_384


class PCA:
    """Project vectors onto their `n_components` directions of largest variance, scikit-learn style.

    Each component's largest entry is positive (scikit-learn's convention), so the result is unique.
    """

    def __init__(self, n_components: int = 50, block_rows: int = BLOCK_ROWS) -> None:
        if n_components < 1:
            raise ParameterError(f"PCA needs at least 1 component; got {n_components}")
        self.n_components = n_components
        self.block_rows = block_rows

    def fit(self, vectors: np.ndarray, reporter: Reporter = SILENT) -> PCA:
        """Learn the mean, the components and the variance each explains."""
        n, dim = vectors.shape
        if self.n_components > dim:
            raise ParameterError(f"PCA cannot give {self.n_components} components of {dim}-dimensional vectors")
        if n < 2:
            raise ParameterError(f"PCA needs at least 2 vectors; got {n}")
        mean = np.zeros(dim)
        for start in range(0, n, self.block_rows):
            mean += vectors[start : start + self.block_rows].sum(axis=0, dtype=np.float64)
        mean /= n
        scatter = np.zeros((dim, dim))
        with reporter.phase("pca: covariance", n) as advance:
            for start in range(0, n, self.block_rows):
                block = vectors[start : start + self.block_rows].astype(np.float64) - mean
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

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """The coordinates of `vectors` along the components, float32, computed block by block."""
        components, mean = self.components_.T.astype(np.float32), self.mean_.astype(np.float32)
        out = np.empty((len(vectors), self.n_components), dtype=np.float32)
        for start in range(0, len(vectors), self.block_rows):
            block = np.asarray(vectors[start : start + self.block_rows], dtype=np.float32) - mean
            out[start : start + len(block)] = block @ components
        return out

    def fit_transform(self, vectors: np.ndarray, reporter: Reporter = SILENT) -> np.ndarray:
        """Fit, then transform the same vectors."""
        return self.fit(vectors, reporter).transform(vectors)
