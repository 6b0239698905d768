"""Distributed training: strategies, parameter servers, their client and wire protocol.

Users mostly need `get_strategy()` and `strategy.scope()`; tests and custom
set-ups build a `ClusterSpec` and start `ParameterServer`s themselves.
Strategies are imported lazily so that a parameter-server process
(`python -m distflow.distribute.server`) never imports the Keras layer.
"""

from distflow.distribute.cluster import ClusterSpec

_STRATEGY_NAMES = ("LocalStrategy", "MirroredStrategy", "MultiWorkerMirroredStrategy",
                   "OneDeviceStrategy",
                   "ParameterServerStrategy", "Strategy", "TPUStrategy", "get_replica_context",
                   "get_strategy", "has_strategy", "in_cross_replica_context")
_REPLICA_NAMES = ("InputContext", "ReduceOp", "ReplicaContext")
_SUBMODULES = ("cluster_resolver", "coordinator", "experimental", "partitioners")


def __getattr__(name: str):
    if name == "ParameterServerStrategy":  # given a resolver it builds experimental's class
        from distflow.distribute import experimental

        return experimental.strategy_module.ParameterServerStrategy
    if name in _STRATEGY_NAMES:
        from distflow.distribute import strategy

        return getattr(strategy, name)
    if name in _REPLICA_NAMES:
        from distflow.distribute import replica

        return getattr(replica, name)
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"distflow.distribute.{name}")
    if name == "Server":
        from distflow.distribute import experimental

        return experimental.Server
    raise AttributeError(f"module 'distflow.distribute' has no attribute {name!r}")


__all__ = ["ClusterSpec", "Server", *_STRATEGY_NAMES, *_REPLICA_NAMES, *_SUBMODULES]
