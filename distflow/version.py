"""`tf.version`: what this is and which TensorFlow API it follows.

`VERSION` is distflow's own version; `TF_API_VERSION` is the TensorFlow release
whose Python API distflow mirrors (tests compare against it).
"""

VERSION = "0.1.0"
TF_API_VERSION = "2.21"
GIT_VERSION = "unknown"
COMPILER_VERSION = "none (pure Python on NumPy)"
GRAPH_DEF_VERSION = 0
GRAPH_DEF_VERSION_MIN_CONSUMER = 0
GRAPH_DEF_VERSION_MIN_PRODUCER = 0
DESCRIPTION = (f"distflow {VERSION}: a NumPy data-parallel trainer following the TensorFlow "
               f"{TF_API_VERSION} / Keras 3 API; not TensorFlow.")
