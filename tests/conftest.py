"""Test-wide settings: child processes run single-threaded BLAS so that
multi-process tests do not oversubscribe the two cores. Shared fixtures."""

import os

import pytest

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("DISTFLOW_OFFLINE", "1")  # tests never download


@pytest.fixture
def servers():
    """Factory of in-process parameter servers (`test_ps_server.make_server`: async by
    default), all stopped at teardown."""
    from test_ps_server import make_server

    started = []

    def factory(**overrides):
        server = make_server(**overrides)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(params=["kept_patches", "one_slice", "many_slices"])
def slicing(request, monkeypatch):
    """Convolutions with small patch matrices kept for the kernel gradient (the default
    for test sizes), recomputed for the whole batch at once, or one image per slice."""
    from distflow import conv_pool, nn

    if request.param != "kept_patches":
        monkeypatch.setattr(nn, "_KEEP_BYTES", 0)
    if request.param == "many_slices":
        monkeypatch.setattr(nn, "_SLICE_BYTES", 1)
        monkeypatch.setattr(conv_pool, "SLICE_BYTES", 1)
    return request.param


@pytest.fixture
def intra_op_regions(monkeypatch):
    """Records (pieces, thread count) of every intra-op region, with BLAS's own threads
    taken as asleep (`intra_op.blas_spinning`: no earlier product decides how an op
    splits); restores the BLAS thread count afterwards."""
    from distflow import intra_op

    before, regions, real = intra_op.blas_threads(), [], intra_op.parallel_for

    def recording(count, body):
        regions.append((count, intra_op.threads()))
        real(count, body)
    monkeypatch.setattr(intra_op, "parallel_for", recording)
    monkeypatch.setattr(intra_op, "blas_spinning", lambda: False)
    yield regions
    if before is not None:
        intra_op.set_blas_threads(before)
