# The image the Kubernetes and TFJob manifests in launch/ run (distflow:latest):
#
#   docker build -t distflow:latest .      # then push it where your cluster pulls from
#
# A slim Python base, distflow installed from this source tree as README.md says
# (`pip install .`; the distribution is distflow-ps, the import name distflow), the
# examples beside it in /app, and a non-root user (uid 1000) that runs everything.
# BASE: any image with `python` and `pip` on PATH (launch/README.md builds one where
# Docker Hub is out of reach, and checks the image with two containers).
ARG BASE=python:3.12-slim
FROM ${BASE}

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY distflow ./distflow
COPY examples ./examples
RUN pip install . \
    && useradd --uid 1000 --user-group --create-home --home-dir /home/distflow distflow \
    && chown -R distflow:distflow /app

USER 1000
CMD ["python", "-m", "distflow.launch", "--help"]
