# Maestro Conductor as a container image: a multi-stage build of the one binary `maestro`,
# run as a non-root user (uid/gid 10001) with its data on a volume at /var/lib/maestro.
# Nothing is fetched at run time: policies, console assets, golden workflows and the shipped
# signed packages are compiled into the binary.
#
#   docker build -t maestro .
#   docker run -p 7070:7070 -v maestro-data:/var/lib/maestro maestro serve --demo
#
# Build arguments: RUST_IMAGE and RUNTIME_IMAGE (base images), VERSION, REVISION and CREATED
# (OCI labels, e.g. --build-arg REVISION=$(git rev-parse HEAD)).

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# The manifest and lock file: `--locked` builds exactly the locked dependency versions.
COPY Cargo.toml Cargo.lock ./
# The crate's sources.
COPY src ./src
# Every [[bench]] target Cargo.toml declares must exist for cargo to read the manifest.
COPY benches ./benches
# Compiled into the binary (rust-embed folders and include_str!):
#   fixtures/golden/         embedded workflow sources    (src/app/workflows.rs)
#   packages/                shipped signed releases      (src/app/golden.rs)
#   policy/rego/             the embedded Rego policies   (src/policy/bundle.rs)
#   assets/console/          console CSS and images       (src/http/console/assets.rs)
#   docs/release/ISOLATION_REPORT.md  report template     (src/domain/report.rs)
# and, for the unit tests of the same sources, fixtures/intoto/, docs/provenance/ and
# config.example.toml.
COPY fixtures ./fixtures
COPY packages ./packages
COPY policy ./policy
COPY assets ./assets
COPY docs ./docs
COPY config.example.toml ./config.example.toml
# The isal feature (ISA-L's deflate for disclosure packs and backups) builds ISA-L from source.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nasm autoconf automake libtool make \
 && rm -rf /var/lib/apt/lists/*
RUN cargo build --release --locked --features isal --bin maestro

FROM ${RUNTIME_IMAGE}
ARG RUNTIME_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="maestro" \
      org.opencontainers.image.description="Maestro Conductor: a self-contained appliance that runs multi-tenant workflows and proves what it did" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${RUNTIME_IMAGE}"
# ca-certificates: TLS to an OpenID provider, allow-listed builtin/http hosts.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 maestro \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/maestro --create-home \
      --shell /usr/sbin/nologin maestro
COPY --from=build /src/target/release/maestro /usr/local/bin/maestro
# Numeric, so that orchestrators enforcing runAsNonRoot can check it.
USER 10001:10001
WORKDIR /var/lib/maestro
ENV MAESTRO_DATA_DIR=/var/lib/maestro \
    MAESTRO_LISTEN=0.0.0.0:7070 \
    MAESTRO_LOG__FORMAT=json
VOLUME ["/var/lib/maestro"]
EXPOSE 7070
# Healthy when /readyz answers 200 (the image has no curl; `maestro healthcheck` asks the
# local appliance at MAESTRO_LISTEN). Readiness stays false while post-release validation
# of a new version runs or after it failed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/maestro", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/maestro"]
CMD ["serve"]
