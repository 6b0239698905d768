"""TensorFlow's cluster resolvers, read from real environment variables."""

from __future__ import annotations

import json

import pytest

import distflow as df
from distflow.distribute import cluster_env
from distflow.distribute.cluster_resolver import (
    SimpleClusterResolver,
    SlurmClusterResolver,
    TFConfigClusterResolver,
)
from distflow.train import ClusterSpec

CLUSTER = {"chief": ["h0:2222"], "worker": ["h1:2222", "h2:2222"], "ps": ["h3:2222"]}


def test_tf_config_resolver_reads_the_cluster_and_the_task(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": CLUSTER, "rpc_layer": "grpc",
                                                "task": {"type": "worker", "index": 1}}))
    resolver = TFConfigClusterResolver()
    assert resolver.cluster_spec() == ClusterSpec(CLUSTER)
    assert (resolver.task_type, resolver.task_id) == ("worker", 1)
    assert resolver.master() == "grpc://h2:2222"
    assert resolver.worker_addresses() == ["h0:2222", "h1:2222", "h2:2222"]
    assert resolver.worker_rank() == 2 and resolver.num_accelerators() == {}
    assert resolver.cluster_spec().num_tasks("worker") == 2
    assert resolver.cluster_spec().jobs == ["chief", "ps", "worker"]


def test_a_malformed_tf_config_names_what_is_wrong(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["nohost"]},
                                                "task": {"type": "worker"}}))
    with pytest.raises(cluster_env.ClusterError, match="host:port"):
        TFConfigClusterResolver()


def test_simple_resolver_and_the_spec_errors():
    resolver = SimpleClusterResolver(ClusterSpec({"worker": {1: "b:1", 0: "a:1"}}),
                                     task_type="worker", task_id=0)
    assert resolver.cluster_spec().as_dict() == {"worker": ["a:1", "b:1"]}
    assert resolver.master(rpc_layer="grpc") == "grpc://a:1"
    with pytest.raises(ValueError, match="No such job in cluster: 'ps'"):
        resolver.cluster_spec().task_address("ps", 0)
    with pytest.raises(TypeError, match="must list 'host:port' strings"):
        ClusterSpec({"worker": "a:1"})


def test_slurm_resolver_maps_tasks_to_jobs(monkeypatch):
    for key, value in {"SLURM_STEP_NODELIST": "node[1-2]", "SLURM_PROCID": "3",
                       "SLURM_STEP_NUM_TASKS": "4", "SLURM_NODEID": "1"}.items():
        monkeypatch.setenv(key, value)
    resolver = SlurmClusterResolver(jobs={"ps": 1, "worker": 3}, port_base=9000)
    assert resolver.cluster_spec().as_dict() == {
        "ps": ["node1:9000"], "worker": ["node1:9001", "node2:9000", "node2:9001"]}
    assert (resolver.task_type, resolver.task_id) == ("worker", 2)
    with pytest.raises(ValueError, match="add up to the step's 4 tasks"):
        SlurmClusterResolver(jobs={"worker": 2})


def test_multi_worker_strategy_refuses_a_ps_task_and_plain_tcp_beyond_loopback(monkeypatch):
    for key in ("DISTFLOW_PS_ADDRS", "DISTFLOW_KEYS", "DISTFLOW_INSECURE"):
        monkeypatch.delenv(key, raising=False)
    ps_task = SimpleClusterResolver(CLUSTER, task_type="ps", task_id=0)
    with pytest.raises(ValueError, match="runs on 'chief' and 'worker' tasks"):
        df.distribute.MultiWorkerMirroredStrategy(ps_task)
    chief = SimpleClusterResolver({"worker": ["10.9.8.7:2222"]}, task_type="worker", task_id=0)
    with pytest.raises(ValueError, match="DISTFLOW_KEYS"):
        df.distribute.MultiWorkerMirroredStrategy(chief)
