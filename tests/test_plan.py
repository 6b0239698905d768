"""The capacity model of `python -m distflow.plan` on fixed inputs."""

import json
import subprocess
import sys

import pytest

from distflow import plan

# Round numbers so the expected values can be worked out by hand.
CAL = plan.Calibration(s_per_message=100e-6, s_per_byte=1e-9)


def test_exact_values_for_a_fixed_calibration():
    # 1M params, 4 workers, 2 servers: 2 * 1e6 * 4 * 4 / 2 = 16 MB per server per step.
    pred = plan.predict(1_000_000, 4, 10.0, servers=2, step_s=0.05, batch=100,
                        latency_s=0.0, calibration=CAL)
    assert pred.bytes_per_server_step == 16e6
    assert pred.server_s == pytest.approx(4 * 100e-6 + 16e6 * 1e-9)  # 0.0164
    assert pred.link_s == pytest.approx(16e6 * 8 / 10e9)  # 0.0128
    assert pred.step_s == pytest.approx(0.05 + 0.0164)
    assert pred.samples_per_s == pytest.approx(400 / 0.0664)
    assert pred.efficiency == pytest.approx(0.05 / 0.0664)


def test_exact_recommendation_for_a_fixed_calibration():
    # One variable of 4 MB is cut into at most ceil(4e6 / 1 MiB) = 4 pieces of 1 MB.
    # Link time with M <= 4 servers: 2 * 4e6 / M * 8 workers * 8 / 1e9 = 0.512 / M,
    # above 0.1 s at every M (M >= 4 leaves 1 MB on the busiest: 0.128 s).
    # None fits, so the smallest M with the least time: 4, not the 8 workers.
    assert plan.recommend_ps(1_000_000, 8, 1.0, step_s=0.1, latency_s=0.0,
                             calibration=CAL) == 4
    # On 2 Gbit/s the link takes 0.256 / M: M = 4 (0.064 s) fits 0.07 s, M = 3
    # (0.085 s) fits 0.1 s and M = 2 (0.128 s) does not.
    assert plan.recommend_ps(1_000_000, 8, 2.0, step_s=0.07, latency_s=0.0,
                             calibration=CAL) == 4
    assert plan.recommend_ps(1_000_000, 8, 2.0, step_s=0.1, latency_s=0.0,
                             calibration=CAL) == 3
    # A small model on a fast link needs one server.
    assert plan.recommend_ps(1_000, 8, 100.0, step_s=0.1, calibration=CAL) == 1


MLP_N = 235_146
KERNEL = 784 * 256 * 4  # 802,816 bytes: below 1 MiB, so never cut


def test_the_mlps_busiest_server_holds_its_784x256_kernel_whatever_m():
    assert [max(plan.shard_bytes(m, plan.MLP_SHAPES)) for m in (1, 2, 4, 8)] == [
        MLP_N * 4, KERNEL, KERNEL, KERNEL]
    # The CNN's 3136 x 128 kernel (1.6 MB) is cut in two, never more; at M = 2 the
    # 3 x 3 x 32 x 64 kernel joins one half.
    half = 3136 * 128 * 4 // 2
    assert [max(plan.shard_bytes(m, plan.CNN_SHAPES)) for m in (2, 4, 8)] == [
        half + 9 * 32 * 64 * 4, half, half]


def test_mlp_with_4_servers_is_bounded_by_the_server_holding_its_kernel():
    pred = plan.predict(MLP_N, 4, 100.0, servers=4, step_s=0.01, batch=100, latency_s=0.0,
                        calibration=CAL, shapes=plan.MLP_SHAPES)
    # Equal shares would put 2 * N * 4 * 4 / 4 = 1.88 MB through each server.
    assert pred.bytes_per_server_step == 2 * KERNEL * 4
    assert pred.server_s == pytest.approx(4 * 100e-6 + 2 * KERNEL * 4 * 1e-9)
    assert pred.step_s == pytest.approx(0.01 + pred.server_s)


def test_mlp_recommendation_stops_at_the_servers_that_help():
    # 8 workers: the kernel's server needs 8e-4 + 2 * 802,816 * 8 * 1e-9 = 13.6 ms, over
    # the 10 ms step at every M; M = 2 already takes the rest off it, so more do not help.
    assert plan.recommend_ps(MLP_N, 8, 100.0, step_s=0.01, latency_s=0.0, calibration=CAL,
                             shapes=plan.MLP_SHAPES) == 2
    rates = {m: plan.predict(MLP_N, 8, 100.0, servers=m, step_s=0.01, calibration=CAL,
                             shapes=plan.MLP_SHAPES).samples_per_s for m in (2, 8)}
    assert rates[8] == rates[2]


def test_shapes_that_do_not_hold_params_are_refused():
    with pytest.raises(ValueError, match="params=1000"):
        plan.predict(1000, 2, 10.0, shapes=plan.MLP_SHAPES)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_throughput_rises_with_bandwidth_and_falls_with_model_size(mode):
    by_bw = [plan.predict(25_000_000, 16, bw, servers=4, step_s=0.2, mode=mode).samples_per_s
             for bw in (1, 10, 25, 100)]
    assert by_bw == sorted(by_bw) and by_bw[0] < by_bw[-1]
    by_n = [plan.predict(n, 16, 10, servers=4, step_s=0.2, mode=mode).samples_per_s
            for n in (10_000, 1_000_000, 25_000_000, 100_000_000)]
    assert by_n == sorted(by_n, reverse=True) and by_n[0] > by_n[-1]


def test_recommendation_falls_with_bandwidth_and_rises_with_model_size():
    by_bw = [plan.recommend_ps(25_000_000, 64, bw, step_s=0.2) for bw in (1, 10, 25, 100)]
    assert by_bw == sorted(by_bw, reverse=True) and by_bw[0] > by_bw[-1]
    by_n = [plan.recommend_ps(n, 64, 10, step_s=0.2)
            for n in (100_000, 5_000_000, 25_000_000, 100_000_000)]
    assert by_n == sorted(by_n) and by_n[0] < by_n[-1]


def test_more_servers_never_predict_less_sync_throughput():
    rates = [plan.predict(25_000_000, 32, 10, servers=m, step_s=0.2).samples_per_s
             for m in (1, 2, 4, 8, 16, 32)]
    assert rates == sorted(rates)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"params": 0}, "params=0"),
    ({"workers": 2.5}, "workers=2.5"),
    ({"bandwidth_gbit": -1}, "bandwidth_gbit=-1"),
    ({"servers": 0}, "servers=0"),
    ({"step_s": float("nan")}, "step_s=nan"),
    ({"mode": "ring"}, "mode='ring'"),
])
def test_bad_input_quotes_the_value_and_says_how_to_fix_it(kwargs, fragment):
    args = {"params": 1000, "workers": 2, "bandwidth_gbit": 10.0, **kwargs}
    with pytest.raises(ValueError, match="received") as err:
        plan.predict(**args)
    assert fragment in str(err.value) and ("Pass" in str(err.value))


def test_command_line_prints_recommendation_and_json():
    out = subprocess.run([sys.executable, "-m", "distflow.plan", "--params", "25000000",
                          "--workers", "64", "--bandwidth-gbit", "10", "--step-ms", "200"],
                         capture_output=True, text=True, check=True).stdout
    row = json.loads(out.strip().splitlines()[-1])
    assert row["recommended_ps"] == plan.recommend_ps(25_000_000, 64, 10, step_s=0.2)
    assert row["servers"] == row["recommended_ps"]
    assert f"recommended --ps {row['recommended_ps']}" in out


def test_command_line_places_a_preset_model():
    out = subprocess.run([sys.executable, "-m", "distflow.plan", "--model", "mlp",
                          "--workers", "8", "--bandwidth-gbit", "10", "--servers", "4"],
                         capture_output=True, text=True, check=True).stdout
    row = json.loads(out.strip().splitlines()[-1])
    assert row["servers"] == 4 and row["bytes_per_server_step"] == 2 * KERNEL * 8
    assert row["recommended_ps"] == plan.recommend_ps(MLP_N, 8, 10.0, shapes=plan.MLP_SHAPES)
    assert row["recommended_ps"] == 2


def test_command_line_refuses_bad_input_with_exit_2():
    proc = subprocess.run([sys.executable, "-m", "distflow.plan", "--params", "1000",
                           "--workers", "4", "--bandwidth-gbit", "0"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "bandwidth_gbit=0" in proc.stderr


def _plan(*args):
    return subprocess.run([sys.executable, "-m", "distflow.plan", *args],
                          capture_output=True, text=True)


MLP_TEXT = "784x256,256,256x128,128,128x10,10"


def test_shapes_text_gives_one_variable_per_item():
    assert plan.parse_shapes(MLP_TEXT) == {f"var{i}": tuple(s) for i, s in
                                           enumerate(plan.MLP_SHAPES.values())}
    assert plan.parse_shapes(" 3X3x1x32 , 32") == {"var0": (3, 3, 1, 32), "var1": (32,)}


@pytest.mark.parametrize("text, item", [("784x0,10", "784x0"), ("784x,10", "784x"),
                                        ("", ""), ("784x256,,10", ""), ("a", "a"),
                                        ("-4", "-4"), ("2.5", "2.5")])
def test_malformed_shapes_quote_the_received_text(text, item):
    with pytest.raises(ValueError, match="received") as err:
        plan.parse_shapes(text)
    assert f"shapes={text!r}" in str(err.value) and f"item {item!r}" in str(err.value)
    assert "e.g. --shapes 784x256" in str(err.value)


def test_command_line_places_the_shapes_it_is_given():
    # The MLP given by its shapes: placed as the preset is, the same recommendation.
    row = json.loads(_plan("--shapes", MLP_TEXT, "--workers", "8", "--bandwidth-gbit", "10",
                           "--servers", "4").stdout.splitlines()[-1])
    assert row["servers"] == 4 and row["bytes_per_server_step"] == 2 * KERNEL * 8
    assert row["recommended_ps"] == 2
    # A 1000 x 1000 kernel (4 MB) is cut in two halves of 2 MB at M = 2 (its fair share
    # is above 1 MiB); the 10-float bias joins the first: 2,000,040 bytes on server 0.
    assert plan.shard_bytes(2, plan.parse_shapes("1000x1000,10")) == (2_000_040, 2_000_000)
    row = json.loads(_plan("--shapes", "1000x1000,10", "--workers", "4", "--bandwidth-gbit",
                           "1", "--servers", "2", "--step-ms", "100").stdout.splitlines()[-1])
    assert row["bytes_per_server_step"] == 2 * 2_000_040 * 4
    # Link time with M servers: 2 * 4e6 / M * 4 workers * 8 / 1e9 = 0.256 / M s, under
    # 100 ms from M = 3 (85 ms; the bias makes the busiest 1,333,374 bytes).
    assert row["recommended_ps"] == 3


def test_command_line_refuses_malformed_shapes_with_exit_2():
    proc = _plan("--shapes", "784x256,x10", "--workers", "4", "--bandwidth-gbit", "10")
    assert proc.returncode == 2
    assert "shapes='784x256,x10'" in proc.stderr and "item 'x10'" in proc.stderr


def test_saved_keras_models_variable_shapes_are_read_from_the_file(tmp_path):
    import distflow as df
    from distflow.keras import layers

    model = df.keras.Sequential([layers.Input(shape=(784,)), layers.Dense(256),
                                 layers.Dropout(0.2), layers.Dense(128), layers.Dense(10)])
    model.compile(optimizer="adam", loss="mse")
    model.save(tmp_path / "mlp.keras")
    model.save_weights(tmp_path / "mlp.weights.h5")
    for path in (tmp_path / "mlp.keras", tmp_path / "mlp.weights.h5"):
        shapes = plan.saved_shapes(str(path))
        assert sorted(shapes.values()) == sorted(plan.MLP_SHAPES.values())
        assert plan.shard_bytes(4, shapes) == plan.shard_bytes(4, plan.MLP_SHAPES)
        row = json.loads(_plan("--model", str(path), "--workers", "8", "--bandwidth-gbit",
                               "10").stdout.splitlines()[-1])
        assert row["recommended_ps"] == 2 and row["bytes_per_server_step"] == 2 * KERNEL * 8


def test_command_line_refuses_a_model_that_is_neither_preset_nor_file(tmp_path):
    proc = _plan("--model", "resnet", "--workers", "4", "--bandwidth-gbit", "10")
    assert proc.returncode == 2 and "filepath='resnet'" in proc.stderr
    assert "--model 25m|cnn|mlp" in proc.stderr
    (tmp_path / "junk.keras").write_bytes(b"not a model")
    proc = _plan("--model", str(tmp_path / "junk.keras"), "--workers", "4",
                 "--bandwidth-gbit", "10")
    assert proc.returncode == 2 and "junk.keras" in proc.stderr
