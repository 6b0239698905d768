"""benchmarks/scale_sim.py: the discrete-event simulator against hand-worked cases."""

import importlib.util
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from distflow import plan

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "scale_sim.py"
_SPEC = importlib.util.spec_from_file_location("scale_sim", _PATH)
sim = importlib.util.module_from_spec(_SPEC)
sys.modules.setdefault("scale_sim", sim)
_SPEC.loader.exec_module(sim)

CAL = plan.Calibration(s_per_message=100e-6, s_per_byte=1e-9)


def test_parameter_counts_of_the_three_models():
    counts = {name: sum(math.prod(s) for s in shapes.values())
              for name, (shapes, _) in sim.MODELS.items()}
    assert sim.MLP_PARAMS == counts["MLP"] == 235_146
    assert counts["CNN"] == 421_642  # what Keras's count_params gives for the example CNN
    assert counts["25M"] == 25_000_000


def test_tables_give_the_servers_distflows_placement():
    # The MLP's 784 x 256 kernel (803 KB) stays whole on one server, so 8 servers
    # help 8 sync workers hardly more than 2; with equal shares they would hold a
    # quarter as much each and the server time would fall about 4-fold.
    rows = sim.tables([8], [2, 8], [100.0], models=["MLP"])
    rate = {r["servers"]: r["samples_per_s"] for r in rows if r["mode"] == "sync"}
    assert rate[8] < 1.05 * rate[2]
    shapes, step_s = sim.MODELS["MLP"]
    equal = sim.simulate(sim.Config(sim.MLP_PARAMS, 8, 8, 100.0, step_s, steps=20))
    assert equal["samples_per_s"] > 1.5 * rate[8]  # what the tables gave before


def test_one_worker_one_server_is_compute_plus_one_round_trip():
    # 1M params = 4 MB a shard; 10 Gbit/s: 3.2 ms each way; server 0.1 + 8 ms.
    cfg = sim.Config(1_000_000, 1, 1, 10.0, 0.05, "sync", latency_s=1e-3, steps=5, cal=CAL)
    step = 0.05 + (3.2e-3 + 1e-3) + (100e-6 + 8e-3) + (3.2e-3 + 1e-3)
    assert sim.simulate(cfg)["samples_per_s"] == pytest.approx(sim.BATCH / step)


def test_sync_barrier_waits_for_every_push_at_the_server():
    # Two workers, one server, no link time to speak of: the server processes
    # both pushes in turn before answering, so a step is T + 2 * server time.
    cfg = sim.Config(1_000_000, 2, 1, 1e6, 0.05, "sync", latency_s=0.0, steps=4, cal=CAL)
    step = 0.05 + 2 * (100e-6 + 8e-3)
    assert sim.simulate(cfg)["samples_per_s"] == pytest.approx(2 * sim.BATCH / step, rel=1e-3)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_throughput_rises_with_bandwidth_and_servers(mode):
    def rate(bw, m):
        return sim.simulate(sim.Config(25_000_000, 16, m, bw, 0.3, mode, steps=4))[
            "samples_per_s"]
    by_bw = [rate(bw, 4) for bw in (1, 10, 100)]
    assert by_bw[0] < by_bw[1] < by_bw[2]
    by_m = [rate(10, m) for m in (1, 2, 4, 8)]
    assert by_m == sorted(by_m) and by_m[0] < by_m[-1]


def test_one_host_of_two_cores_shares_them_among_the_workers():
    # Four workers of 10 ms compute on two cores, a negligible model: two at a time.
    cfg = sim.Config(10, 4, 1, 100.0, 0.01, "async", cores=2, steps=20,
                     cal=plan.Calibration(0.0, 0.0))
    assert sim.simulate(cfg)["samples_per_s"] == pytest.approx(2 * sim.BATCH / 0.01, rel=1e-6)


def test_cores_that_slow_each_other_down_give_less_than_their_number():
    # At shared speed 0.5 two busy cores do the work of one (after the first step).
    cfg = sim.Config(10, 2, 1, 100.0, 0.01, "async", cores=2, shared_speed=0.5, steps=50,
                     cal=plan.Calibration(0.0, 0.0))
    assert sim.simulate(cfg)["samples_per_s"] == pytest.approx(sim.BATCH / 0.01, rel=0.02)


FREE = plan.Calibration(0.0, 0.0)
SHARD_S = 1_000_000 * 4 * 8 / 1e9  # one 4 MB shard over 1 Gbit/s: 32 ms


def test_fair_links_share_the_servers_link_and_fifo_links_pipeline_steps():
    # Two workers push to one server at once: shared fairly, both pushes take 2d,
    # and both replies 2d, every step alike. One after the other (FIFO), the first
    # reply comes back early and its worker's next push overlaps the second reply.
    def rate(fair):
        return sim.simulate(sim.Config(1_000_000, 2, 1, 1.0, 0.01, "sync", latency_s=0.0,
                                       steps=6, cal=FREE, fair_links=fair))["samples_per_s"]
    assert rate(True) == pytest.approx(2 * sim.BATCH / (0.01 + 4 * SHARD_S))
    assert rate(False) > 1.1 * rate(True)


def test_a_server_sharing_a_workers_node_spares_that_workers_link():
    # Server on worker 0's node: only worker 1's push and pull cross a link.
    cfg = sim.Config(1_000_000, 2, 1, 1.0, 0.01, "sync", latency_s=0.0, steps=5, cal=FREE,
                     server_nodes=(0,), fair_links=True)
    assert sim.simulate(cfg)["samples_per_s"] == pytest.approx(
        2 * sim.BATCH / (0.01 + 2 * SHARD_S))


def test_shaped_links_on_one_host_add_link_time_to_the_shared_cores():
    cfg = sim.Config(1_000_000, 1, 1, 1.0, 0.01, "sync", latency_s=0.0, steps=5, cal=FREE,
                     cores=2, shaped=True, payload_fraction=0.5)
    assert sim.simulate(cfg)["samples_per_s"] == pytest.approx(
        sim.BATCH / (0.01 + 2 * 2 * SHARD_S))


@pytest.mark.parametrize(("sliced", "step"), [(True, 1.5 * 0.01), (False, 2 * 0.01)])
def test_three_workers_on_two_cores_time_sliced_or_first_come_first_served(sliced, step):
    # Sliced: all three progress at 2/3 speed and reach the barrier at 1.5 T;
    # first come, first served: the third starts when a core frees, at T.
    cfg = sim.Config(10, 3, 1, 100.0, 0.01, "sync", latency_s=0.0, steps=10, cal=FREE,
                     cores=2, sliced=sliced)
    assert sim.simulate(cfg)["samples_per_s"] == pytest.approx(3 * sim.BATCH / step, rel=1e-6)


def test_uneven_shards_put_the_larger_servers_link_on_the_critical_path():
    # Server i on worker i's node, 3 MB on server 0, 1 MB on server 1, 1 Gbit/s (8 ms
    # a MB), one step from T = 10 ms. Worker 1's 3 MB push (node 1 -> 0) runs alone
    # for 8 ms, then shares that direction with server 1's 1 MB reply to worker 0
    # for 16 ms, then alone 8 ms more: server 0's barrier at 42 ms; its 3 MB reply
    # to worker 1 takes 24 ms: 66 ms. Queued instead of shared: 10 + 24 + 24 ms.
    def step(fair):
        cfg = sim.Config(1_000_000, 2, 2, 1.0, 0.01, "sync", latency_s=0.0, steps=1,
                         cal=FREE, server_nodes=(0, 1), shard_bytes=(3_000_000, 1_000_000),
                         fair_links=fair)
        return 2 * sim.BATCH / sim.simulate(cfg)["samples_per_s"]
    assert step(True) == pytest.approx(0.066)
    assert step(False) == pytest.approx(0.058)


def test_the_mlps_placement_keeps_its_largest_kernel_whole():
    shards = sim.placed_shards(2)
    assert sum(shards) == sim.MLP_PARAMS * 4
    assert max(shards) == 784 * 256 * 4  # below the 1 MiB at which variables are cut
    assert sim.placed_shards(1) == (sim.MLP_PARAMS * 4,)


def test_links_are_shared_fairly_by_default_and_queued_on_request():
    # The hand-worked case above, without saying which links: fair sharing.
    cfg = sim.Config(1_000_000, 2, 1, 1.0, 0.01, "sync", latency_s=0.0, steps=6, cal=FREE)
    assert sim.simulate(cfg)["samples_per_s"] == pytest.approx(
        2 * sim.BATCH / (0.01 + 4 * SHARD_S))
    fifo = sim.simulate(replace(cfg, fair_links=False))["samples_per_s"]
    assert fifo > 1.1 * sim.simulate(cfg)["samples_per_s"]


def _table(*flags):
    rows = sim.main(["--models", "MLP", "--workers", "8", "--servers", "1",
                     "--bandwidth-gbit", "1", *flags])
    return {r["mode"]: r["samples_per_s"] for r in rows}


def test_prediction_tables_use_fair_links_unless_fifo_is_asked_for(capsys):
    shapes, step_s = sim.MODELS["MLP"]
    fair = sim.simulate(sim.Config(sim.MLP_PARAMS, 8, 1, 1.0, step_s, "sync",
                                   shard_bytes=plan.shard_bytes(1, shapes)))["samples_per_s"]
    assert _table()["sync"] == fair == _table("--fair-links")["sync"]
    # Eight 940 KB pushes and replies on one 1 Gbit/s server link: queued, the first
    # replies return early and their workers' next pushes overlap the rest.
    assert _table("--fifo-links")["sync"] > 1.3 * fair
    assert "samples_per_s" in capsys.readouterr().out


def test_plan_link_time_is_the_fair_simulation_of_a_link_bound_step():
    # No server cost: a sync step is T + 2 * W * S * 8 / bandwidth + 2 latencies in
    # both; distflow.plan sums the transfers as fair sharing does.
    shapes = {"w": (250_000,)}  # 1 MB, one server
    pred = plan.predict(250_000, 4, 1.0, servers=1, step_s=0.01, latency_s=1e-4,
                        calibration=FREE, shapes=shapes)
    cfg = sim.Config(250_000, 4, 1, 1.0, 0.01, "sync", latency_s=1e-4, steps=5, cal=FREE)
    assert sim.simulate(cfg)["samples_per_s"] == pytest.approx(
        pred.samples_per_s * sim.BATCH / plan.DEFAULT_BATCH)


def test_contention_curve_reads_between_and_past_its_points():
    points = ((1, 1.0), (2, 1.8), (4, 1.6), (8, 1.2))
    assert [sim.curve(points, n) for n in (1, 2, 3, 4, 6, 8, 10)] == pytest.approx(
        [1.0, 1.8, 1.7, 1.6, 1.4, 1.2, 1.2])


def test_a_measured_curve_sets_what_n_runnable_processes_do_together():
    # Four async workers of 10 ms on 2 cores that together do 1.2 cores' work with
    # four runnable: each runs at 0.3, a step every 10 / 0.3 ms.
    curve = ((1, 1.0), (2, 1.9), (4, 1.2))
    cfg = sim.Config(10, 4, 1, 100.0, 0.01, "async", cores=2, steps=20, cal=FREE,
                     contention=curve)
    assert sim.simulate(cfg)["samples_per_s"] == pytest.approx(
        4 * sim.BATCH / (0.01 / 0.3), rel=1e-6)


def test_a_two_point_curve_is_the_time_sliced_shared_speed_model():
    def rate(**model):
        return sim.simulate(sim.Config(sim.MLP_PARAMS, 4, 2, 100.0, 0.003, "sync", cores=2,
                                       steps=10, shard_bytes=sim.placed_shards(2),
                                       **model))["samples_per_s"]
    assert rate(contention=((1, 1.0), (2, 1.38))) == pytest.approx(
        rate(sliced=True, shared_speed=0.69))


def test_contention_file_gives_the_median_quiet_speed_of_each_process_count(tmp_path):
    lines = [{"work": "train", "procs": 1, "speed": 1.0},
             *({"work": "train", "procs": 4, "speed": s} for s in (1.5, 1.9, 1.7)),
             {"work": "train", "procs": 4, "speed": 0.5, "other_cores": 0.9},  # shared
             {"work": "train", "procs": 4, "speed": 0.6, "other_cores": 0.7},
             {"work": "busy", "procs": 4, "speed": 2.0}]
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    assert sim.load_contention(path) == ((1, 1.0), (4, 1.7))
    path.write_text(json.dumps(lines[1]) + "\n")
    with pytest.raises(ValueError, match=r"procs=\[4\]"):
        sim.load_contention(path)


def test_a_woken_server_and_worker_each_wait_the_measured_wake_up():
    # One worker, one server, no server cost: a step is T, the server's wake-up on
    # the push and the worker's on the reply (1 ms each with one or two runnable),
    # except that the run ends at the last reply: 10 steps in 10 * 11 + 9 ms.
    cfg = sim.Config(10, 1, 1, 100.0, 0.01, "sync", cores=2, steps=10, cal=FREE,
                     contention=((1, 1.0), (2, 2.0)), wakeup=((1, 0.001), (2, 0.001)))
    assert sim.simulate(cfg)["samples_per_s"] == pytest.approx(10 * sim.BATCH / 0.119,
                                                               rel=1e-6)
    assert sim.simulate(replace(cfg, wakeup=None))["samples_per_s"] == pytest.approx(
        sim.BATCH / 0.01, rel=1e-6)


def test_wakeup_file_gives_half_the_mean_round_trip_beyond_the_idle_one(tmp_path):
    lines = [{"work": "wakeup", "procs": 1, "rtt_us": 100.0},
             {"work": "wakeup", "procs": 8, "rtt_us": 700.0},
             {"work": "wakeup", "procs": 2, "rtt_us": 60.0}]
    path = tmp_path / "w.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    points = sim.load_wakeup(path)
    assert [n for n, _ in points] == [1, 2, 8]
    assert [s for _, s in points] == pytest.approx([0.0, 0.0, 300e-6])


def _costs(worker_s, server_s, worker_io_s=0.0, server_io_s=0.0):
    return sim.PushCosts(worker_s, worker_io_s, (server_s,), (server_io_s,))


def test_measured_costs_replace_the_compute_time_and_the_servers_calibration():
    """One worker, one server on 2 cores, costs measured per push: worker 3 ms, server
    1 ms. The step is 3 + 1 = 4 ms whatever step_s and the calibration say: 128 / 4 ms
    = 32,000 samples/s. With I/O threads (worker 1 ms a step, server 2 ms a push) each
    message crosses half of both: (1 + 2) / 2 ms on the way in and out, a step of
    3 + 1.5 + 1 + 1.5 = 7 ms, 128 / 7 ms."""
    cfg = sim.Config(10, 1, 1, 100.0, 0.5, "async", cores=2, steps=10, cal=CAL,
                     costs=_costs(0.003, 0.001))
    assert sim.simulate(cfg)["samples_per_s"] == pytest.approx(32_000, rel=1e-9)
    io = replace(cfg, costs=_costs(0.003, 0.001, worker_io_s=0.001, server_io_s=0.002))
    assert sim.simulate(io)["samples_per_s"] == pytest.approx(128 / 0.007, rel=1e-9)


def test_a_workers_io_is_split_over_the_servers_by_their_bytes_one_message_at_a_time():
    """One worker (3 ms, I/O 2 ms a step) and two servers of 3 and 1 bytes (1 ms a push
    each, no I/O) on 2 cores. The worker's I/O thread spends 2 * 3/4 / 2 = 0.75 ms on
    each message to or from server 0 and 0.25 ms on server 1's, one message at a time:
    pushes leave at 3.75 and 4 ms, are answered at 4.75 and 5 ms, and the replies
    are taken 4.75-5.5 and 5.5-5.75 ms; never more than two jobs at once, so all at
    full speed: a step of 5.75 ms, 128 / 5.75 ms."""
    cfg = sim.Config(10, 1, 2, 100.0, 0.5, "async", cores=2, steps=10, cal=CAL,
                     shard_bytes=(3, 1), costs=sim.PushCosts(0.003, 0.002, (0.001, 0.001),
                                                             (0.0, 0.0)))
    assert sim.simulate(cfg)["samples_per_s"] == pytest.approx(128 / 0.00575, rel=1e-9)


def test_a_servers_io_thread_sends_the_sync_replies_one_after_the_other():
    """Two sync workers (2 ms), one server (main 1 ms, I/O 2 ms a push: 1 ms for each
    message) on 2 cores. Both push at 2 ms; the server's I/O thread takes them 2-3
    and 3-4 ms (the first push's processing, 3-4 ms, beside it), the second is
    processed 4-5 ms, and the two replies leave 5-6 and 6-7 ms. Worker A computes
    again 6-8 ms, B 7-9 ms, so from then on A's push is taken while B computes:
    pushes 8-9 and 9-10, processing 9-10 and 10-11, replies 11-12 and 12-13, a step
    of 6 ms. Ten steps end at 7 + 9 * 6 = 61 ms: 2 * 10 * 128 / 0.061 samples/s."""
    cfg = sim.Config(10, 2, 1, 100.0, 0.5, "sync", cores=2, steps=10, cal=CAL,
                     costs=_costs(0.002, 0.001, server_io_s=0.002))
    assert sim.simulate(cfg)["samples_per_s"] == pytest.approx(2 * 10 * 128 / 0.061,
                                                               rel=1e-9)


def test_two_async_workers_fill_two_cores_with_measured_costs():
    """Two async workers (3 ms a step) and one server (1 ms a push) on 2 cores. Both
    compute 0-3 ms and push; the server answers A at 4 ms (one core idle meanwhile)
    and B at 5 ms while A computes. From then on two processes are runnable at any
    time and each worker's cycle is 3 + 1 = 4 ms: A's 40th reply comes at 4 * 40 =
    160 ms, B's at 5 + 39 * 4 = 161 ms: 2 * 40 * 128 / 0.161 samples/s."""
    cfg = sim.Config(10, 2, 1, 100.0, 0.5, "async", cores=2, steps=40, cal=CAL,
                     costs=_costs(0.003, 0.001))
    assert sim.simulate(cfg)["samples_per_s"] == pytest.approx(2 * 40 * 128 / 0.161,
                                                               rel=1e-9)


def test_a_server_slower_than_its_workers_sets_the_async_rate():
    """Four async workers of 1 ms and a server of 4 ms a push on 2 cores: the four
    first steps share the two cores (half a core each), so the first pushes arrive
    at 2 ms; from then on the server is never idle and never shares a core (at most
    one worker computes at a time beside it): the 160th push is answered at
    2 + 160 * 4 ms, which ends the run: 160 * 128 / 0.642 samples/s."""
    cfg = sim.Config(10, 4, 1, 100.0, 0.5, "async", cores=2, steps=40, cal=CAL,
                     costs=_costs(0.001, 0.004))
    assert sim.simulate(cfg)["samples_per_s"] == pytest.approx(160 * 128 / 0.642,
                                                               rel=1e-9)


def test_costs_file_gives_each_configurations_median_quiet_costs(tmp_path):
    def line(mode, w, m, worker, main, servers, mains, other=0.0):
        return {"mode": mode, "workers": w, "servers": m, "worker_cpu_s": worker,
                "worker_main_cpu_s": main, "server_cpu_s": servers,
                "server_main_cpu_s": mains, "other_cores": other}
    lines = [line("none", 0, 0, 0.003, 0.003, [], []),
             line("async", 2, 2, 0.005, 0.004, [0.002, 0.001], [0.0015, 0.0008]),
             line("async", 2, 2, 0.007, 0.005, [0.004, 0.001], [0.0030, 0.0008]),
             line("async", 2, 2, 0.006, 0.0045, [0.003, 0.001], [0.0020, 0.0008]),
             line("async", 2, 2, 0.050, 0.050, [0.050, 0.050], [0.050, 0.050], 0.9),
             line("sync", 1, 1, 0.004, 0.003, [0.001], [0.0009])]
    path = tmp_path / "costs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    costs = sim.load_costs(path)
    assert sorted(costs) == [("async", 2, 2), ("sync", 1, 1)]
    two = costs["async", 2, 2]  # medians of the three quiet lines; I/O = all - main
    assert two.worker_s == pytest.approx(0.0045)
    assert two.worker_io_s == pytest.approx(0.006 - 0.0045)
    assert two.server_s == pytest.approx((0.002, 0.0008))
    assert two.server_io_s == pytest.approx((0.003 - 0.002, 0.001 - 0.0008))
    path.write_text(json.dumps(lines[4]) + "\n")
    with pytest.raises(ValueError, match="other cores"):
        sim.load_costs(path)


def test_validating_with_costs_needs_each_runs_configuration(tmp_path):
    runs = [{"workers": 0, "servers": 0, "mode": "none", "samples_per_s": 40_000.0},
            {"workers": 1, "servers": 1, "mode": "sync", "samples_per_s": 30_000.0},
            {"workers": 2, "servers": 1, "mode": "async", "samples_per_s": 30_000.0}]
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in runs) + "\n")
    costs = {("sync", 1, 1): _costs(0.003, 0.001)}
    with pytest.raises(ValueError, match="mode='async', workers=2, servers=1"):
        sim.validate(path, 2, costs=costs)
    costs["async", 2, 1] = _costs(0.003, 0.001)
    rows = sim.validate(path, 2, costs=costs)
    assert [r["predicted"] for r in rows][0] == pytest.approx(32_000)
    with pytest.raises(ValueError, match="contention"):
        sim.validate(path, 2, costs=costs, contention=((1, 1.0), (2, 2.0)))
    shaped = {**runs[2], "mbit": 100, "server_nodes": [0]}
    path.write_text("\n".join(json.dumps(r) for r in [*runs, shaped]) + "\n")
    with pytest.raises(ValueError, match="mbit=100"):
        sim.validate(path, 2, costs=costs)


def test_every_wake_up_of_a_blocked_thread_waits_the_wake_latency():
    """The 7 ms step of one worker and one server with I/O threads (above), each
    wake-up 0.1 ms late: the worker's I/O thread for the push, the server's for it,
    the server's main thread, the server's I/O thread for the reply, the worker's
    for it and the worker's main thread: 7.6 ms a step, but the first step starts
    at 0 without a wake-up: ten steps in 76 - 0.1 ms."""
    cfg = sim.Config(10, 1, 1, 100.0, 0.5, "async", cores=2, steps=10, cal=CAL,
                     costs=_costs(0.003, 0.001, worker_io_s=0.001, server_io_s=0.002))
    woken = replace(cfg, wake_s=1e-4)
    assert sim.simulate(woken)["samples_per_s"] == pytest.approx(10 * 128 / 0.0759,
                                                                 rel=1e-9)
    assert sim.simulate(cfg)["samples_per_s"] == pytest.approx(128 / 0.007, rel=1e-9)


def test_stolen_cores_slow_every_thread_on_the_shared_cores():
    """The two async workers that fill two cores (above) when the hypervisor steals
    half a core: each core gives the threads 3/4 of its time, so every CPU job and
    the whole run take 4/3 as long."""
    costs = replace(_costs(0.003, 0.001), steal_cores=0.5)
    cfg = sim.Config(10, 2, 1, 100.0, 0.5, "async", cores=2, steps=40, cal=CAL, costs=costs)
    assert sim.simulate(cfg)["samples_per_s"] == pytest.approx(
        2 * 40 * 128 / (0.161 * 4 / 3), rel=1e-9)


def test_costs_file_gives_the_median_steal_counting_old_lines_as_none(tmp_path):
    def line(steal=None):
        row = {"mode": "sync", "workers": 1, "servers": 1, "worker_cpu_s": 0.004,
               "worker_main_cpu_s": 0.003, "server_cpu_s": [0.001],
               "server_main_cpu_s": [0.0009]}
        return {**row, "steal_cores": steal} if steal is not None else row
    path = tmp_path / "costs.jsonl"
    path.write_text("\n".join(json.dumps(line(s)) for s in (0.1, 0.3, None)) + "\n")
    assert sim.load_costs(path)["sync", 1, 1].steal_cores == pytest.approx(0.1)


def test_wake_file_gives_the_median_wake_latency(tmp_path):
    path = tmp_path / "wake.jsonl"
    lines = [{"bench": "wakeup_latency", "wake_s": s} for s in (3e-5, 5e-5, 4e-5)]
    path.write_text("\n".join(json.dumps(r) for r in [*lines, {"bench": "x"}]) + "\n")
    assert sim.load_wake_s(path) == pytest.approx(4e-5)
    path.write_text(json.dumps({"bench": "x"}) + "\n")
    with pytest.raises(ValueError, match="wakeup_latency"):
        sim.load_wake_s(path)


def test_wake_file_of_push_costs_gives_the_one_worker_runs_run_delay_per_slice(tmp_path):
    # One worker: 0.2 ms waited in 4 slices a step, the server 0.4 ms in 6 a push:
    # 0.6 / 10 = 60 us a slice; another quiet line 80 us; a shared one-worker line
    # and a two-worker line are left out: the median of 60 and 80 us.
    def line(waits, slices, w=1, other=0.0):
        return {"mode": "async", "workers": w, "servers": 1, "other_cores": other,
                "worker_wait_s": waits[0], "server_wait_s": [waits[1]],
                "worker_slices": slices[0], "server_slices": [slices[1]]}
    lines = [line((2e-4, 4e-4), (4, 6)), line((3e-4, 5e-4), (4, 6)),
             line((9e-3, 9e-3), (1, 1), other=0.9), line((9e-3, 9e-3), (1, 1), w=2)]
    path = tmp_path / "costs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    assert sim.load_wake_s(path) == pytest.approx(70e-6)
    path.write_text("\n".join(json.dumps(r) for r in lines[2:]) + "\n")
    with pytest.raises(ValueError, match="one-worker"):
        sim.load_wake_s(path)
