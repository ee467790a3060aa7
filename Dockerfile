# syntax=docker/dockerfile:1
# connctl in a small container: a static (musl) binary on Alpine, run as a non-root user.
#
#   docker build --build-arg CONNCTL_GIT_COMMIT="$(git rev-parse --short=12 HEAD)" -t connctl .
#   docker run --rm -v "$PWD:/work" -e IMMUTA_URL -e IMMUTA_API_KEY connctl plan connections/
#
# The final image keeps a shell, curl and jq (for CI jobs that run scripts in it: the GitLab
# recipe in docs/ci posts its merge-request note with them) and the CA certificates connctl
# needs to reach Immuta, Snowflake and Databricks over TLS.

ARG RUST_VERSION=1.89
ARG ALPINE_VERSION=3.22

FROM rust:${RUST_VERSION}-alpine${ALPINE_VERSION} AS build
# A C toolchain, cmake and perl build aws-lc (rustls' crypto) for musl.
RUN apk add --no-cache build-base cmake perl
WORKDIR /src
COPY . .
# .git is not sent to the build (.dockerignore): pass the commit for `connctl --version`.
ARG CONNCTL_GIT_COMMIT=unknown
ENV CONNCTL_GIT_COMMIT=${CONNCTL_GIT_COMMIT}
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p connctl \
    && install -m 0755 target/release/connctl /usr/local/bin/connctl \
    && /usr/local/bin/connctl --version

FROM alpine:${ALPINE_VERSION} AS runtime
RUN apk add --no-cache ca-certificates curl jq \
    && addgroup -S -g 10001 connctl \
    && adduser -S -D -H -u 10001 -G connctl connctl
COPY --from=build /usr/local/bin/connctl /usr/local/bin/connctl
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/connctl"]
CMD ["--help"]
