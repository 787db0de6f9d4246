# Maestro Conductor as a container: a multi-stage build of the one binary, run as a non-root
# user with its data on a volume. Nothing is fetched at run time.
#
#   docker build -t maestro .
#   docker run -p 7070:7070 -v maestro-data:/var/lib/maestro maestro serve --demo

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY fixtures ./fixtures
COPY benches ./benches
RUN cargo build --release --locked --bin maestro

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/maestro --create-home maestro
COPY --from=build /src/target/release/maestro /usr/local/bin/maestro
USER maestro
WORKDIR /var/lib/maestro
ENV MAESTRO_DATA_DIR=/var/lib/maestro \
    MAESTRO_LISTEN=0.0.0.0:7070 \
    MAESTRO_LOG__FORMAT=json
VOLUME ["/var/lib/maestro"]
EXPOSE 7070
ENTRYPOINT ["/usr/local/bin/maestro"]
CMD ["serve"]
