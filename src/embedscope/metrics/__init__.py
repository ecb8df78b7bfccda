"""Metrics: scores of maps and clusterings. Trustworthiness, kNN recall and accuracy, silhouette, ARI and NMI now;
the similarity and drift measures of training dynamics and the shift of groups go here too.

Every function takes arrays and returns numbers, deterministic for a seed.
"""

from embedscope.metrics.cluster_scores import adjusted_rand, cluster_quality, normalized_mutual_info, silhouette
from embedscope.metrics.map_scores import knn_accuracy, knn_recall, map_quality, trustworthiness

__all__ = [
    "adjusted_rand",
    "cluster_quality",
    "knn_accuracy",
    "knn_recall",
    "map_quality",
    "normalized_mutual_info",
    "silhouette",
    "trustworthiness",
]
