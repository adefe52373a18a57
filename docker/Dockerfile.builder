# The build context of docker/Dockerfile, made inside a container: for
# hosts that can reach the Swift images and GitHub but would rather not
# install the build's packages. Needs BuildKit (for --output).
#
#   DOCKER_BUILDKIT=1 docker build -f docker/Dockerfile.builder \
#       --output type=local,dest=.build-docker/context .
#   docker build -f docker/Dockerfile --target zookeeper -t fulva/zookeeper .build-docker/context
#   docker build -f docker/Dockerfile --target node -t fulva/node .build-docker/context
#
# It runs the project's own build (scripts/install-packages,
# scripts/build-ramcloud, which clones RAMCloud at the pinned commit, and
# docker/build --context-only) on the Swift image of the same Debian 12.

ARG SWIFT_IMAGE=swift:6.3-bookworm

FROM ${SWIFT_IMAGE} AS build
WORKDIR /src
COPY . .
RUN scripts/install-packages \
    && FULVA_RAMCLOUD_JOBS="$(nproc)" docker/build --context-only --context /context

FROM scratch
COPY --from=build /context/ /
