"""Custom training loops: replica contexts, input splitting and cross-worker reductions.

The cross-worker tests run two strategies in threads of this process against one
real server (ROUTER socket on loopback); each thread is one worker.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import distflow as df
from distflow.distribute import ClusterSpec, InputContext, ReduceOp
from distflow.distribute import strategy as strategy_module
from distflow.distribute.replica import split_rows

pytestmark = pytest.mark.timeout(60)


def test_input_context_divides_the_global_batch_or_says_why():
    context = InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2)
    assert context.get_per_replica_batch_size(64) == 32
    with pytest.raises(ValueError, match="not divisible"):
        context.get_per_replica_batch_size(5)


def test_split_rows_gives_contiguous_slices_and_spreads_the_remainder():
    batch = (np.arange(7), {"m": np.arange(7) * 10})
    parts = [split_rows(batch, i, 3) for i in range(3)]
    assert [p[0].tolist() for p in parts] == [[0, 1, 2], [3, 4], [5, 6]]
    assert parts[2][1]["m"].tolist() == [50, 60]


def test_contexts_inside_and_outside_run():
    strategy = strategy_module.OneDeviceStrategy()
    assert df.distribute.get_replica_context().num_replicas_in_sync == 1  # the default one
    assert not df.distribute.in_cross_replica_context() and not df.distribute.has_strategy()
    with strategy.scope():
        assert df.distribute.get_replica_context() is None
        assert df.distribute.in_cross_replica_context() and df.distribute.has_strategy()
        assert df.distribute.get_strategy() is strategy
        inside = strategy.run(lambda: df.distribute.get_replica_context())
    assert inside.replica_id_in_sync_group == 0 and inside.strategy is strategy


def test_compute_average_loss_and_regularization_scaling():
    per_example = np.array([1.0, 2.0, 3.0, 6.0], "float32")
    assert float(df.nn.compute_average_loss(per_example)) == 3.0
    assert float(df.nn.compute_average_loss(per_example, global_batch_size=8)) == 1.5
    weighted = df.nn.compute_average_loss(per_example, sample_weight=[1, 0, 0, 1],
                                          global_batch_size=2)
    assert float(weighted) == 3.5
    assert float(df.nn.scale_regularization_loss([1.0, 2.0])) == 3.0
    with pytest.raises(ValueError, match="global_batch_size=-1"):
        df.nn.compute_average_loss(per_example, global_batch_size=-1)
    with pytest.raises(ValueError, match="reduce_op"):
        strategy_module.OneDeviceStrategy().reduce("MAX", 1.0)


def test_reduce_and_gather_across_two_workers(servers):
    server = servers(mode="sync", num_workers=2)
    results = {}

    def worker(index):
        strategy = strategy_module.MirroredStrategy(cluster=ClusterSpec(
            ps_addrs=(server.address,), num_workers=2, worker_index=index))
        try:
            value = np.arange(3, dtype="float32") + 10 * index  # [0 1 2] and [10 11 12]
            results[index] = (
                strategy.reduce(ReduceOp.SUM, value).numpy(),
                strategy.reduce("mean", value, axis=0).numpy(),
                strategy.gather(value.reshape(1, 3), axis=1).numpy(),
                strategy.experimental_local_results(value)[0] is value)
        finally:
            strategy.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for index in (0, 1):
        total, mean, gathered, local = results[index]
        np.testing.assert_array_equal(total, [10, 12, 14])
        assert mean == pytest.approx(6.0)  # the mean of the 6 values of both workers
        np.testing.assert_array_equal(gathered, [[0, 1, 2, 10, 11, 12]])
        assert local
    assert server.version == 0  # reductions never step the parameters
