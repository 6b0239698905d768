"""tf.Module, tf.train.Checkpoint / CheckpointManager, tf.saved_model, tf.summary, tf.config,
tf.device, tf.io, and the small compatibility names (version, autograph, get_logger,
initializer aliases, compat ConfigProto, tf.train.ClusterSpec)."""

import json
import os

import numpy as np
import pytest

import distflow as df
from distflow import keras
from distflow.compat_config import ConfigProto, GPUOptions

rng = np.random.default_rng(0)
X = rng.standard_normal((32, 5)).astype(np.float32)
Y = rng.standard_normal((32, 2)).astype(np.float32)


# ------------------------------------------------------------------ tf.Module


class Dense(df.Module):
    def __init__(self, n_in, n_out, name=None):
        super().__init__(name=name)
        self.w = df.Variable(np.ones((n_in, n_out), np.float32), name="w")
        self.b = df.Variable(np.zeros(n_out, np.float32), name="b")
        self.count = df.Variable(0, trainable=False, name="count")

    def __call__(self, x):
        return df.matmul(x, self.w) + self.b


class Net(df.Module):
    def __init__(self):
        super().__init__()
        self.layers = [Dense(5, 3), Dense(3, 2)]
        self.extra = {"scale": df.Variable(2.0, name="scale")}
        self.shared = self.layers[0]  # the same module twice: its variables count once


def test_module_tracks_variables_and_submodules():
    net = Net()
    assert net.name == "net"
    assert len(net.variables) == 7 and len(net.trainable_variables) == 5
    assert len(net.non_trainable_variables) == 2
    assert [type(m).__name__ for m in net.submodules] == ["Dense", "Dense"]
    with pytest.raises(ValueError, match="not a valid module name"):
        df.Module(name="bad name")


def test_module_finds_keras_layers_it_holds():
    class Holder(df.Module):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3)
            self.dense.build((None, 4))

    assert len(Holder().trainable_variables) == 2


def test_name_scope_nests():
    with df.name_scope("outer") as outer:
        with df.name_scope("inner") as inner:
            assert df.get_current_name_scope() == "outer/inner"
    assert (outer, inner) == ("outer/", "outer/inner/")
    assert df.get_current_name_scope() == ""


# ------------------------------------------------------------------ checkpoints


def make_model():
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="tanh"),
                              keras.layers.Dense(2)])
    return model, keras.optimizers.Adam(0.05)


def train_steps(model, opt, steps, start):
    for i in range(start, start + steps):
        xb, yb = X[(i * 8) % 32:(i * 8) % 32 + 8], Y[(i * 8) % 32:(i * 8) % 32 + 8]
        with df.GradientTape() as tape:
            loss = df.reduce_mean(df.square(model(xb) - yb))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))


def test_checkpoint_round_trip_continues_exactly_like_an_uninterrupted_run(tmp_path):
    keras.utils.set_random_seed(1)
    model, opt = make_model()
    reference = [w.copy() for w in model.get_weights()]
    train_steps(model, opt, 6, 0)
    uninterrupted, _ = make_model()
    uninterrupted.set_weights(reference)
    uninterrupted_opt = keras.optimizers.Adam(0.05)
    train_steps(uninterrupted, uninterrupted_opt, 10, 0)

    ckpt = df.train.Checkpoint(model=model, optimizer=opt)
    path = ckpt.save(str(tmp_path / "ckpt"))
    assert path == str(tmp_path / "ckpt-1")
    assert os.path.exists(path + ".safetensors") and os.path.exists(path + ".index.json")

    fresh, fresh_opt = make_model()  # other variable names, no optimizer slots yet
    status = df.train.Checkpoint(model=fresh, optimizer=fresh_opt).restore(
        df.train.latest_checkpoint(str(tmp_path)))
    status.assert_consumed()
    assert fresh_opt.iterations == 6
    train_steps(fresh, fresh_opt, 4, 6)
    for a, b in zip(fresh.get_weights(), uninterrupted.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_index_is_json_with_object_paths(tmp_path):
    net = Net()
    ckpt = df.train.Checkpoint(net=net)
    path = ckpt.write(str(tmp_path / "plain"))
    index = json.loads((tmp_path / "plain.index.json").read_text())
    assert index["format"] == "distflow.checkpoint"
    assert "net/layers/0/w" in index["entries"] and "save_counter" in index["entries"]
    assert "net/shared/w" not in index["entries"]  # tracked once, under its first path
    names = dict(df.train.list_variables(path))
    assert names["net/layers/1/w"] == [3, 2]
    np.testing.assert_array_equal(df.train.load_variable(path, "net/extra/scale"), 2.0)


def test_restore_mismatches_are_reported(tmp_path):
    net = Net()
    path = df.train.Checkpoint(net=net).write(str(tmp_path / "c"))
    other = df.train.Checkpoint(net=Net(), extra=df.Variable(1.0))
    status = other.restore(path)
    with pytest.raises(AssertionError, match="no value in the file"):
        status.assert_consumed()
    status.expect_partial()

    class Wide(df.Module):
        def __init__(self):
            super().__init__()
            self.layers = [Dense(5, 4)]

    with pytest.raises(ValueError, match="shape"):
        df.train.Checkpoint(net=Wide()).restore(path)
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        df.train.Checkpoint(net=net).restore(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="trackable"):
        df.train.Checkpoint(lr=0.1)
    assert df.train.Checkpoint(net=net).restore(None).assert_consumed()


def test_checkpoint_manager_keeps_the_newest(tmp_path):
    v = df.Variable(0.0)
    ckpt = df.train.Checkpoint(v=v)
    manager = df.train.CheckpointManager(ckpt, str(tmp_path), max_to_keep=2)
    assert manager.restore_or_initialize() is None
    for i in range(4):
        v.assign(float(i))
        manager.save()
    assert [os.path.basename(p) for p in manager.checkpoints] == ["ckpt-3", "ckpt-4"]
    assert not os.path.exists(str(tmp_path / "ckpt-1.safetensors"))
    state = (tmp_path / "checkpoint").read_text()
    assert state.splitlines()[0] == 'model_checkpoint_path: "ckpt-4"'
    assert df.train.latest_checkpoint(str(tmp_path)) == str(tmp_path / "ckpt-4")
    v.assign(-1.0)
    again = df.train.CheckpointManager(df.train.Checkpoint(v=v), str(tmp_path), max_to_keep=2)
    assert again.restore_or_initialize() == str(tmp_path / "ckpt-4") and float(v) == 3.0
    with pytest.raises(ValueError, match="max_to_keep"):
        df.train.CheckpointManager(ckpt, str(tmp_path), max_to_keep=0)


def test_checkpoint_manager_numbers_by_step_counter_with_interval(tmp_path):
    step = df.Variable(0, trainable=False, dtype="int64")
    manager = df.train.CheckpointManager(df.train.Checkpoint(step=step), str(tmp_path),
                                         max_to_keep=None, step_counter=step,
                                         checkpoint_interval=10)
    saved = []
    for s in (0, 5, 10, 12, 25):
        step.assign(s)
        saved.append(manager.save())
    assert [p and os.path.basename(p) for p in saved] == ["ckpt-0", None, "ckpt-10", None,
                                                          "ckpt-25"]


# ------------------------------------------------------------------ saved_model


def test_saved_model_module_and_keras_round_trip(tmp_path):
    net = Net()
    net.layers[1].w.assign(np.full((3, 2), 0.5, np.float32))
    df.saved_model.save(net, str(tmp_path / "mod"))
    loaded = df.saved_model.load(str(tmp_path / "mod"))
    np.testing.assert_array_equal(loaded.layers.__dict__["1"].w.numpy(), 0.5)
    assert len(loaded.variables) == 7

    model, _ = make_model()
    df.saved_model.save(model, str(tmp_path / "keras"))
    again = df.saved_model.load(str(tmp_path / "keras"))
    np.testing.assert_allclose(again.predict(X, verbose=0), model.predict(X, verbose=0))

    (tmp_path / "tf").mkdir()
    (tmp_path / "tf" / "saved_model.pb").write_bytes(b"\x08\x01")
    with pytest.raises(ValueError, match="TensorFlow SavedModel"):
        df.saved_model.load(str(tmp_path / "tf"))


# ------------------------------------------------------------------ summaries


def read_events(directory):
    return [(v.tag, event.step, v) for name in sorted(os.listdir(directory))
            for event in df.summary.summary_iterator(directory / name)
            for v in event.summary.value]


def test_summary_writes_scalars_histograms_text_images(tmp_path):
    writer = df.summary.create_file_writer(str(tmp_path))
    with writer.as_default(step=3):
        assert df.summary.scalar("loss", df.constant(0.25))
        assert df.summary.scalar("acc", 0.5, step=7)
        assert df.summary.histogram("w", np.arange(10.0), buckets=5)
        assert df.summary.text("note", "hello")
        assert df.summary.image("img", np.ones((2, 4, 3, 3), np.float32) * 0.5)
        df.summary.flush()
    events = {tag: (step, v) for tag, step, v in read_events(tmp_path)}
    assert events["loss"][0] == 3 and events["loss"][1].simple_value == 0.25
    assert events["acc"][0] == 7
    assert events["w"][1].histo.num == 10 and events["w"][1].histo.max == 9.0
    assert b"hello" in events["note"][1].tensor.string_val[0]
    png = events["img/image/1"][1].image
    assert (png.height, png.width, png.colorspace) == (4, 3, 3)
    assert png.encoded_image_string.startswith(b"\x89PNG")
    writer.close()


def test_png_decodes_back_to_the_pixels():
    import zlib

    pixels = rng.integers(0, 256, (3, 5, 3), dtype=np.uint8)
    png = df.summary.encode_png(pixels)
    idat = png[png.index(b"IDAT") + 4:png.index(b"IEND") - 8]
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(3, 1 + 5 * 3)
    assert (rows[:, 0] == 0).all()
    np.testing.assert_array_equal(rows[:, 1:].reshape(3, 5, 3), pixels)


def test_summary_without_writer_or_step(tmp_path):
    assert df.summary.scalar("x", 1.0, step=1) is False
    writer = df.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        with pytest.raises(ValueError, match="No step set"):
            df.summary.scalar("x", 1.0)
        with df.summary.record_if(False):
            assert df.summary.scalar("x", 1.0, step=1) is False
        with pytest.raises(ValueError, match="scalar"):
            df.summary.scalar("x", [1.0, 2.0], step=1)


# ------------------------------------------------------------------ config, device


def test_config_lists_one_cpu_and_maps_intra_op_threads_to_blas():
    assert df.config.list_physical_devices() == [df.config.list_physical_devices("CPU")[0]]
    assert df.config.list_physical_devices("GPU") == []
    assert df.config.list_logical_devices("CPU")[0].name == "/device:CPU:0"
    cpu = df.config.list_physical_devices("CPU")[0]
    df.config.experimental.set_memory_growth(cpu, True)
    df.config.set_visible_devices([cpu])
    df.config.set_visible_devices([], "GPU")
    with pytest.raises(ValueError, match="Unrecognized device"):
        df.config.set_visible_devices(["/GPU:0"])
    before = df.config.blas_num_threads()
    try:
        df.config.threading.set_intra_op_parallelism_threads(1)
        assert df.config.threading.get_intra_op_parallelism_threads() == 1
        if before is not None:
            assert df.config.blas_num_threads() == 1
    finally:
        df.config.threading.set_intra_op_parallelism_threads(before or 0)
    with pytest.raises(ValueError, match="num_threads"):
        df.config.threading.set_intra_op_parallelism_threads(-1)


def test_device_is_a_no_op_on_cpu_and_an_error_on_gpu():
    for name in ("/CPU:0", "cpu:0", "/device:CPU:0", "/job:localhost/replica:0/task:0/device:CPU:0",
                 None, ""):
        with df.device(name):
            assert float(df.add(1.0, 2.0)) == 3.0
    for name in ("/GPU:0", "/device:TPU:0"):
        with pytest.raises(RuntimeError, match="CPU only"):
            with df.device(name):
                pass


# ------------------------------------------------------------------ io


def test_gfile_and_read_write_file(tmp_path):
    d = str(tmp_path / "a" / "b")
    df.io.gfile.makedirs(d)
    assert df.io.gfile.exists(d) and df.io.gfile.isdir(d)
    with df.io.gfile.GFile(os.path.join(d, "x.txt"), "w") as f:
        f.write("line1\nline2\n")
    with df.io.gfile.GFile(os.path.join(d, "x.txt")) as f:
        assert f.readlines() == ["line1\n", "line2\n"]
    assert df.io.gfile.glob(str(tmp_path / "a" / "*" / "*.txt")) == [os.path.join(d, "x.txt")]
    df.io.write_file(str(tmp_path / "new" / "y.bin"), b"\x00\x01")
    assert df.io.read_file(str(tmp_path / "new" / "y.bin")) == b"\x00\x01"
    assert df.io.gfile.listdir(d) == ["x.txt"]
    with pytest.raises(ValueError, match="local paths"):
        df.io.gfile.exists("gs://bucket/x")
    with pytest.raises(ValueError, match="mode"):
        df.io.gfile.GFile(os.path.join(d, "x.txt"), "rw")


# ------------------------------------------------------------------ small names


def test_version_autograph_logger_initializers_and_config_protos():
    assert df.version.VERSION == df.__version__ and df.version.TF_API_VERSION == "2.21"
    assert "not TensorFlow" in df.version.DESCRIPTION

    @df.autograph.experimental.do_not_convert
    def f(x):
        return x + 1

    assert f(1) == 2 and df.autograph.experimental.do_not_convert()(f) is f
    assert df.get_logger().name == "distflow"
    init = df.zeros_initializer()
    np.testing.assert_array_equal(np.asarray(init((2, 2))), np.zeros((2, 2)))
    assert df.initializers.GlorotUniform is keras.initializers.GlorotUniform
    config = ConfigProto(allow_soft_placement=True, gpu_options=GPUOptions(allow_growth=True))
    config.gpu_options.per_process_gpu_memory_fraction = 0.5
    config.intra_op_parallelism_threads = 2
    assert config.gpu_options.allow_growth and config.allow_soft_placement
    with pytest.raises(AttributeError, match="no field"):
        config.not_a_field = 1


def test_train_cluster_spec():
    spec = df.train.ClusterSpec({"worker": ["h0:2222", "h1:2222"], "ps": {0: "p0:2222"}})
    assert spec.jobs == ["ps", "worker"] and spec.num_tasks("worker") == 2
    assert spec.task_address("worker", 1) == "h1:2222"
    assert spec.as_dict() == {"worker": ["h0:2222", "h1:2222"], "ps": ["p0:2222"]}
    with pytest.raises(ValueError, match="No such job"):
        spec.num_tasks("chief")


def test_summary_iterator_rejects_a_corrupt_file(tmp_path):
    writer = df.summary.create_file_writer(str(tmp_path))
    with writer.as_default(step=1):
        df.summary.scalar("x", 1.0)
    writer.close()
    (name,) = os.listdir(tmp_path)
    raw = bytearray((tmp_path / name).read_bytes())
    raw[-6] ^= 0xFF
    (tmp_path / name).write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="Corrupt"):
        list(df.summary.summary_iterator(tmp_path / name))


def test_load_checkpoint_reader_and_checkpoints_iterator(tmp_path):
    v = df.Variable([1.0, 2.0])
    manager = df.train.CheckpointManager(df.train.Checkpoint(v=v), str(tmp_path), max_to_keep=3)
    first = manager.save()
    reader = df.train.load_checkpoint(str(tmp_path))
    np.testing.assert_array_equal(reader.get_tensor("v"), [1.0, 2.0])
    assert reader.get_variable_to_shape_map()["v"] == [2]
    found = list(df.train.checkpoints_iterator(str(tmp_path), timeout=0.05))
    assert found == [first]


def test_exponential_moving_average():
    w = df.Variable(0.0)
    ema = df.train.ExponentialMovingAverage(decay=0.9)
    ema.apply([w])
    assert float(ema.average(w)) == 0.0
    w.assign(10.0)
    ema.apply([w])
    assert float(ema.average(w)) == pytest.approx(1.0)  # 0 - 0.1 * (0 - 10)
    step = df.Variable(0, trainable=False)
    warm = df.train.ExponentialMovingAverage(0.999, num_updates=step)
    assert warm._current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    with pytest.raises(ValueError, match="decay"):
        df.train.ExponentialMovingAverage(1.5)


def test_checkpoint_of_a_compiled_model_resumes_fit_exactly(tmp_path):
    def compiled():
        model, _ = make_model()
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
        return model

    keras.utils.set_random_seed(2)
    model = compiled()
    start = [w.copy() for w in model.get_weights()]
    model.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    path = df.train.Checkpoint(model=model).save(str(tmp_path / "fit"))

    uninterrupted = compiled()
    uninterrupted.set_weights(start)
    uninterrupted.fit(X, Y, batch_size=8, epochs=3, shuffle=False, verbose=0)

    resumed = compiled()
    df.train.Checkpoint(model=resumed).restore(path).assert_consumed()
    assert resumed.optimizer.iterations == 8
    resumed.fit(X, Y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(resumed.get_weights(), uninterrupted.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


class TwoLayer(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(4, activation="tanh")
        self.out = keras.layers.Dense(2)

    def call(self, x):
        return self.out(self.hidden(x))


def test_restore_before_the_model_is_built_is_applied_at_its_first_call(tmp_path):
    # TF's checkpoint guide: restore(manager.latest_checkpoint) right after creating the
    # model and optimizer, then train; the values arrive when the variables are created.
    keras.utils.set_random_seed(3)
    model, opt = TwoLayer(), keras.optimizers.Adam(0.05)
    train_steps(model, opt, 5, 0)
    manager = df.train.CheckpointManager(df.train.Checkpoint(net=model, opt=opt),
                                         str(tmp_path), max_to_keep=1)
    manager.save()
    train_steps(model, opt, 3, 5)
    continued = [w.copy() for w in model.get_weights()]

    fresh, fresh_opt = TwoLayer(), keras.optimizers.Adam(0.05)
    df.train.Checkpoint(net=fresh, opt=fresh_opt).restore(manager.latest_checkpoint)
    status = df.train.Checkpoint(net=fresh, opt=fresh_opt).restore(manager.latest_checkpoint)
    with pytest.raises(AssertionError, match="waiting for a model to be built"):
        status.assert_consumed()
    train_steps(fresh, fresh_opt, 3, 5)  # the first call builds, then restores, then runs
    status.assert_consumed()
    assert fresh_opt.iterations == 8
    for a, b in zip(fresh.get_weights(), continued):
        np.testing.assert_array_equal(a, b)


def test_coordinator_stops_threads_and_reraises_their_error():
    import threading

    coord = df.train.Coordinator()

    def worker(i):
        with coord.stop_on_exception():
            while not coord.should_stop():
                if i == 1:
                    raise ValueError("worker 1 failed")
                coord.wait_for_stop(0.01)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    with pytest.raises(ValueError, match="worker 1 failed"):
        coord.join(threads, stop_grace_period_secs=10)
    assert not any(t.is_alive() for t in threads)


def test_coordinator_join_returns_when_threads_end_without_a_stop_request():
    import threading

    coord = df.train.Coordinator()
    t = threading.Thread(target=lambda: None)
    t.start()
    coord.join([t], stop_grace_period_secs=5)
    assert not coord.should_stop()
