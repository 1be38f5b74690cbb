# syntax=docker/dockerfile:1.7
#
# The one image of the suite: the `aftersales` binary. Each Kubernetes Deployment runs one
# service of it (`aftersales serve tickets`, …), each migration Job `aftersales migrate …`.
#
#   DOCKER_BUILDKIT=1 docker build -t aftersales:dev .
#
# BuildKit cache mounts keep the cargo registry and target/ between builds, so a rebuild
# after a source change recompiles only the crates that changed. No system protoc is
# needed (the protos crate compiles with protox), and TLS is rustls (no OpenSSL).

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,id=aftersales-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=aftersales-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=aftersales-target,target=/src/target,sharing=locked \
    cargo build --release --locked --bin aftersales \
 && install -D -m 0755 target/release/aftersales /out/aftersales

# glibc, libgcc and CA certificates, nothing else: no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/aftersales /usr/local/bin/aftersales
# The same numeric user and group the manifests set (runAsUser/runAsGroup 10001), so the
# image is non-root on its own and on Kubernetes alike.
USER 10001:10001
# gRPC: tickets 50051, returns 50052, dispatch 50053, care 50054, gateway 50055; gateway
# HTTP 8080; Prometheus metrics 9090 on every service.
EXPOSE 50051 50052 50053 50054 50055 8080 9090
# Kubernetes probes the gRPC health service natively; the image has no shell or curl for
# a Docker HEALTHCHECK (and Kubernetes ignores it).
ENTRYPOINT ["/usr/local/bin/aftersales"]
CMD ["--help"]
