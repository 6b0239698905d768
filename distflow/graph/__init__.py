"""Graph mode: the IR, symbolic gradients, the executor, `function` and TF1's Session.

    g = distflow.graph.Graph()
    with g.as_default():
        x = distflow.compat.v1.placeholder("float32", [None, 3], name="x")
        y = distflow.reduce_sum(x * 2.0, axis=1)
    with distflow.compat.v1.Session(graph=g) as sess:
        sess.run(y, feed_dict={x: [[1, 2, 3]]})        # array([12.], dtype=float32)

Importing this package plugs the recorders into the core (see `record.install`).
"""

from distflow import errors
from distflow.graph.control_flow import cond, while_loop
from distflow.graph.core import (
    Graph,
    GraphTensor,
    Operation,
    building_graph,
    executing_eagerly,
    get_default_graph,
    placeholder,
    reset_default_graph,
)
from distflow.graph.executor import Plan
from distflow.graph.function import ConcreteFunction, Function, function
from distflow.graph.gradients import gradients
from distflow.graph.record import install as _install
from distflow.graph.session import InteractiveSession, Session, get_default_session
from distflow.tensor_shape import TensorShape, TensorSpec

_install()


def name_scope(name: str | None):
    """`with name_scope("layer"):` prefixes op names in the default graph."""
    return get_default_graph().name_scope(name)


def control_dependencies(control_inputs):
    """Ops created inside run after `control_inputs` (in the default graph)."""
    return get_default_graph().control_dependencies(control_inputs)


__all__ = ["ConcreteFunction", "Function", "Graph", "GraphTensor", "InteractiveSession",
           "Operation", "Plan", "Session", "TensorShape", "TensorSpec", "building_graph",
           "cond", "control_dependencies", "errors", "executing_eagerly", "function",
           "get_default_graph", "get_default_session", "gradients", "name_scope",
           "placeholder", "reset_default_graph", "while_loop"]
