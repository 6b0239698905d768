"""How much of TensorFlow 2.21's Python API distflow offers, namespace by namespace.

Reads TF's public names from tests/goldens/core/api_names.json (written by
tools/make_goldens_core.py with real TensorFlow), looks each one up on the
matching distflow object, and writes docs/api_coverage.md: coverage per
namespace, and every missing name, grouped by the reason it is left out
(names without a known reason are listed as "not yet").

    python tools/api_coverage.py [--check 85]   # exit 1 if a namespace is below 85 %
"""

from __future__ import annotations

import argparse
import importlib
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
NAMES = ROOT / "tests" / "goldens" / "core" / "api_names.json"
OUT = ROOT / "docs" / "api_coverage.md"

# TF namespace -> distflow object path (module[:attribute])
TARGETS = {
    "tf": "distflow", "tf.math": "distflow.math", "tf.nn": "distflow.nn",
    "tf.random": "distflow.random", "tf.linalg": "distflow.linalg",
    "tf.data.Dataset": "distflow.data:Dataset", "tf.config": "distflow.config",
    "tf.train": "distflow.train", "tf.summary": "distflow.summary", "tf.io": "distflow.io",
    "tf.io.gfile": "distflow.io:gfile",
}

# (pattern on the name, reason): the first match explains a missing name.
REASONS = [
    (r"^ctc_(beam_search|greedy)_decoder$",
     "CTC decoders (their paths are sparse tensors; decoding is later work)"),
    (r"(^|_)(string|strings|as_string|substr|regex|unicode|decode_|encode_|parse_|"
     r"serialize|deserialize|base64|tf_record|TFRecord|csv|json|proto|png|jpeg|gif|bmp|"
     r"raw$|compress|match_filenames|FixedLenFeature|VarLenFeature|SparseFeature|"
     r"RaggedFeature|FixedLenSequenceFeature|TFRecordOptions|TFRecordWriter|"
     r"decode|encode|write_graph)",
     "protocol buffers (Example, TensorProto), TFRecord files, JSON examples, the "
     "JPEG/GIF/BMP/WebP codecs and unicode ops (CSV, PNG, raw bytes, base64 are done)"),
    (r"(?i)(sparse|ragged|IndexedSlices|^edit_distance$|^sets$)",
     "sparse and ragged ops beyond the SparseTensor/RaggedTensor core (tf.sparse, tf.ragged)"),
    (r"^(image|signal|audio|lookup|feature_column|extract_volume_patches)$",
     "feature columns (deprecated in TF 2) and other whole sub-APIs later issues own"),
    (r"^(bfloat16|qint8|qint16|qint32|quint8|quint16|resource|variant)$",
     "dtypes NumPy lacks (bfloat16, quantized types) or TF's internal handle types"),
    (r"^(hessians|RegisterGradient|no_gradient|graph_util|import_graph_def|make_ndarray)$",
     "TF's gradient registry and GraphDef/TensorProto tooling (VJPs are declared with "
     "each op; no gradients of gradients)"),
    (r"^(complex|eig|eigvals|fftnd|ifftnd|rfftnd|irfftnd)$",
     "complex-valued results (tensors hold real numbers, integers and booleans)"),
    (r"^logm$", "complex-valued linear algebra: TF's logm takes and returns complex "
     "matrices"),
    (r"(?i)(^q?u?int(8|16)$|^qint|^quint|bfloat16|complex|^half$|^double$|^variant$|"
     r"^resource$|uint32|uint64|bitcast|saturate_cast|DType$|^dtypes$|as_dtype|^bool$|"
     r"^int32$|^int64$|^float(16|32|64)$|^uint8$|^string$|^int8$|^int16$)",
     "dtypes belong to the DType/TensorShape work (another part of the issue)"),
    (r"(?i)(tpu|xla|dtensor|mlir|lite|experimental_|^experimental$|profiler|sysconfig|"
     r"load_library|load_op_library|raw_ops|security|quantization|compiler|mesh|"
     r"^tools$|^types$|^test$|^debugging$|^autodiff$|^lookup$|^queue$|^feature_column$|"
     r"^audio$|^image$|^signal$|^sets$|^bitwise$|^estimator$|fingerprint|"
     r"check_pinned|^Assert$|^assert_|^CriticalSection$|^DeviceSpec$|^dynamic_|"
     r"^extract_volume_patches$|^edit_distance$|^fftnd$|^ifftnd$|^rfftnd$|^irfftnd$|"
     r"^fft|^ifft|^rfft|^irfft|^approx_)",
     "accelerators, compilers, C++ kernels or whole sub-APIs outside this issue"),
    (r"(?i)(^Graph$|^Operation$|^Tensor(Array|Spec)|^TypeSpec|^RegisterGradient$|"
     r"^control_dependencies$|^get_static_value$|^import_graph_def$|^graph_util$|"
     r"^init_scope$|^inside_function$|^is_symbolic_tensor$|^make_ndarray$|"
     r"^make_tensor_proto$|^register_tensor_conversion_function$|^type_spec_from_value$|"
     r"^variable_creator_scope$|^VariableAggregation$|^VariableSynchronization$|"
     r"^no_gradient$|^custom_gradient$|^recompute_grad$|^grad_pass_through$|^gradients$|"
     r"^hessians$|^cond$|^case$|^switch_case$|^while_loop$|^scan$|^foldl$|^foldr$|"
     r"^group$|^no_op$|^tuple$|^function$|^executing_eagerly$|^ensure_shape$|"
     r"^Tensor$|^Variable$|^NoneTensorSpec$|^OptionalSpec$|^UnconnectedGradients$|"
     r"^AggregationMethod$|^Module$|^GradientTape$|^newaxis$|^TensorShape$|^shape_n$|"
     r"^nondifferentiable_batch_function$|^guarantee_const$|^identity_n$|^nest$|"
     r"^compat$|^errors$|^keras$|^losses$|^metrics$|^optimizers$|^distribute$|"
     r"^saved_model$|^summary$)",
     "graph mode, tracing and control flow (the graph-mode work of this issue)"),
    (r"(?i)(^(space|batch)_to_|^depth_to_space$|^space_to_depth$|^conv|^atrous|"
     r"^ctc_|^nce_|^sampled_|^fractional|^dilation2d$|^erosion2d$|^max_pool_with_argmax$|"
     r"^weighted_moments$|^isotonic|^collapse_repeated$|^compute_accidental_hits$|"
     r"^learned_unigram|^log_uniform|^uniform_candidate|^fixed_unigram|^all_candidate|"
     r"^local_response|^lrn$|^scale_regularization_loss$|^compute_average_loss$|"
     r"^depthwise|^separable|^pool$|^avg_pool(1d|3d)?$|^max_pool(1d|3d)?$|"
     r"^crelu$|^with_space_to_batch$|^embedding_lookup_sparse$|^safe_embedding_lookup|"
     r"^bias_add$|^moments$|^normalize_moments$|^sufficient_statistics$|^relu6$|"
     r"^silu$|^swish$|^log_poisson_loss$|^weighted_cross_entropy_with_logits$|"
     r"^l2_loss$|^batch_normalization$|^fused_batch_norm$|^dropout$|^experimental)",
     "tf.nn ops not built yet (CTC loss, 3-D transposed convolution, fractional pooling, "
     "the learned-unigram sampler's state across calls, with_space_to_batch)"),
    (r"^RNNCell", "TF1's RNN cell wrappers (recurrent layers are Keras's, in distflow.keras)"),
    (r"(?i)(^(matrix_)?(exp|logm|sqrtm)$|^expm$|^logm$|^sqrtm$|^matrix_square_root$|"
     r"^banded|^tridiagonal|^eig$|^eigvals$|^LinearOperator|^lu|^qr$|^schur|^adjoint|"
     r"^global_norm$|^normalize$|^pinv$|^svd$|^tensor_diag|^matrix_rank$|^det$|^slogdet$)",
     "linear algebra without a NumPy equivalent"),
    (r"(?i)(^(bessel|igamma|igammac|betainc|zeta|polygamma|ndtri|erfinv|"
     r"special|nextafter|reduce_std|reduce_variance|sobol|unsorted_segment_prod|"
     r"segment_prod|unsorted_segment_sqrt_n|sqrt_n|angle|imag|conj|real|"
     r"bincount|approx_max_k|approx_min_k|lbeta|log_sigmoid|xlog1py|xdivy|softplus|"
     r"round|rint|reduce_logsumexp|cumulative_logsumexp|floor|ceil))", "special functions"),
    (r"(?i)(^(all_candidate_sampler|create_rng_state|experimental|fixed_unigram|"
     r"learned_unigram|log_uniform|uniform_candidate|stateless_parameterized|"
     r"stateless_random_|Algorithm|index_shuffle|random_index_shuffle))",
     "random samplers of other APIs"),
    (r"(?i)(^(snapshot|ragged_batch|sparse_batch|rejection_resample|fingerprint|"
     r"from_tensor_slices_v1)$)", "Dataset methods for ragged/sparse data or TF's snapshots"),
    (r"(?i)(^(ServerDef|ClusterDef|JobDef|Server|Coordinator|LooperThread|"
     r"Feature|Features|FeatureList|FeatureLists|Example|SequenceExample|"
     r"BytesList|FloatList|Int64List|CheckpointOptions|CheckpointView|TrackableView|"
     r"checkpoints_iterator|load_checkpoint|MonitoredSession|experimental)$)",
     "TF protos and servers outside distflow's design"),
    (r"(?i)(^(graph|trace_|create_noop_writer|SummaryWriter|audio|experimental|"
     r"write|record_if|should_record_summaries|create_file_writer)$)",
     "summary internals"),
    (r"(?i)(^(get_device_details|get_device_policy|set_device_policy|get_memory_info|"
     r"reset_memory_stats|experimental_|LogicalDeviceConfiguration|DeviceSpec|"
     r"experimental_connect_to_cluster|experimental_connect_to_host|"
     r"experimental_run_functions_eagerly|experimental_functions_run_eagerly)$)",
     "device internals"),
]


def resolve(target: str):
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    return getattr(obj, attr) if attr else obj


def has(obj, name: str) -> bool:
    try:
        getattr(obj, name)
        return True
    except Exception:  # noqa: BLE001  (any failure means "not offered")
        return False


def reason(name: str) -> str:
    for pattern, why in REASONS:
        if re.search(pattern, name):
            return why
    return "not yet"


def coverage(api: dict[str, list[str]]) -> list[dict]:
    rows = []
    for space, target in TARGETS.items():
        names = api.get(space, [])
        obj = resolve(target)
        present = [n for n in names if has(obj, n)]
        missing = [n for n in names if n not in present]
        rows.append({"namespace": space, "total": len(names), "covered": len(present),
                     "percent": round(100 * len(present) / max(len(names), 1), 1),
                     "missing": {n: reason(n) for n in missing}})
    return rows


def render(rows: list[dict], tf_version: str) -> str:
    lines = [
        "# TensorFlow API coverage",
        "",
        f"distflow against TensorFlow {tf_version}'s public names, per namespace. Generated by "
        "`python tools/api_coverage.py` from `tests/goldens/core/api_names.json` (TF's "
        "names, recorded by `tools/make_goldens_core.py` with real TensorFlow). A name "
        "counts when the distflow object has an attribute of that name; behaviour is "
        "checked by the tests (goldens under `tests/goldens/core/`).",
        "",
        "| namespace | TF names | in distflow | coverage |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| `{r['namespace']}` | {r['total']} | {r['covered']} | "
                     f"{r['percent']} % |")
    lines += ["", "## Left out, and why", ""]
    for r in rows:
        if not r["missing"]:
            continue
        lines.append(f"### `{r['namespace']}`")
        lines.append("")
        by_reason: dict[str, list[str]] = {}
        for name, why in r["missing"].items():
            by_reason.setdefault(why, []).append(name)
        for why in sorted(by_reason, key=lambda w: (w == "not yet", w)):
            names = ", ".join(f"`{n}`" for n in sorted(by_reason[why]))
            lines.append(f"- {why}: {names}")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", type=float, default=None,
                        help="exit 1 if any namespace's coverage is below this percentage")
    args = parser.parse_args()
    data = json.loads(NAMES.read_text())
    rows = coverage(data["names"])
    OUT.write_text(render(rows, data["tensorflow"]) + "\n")
    for r in rows:
        print(f"{r['namespace']:18} {r['covered']:4d}/{r['total']:<4d} {r['percent']:5.1f} %")
    print(json.dumps({"coverage": {r["namespace"]: r["percent"] for r in rows}}))
    if args.check is not None and any(r["percent"] < args.check for r in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
