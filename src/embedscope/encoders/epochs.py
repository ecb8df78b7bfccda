"""What makes training epochs reproducible and fed: seeded generators, shuffled full batches, batches made ahead.

Every random draw of an epoch comes from a generator keyed by (seed, epoch[, batch]), so a run resumed at
any epoch draws what an uninterrupted one would; worker threads prepare the next batches while the model runs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import torch

Item = TypeVar("Item")


def seeded_generator(*key: int) -> torch.Generator:
    """A torch.Generator seeded from a tuple of non-negative ints, independent streams for distinct keys."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence(list(key)).generate_state(1)[0]))


def shuffled_batches(count: int, batch_size: int, generator: torch.Generator) -> list[np.ndarray]:
    """Row numbers 0..count-1 shuffled into full batches, the remainder dropped (drop_last), at least one batch."""
    order = torch.randperm(count, generator=generator).numpy()
    full = count // batch_size
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(full)] or [order]


def prefetched(produce: Callable[[int], Item], count: int, workers: int) -> Iterator[Item]:
    """produce(0), ..., produce(count - 1) in order, computed up to `workers + 1` ahead on `workers` threads."""
    if workers <= 0:
        yield from (produce(index) for index in range(count))
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batches") as pool:
        pending: deque[Future[Item]] = deque()
        for index in range(count):
            pending.append(pool.submit(produce, index))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
