"""Keras's compiled steps under the launcher: real worker and server processes, real sockets.

The traced train step computes the gradients; its recorded `apply_gradients` pushes
them to the parameter servers and pulls the new weights, which the next step's graph
reads. The run proves it: the servers' version is the number of steps, the workers
end with identical weights equal to full-batch gradient descent, and each worker's
train function ran traced (no eager fallback).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_launch_e2e import LR, ROWS, STEPS, reference_weights, run_launcher, worker_json
from test_tf_way_launch import server_versions

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

COMPILED_FIT = f"""
import json
import numpy as np
import distflow as df

strategy = df.distribute.get_strategy()
rng = np.random.default_rng(0)
x = rng.normal(size=({ROWS}, 3)).astype("float32")
y = (x @ np.array([[1.0], [-2.0], [0.5]], "float32") + 0.3).astype("float32")
with strategy.scope():
    model = df.keras.Sequential([df.keras.Input((3,)), df.keras.layers.Dense(
        1, kernel_initializer="zeros", bias_initializer="zeros")])
    model.compile(optimizer=df.keras.optimizers.SGD({LR}), loss="mse")
# the global batch is all rows: each step is one full-batch gradient descent step
model.fit(x, y, batch_size={ROWS}, epochs={STEPS}, shuffle=False, verbose=0)
fn = model.train_function
print("traced", json.dumps([type(fn).__name__, fn.experimental_get_tracing_count(),
                            str(fn._eager_reason), int(model.optimizer.iterations.numpy())]))
print("final", json.dumps([v for w in model.get_weights() for v in w.ravel().tolist()]))
"""


def test_compiled_fit_pushes_gradients_and_reads_the_pulled_weights(tmp_path):
    result = run_launcher(tmp_path, "--workers", "2", "--ps", "1", "--strategy", "mirrored",
                          script=COMPILED_FIT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert server_versions(output) == [STEPS], output[-3000:]
    traced = worker_json(result.stdout, "traced")
    assert traced == {0: ["Function", 1, "None", STEPS], 1: ["Function", 1, "None", STEPS]}
    weights = worker_json(result.stdout, "final")
    assert sorted(weights) == [0, 1]
    np.testing.assert_array_equal(weights[0], weights[1])
    np.testing.assert_allclose(weights[0], reference_weights(1), rtol=1e-4, atol=1e-4)
