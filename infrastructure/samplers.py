"""A Ray sampler that collects the way garage's local sampler does: task by task.

garage's ``RaySampler`` gives the batch to whichever workers return first and relaunches them,
so with one worker per task and fewer cores than tasks (or tasks of different episode lengths)
some tasks collect nothing in a round. The release's round-robin guarantee (``batch_size >=
n_tasks x horizon`` gives every task an episode per round) then fails. This sampler
runs one episode on every worker in parallel per cycle and consumes them in worker (task) order
until the batch is full, exactly the episodes ``LocalSampler`` would have collected.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ray
from garage import EpisodeBatch
from garage.sampler import RaySampler


class RoundRobinRaySampler(RaySampler):
    """garage's ``RaySampler`` with ``LocalSampler``'s task-by-task collection order."""

    def obtain_samples(
        self, itr: int, num_samples: int, agent_update: Any, env_update: Any = None
    ) -> EpisodeBatch:
        """Episodes in worker order, one per worker per cycle, until ``num_samples`` steps.

        Episodes of a cycle after the one that fills the batch are discarded, as the local
        sampler would never have run them.
        """
        ray.get(self._update_workers(agent_update, env_update))
        workers = [self._all_workers[i] for i in range(self._worker_factory.n_workers)]
        batches, completed = [], 0
        while completed < num_samples:
            results = ray.get([worker.rollout.remote() for worker in workers])
            for _, episodes in sorted(results, key=lambda result: result[0]):
                batches.append(episodes)
                completed += int(np.sum(episodes.lengths))
                if completed >= num_samples:
                    break
        samples = EpisodeBatch.concatenate(*batches)
        self.total_env_steps += int(np.sum(samples.lengths))
        return samples
