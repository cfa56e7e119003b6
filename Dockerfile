# syntax=docker/dockerfile:1
# The job's image: `clickstream` (Python 3.11, Bytewax) with its native core (Rust, PyO3).
#
#   docker build -t bank-clickstream:0.1.0 .
#
# The builder compiles the two wheels (the project, the native core) and fetches every
# dependency as a wheel; the final image installs those wheels offline and has no compiler,
# no Rust, no source tree. The Helm chart (helm/bank-clickstream) runs it.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    RUSTUP_HOME=/opt/rustup \
    CARGO_HOME=/opt/cargo \
    PATH=/opt/cargo/bin:$PATH
# A C linker for the extension and curl for rustup; rustup installs the toolchain that
# native/rust-toolchain.toml pins (Debian's own Rust is older than the crate's rust-version).
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
       | sh -s -- -y --no-modify-path --profile minimal --default-toolchain none
WORKDIR /src
# The native core first: its layer (the slow Rust build, in native/target) is reused while
# only the Python changes, and the second build of ./native below finds it up to date.
COPY native/ native/
RUN pip wheel --no-deps --wheel-dir /wheels ./native
COPY pyproject.toml README.md ./
COPY flows/ flows/
COPY operators/ operators/
COPY state/ state/
COPY sinks/ sinks/
COPY sources/ sources/
COPY offers/ offers/
COPY grafana/ grafana/
# The project's wheel and every dependency as a wheel (bank-clickstream-native resolves to
# the local ./native project, exactly as `make install` does).
RUN pip wheel --wheel-dir /wheels . ./native

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# Only the wheels, offline (bind-mounted from the builder, so they take no layer); the SQL of
# `clickstream trino` is package data of the wheel (flows/sql/).
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels bank-clickstream \
    && groupadd --gid 10001 clickstream \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin clickstream
# Marketing's shipped campaigns; offers stay off until CLICKSTREAM_CAMPAIGNS_DIR points at a
# folder (the chart mounts a ConfigMap, or points at this one).
COPY campaigns/ /app/campaigns/
WORKDIR /app
USER 10001:10001
# Health (/live, /ready) and the Bytewax API with /metrics, at the job's default ports (the
# process-to-process port of a cluster is the chart's choice).
EXPOSE 3130 3030
ENTRYPOINT ["clickstream"]
CMD ["run"]
