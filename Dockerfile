# syntax=docker/dockerfile:1.7
# dataferry as a container. On a Linux host, run it as yourself, so that what it writes
# into the mounted folder (rejects, reports) is yours and the folder is writable to it:
#   docker run --rm -u "$(id -u):$(id -g)" -v "$PWD:/work" dataferry run -c dataferry.yaml
# Multi-stage: the wheel is built in the first stage; the image carries only it and its
# pinned dependencies.

# The base by digest: the same bytes every build. The digest is python:3.12-slim-bookworm
# as public Dockerfiles pin it (no registry was reachable where this was written, so it
# was not pulled there); Dependabot (.github/dependabot.yml) proposes each new one.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm@sha256:782412e85d0f0984994c290652577d4018aff08145c85b262bb63dc0c7522254

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN pip install --no-cache-dir build==1.6.1
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN python -m build --wheel --outdir /dist

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A user of its own: nothing here needs root. The image has no embedded stack (that is the
# `embedded` extra): it talks to the servers its spec and environment name.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin dataferry
# The dependencies first, as a layer of their own: every version pinned and every file's
# hash checked (requirements/production.txt, the snowflake extra included); a change to
# dataferry's own code leaves this layer as it was.
COPY requirements/production.txt /tmp/production.txt
RUN pip install --no-cache-dir --require-hashes -r /tmp/production.txt && rm /tmp/production.txt
# Then dataferry itself, with nothing more (its dependencies are all above).
COPY --from=build /dist/ /tmp/dist/
# hadolint ignore=DL3013
RUN whl="$(ls /tmp/dist/*.whl)" && pip install --no-cache-dir --no-deps "${whl}" && rm -rf /tmp/dist
# RDS's CA bundle, fetched at build: IAM logins (stores.postgres.iam_auth) verify the
# server with it. Named for those logins only, not as PGSSLROOTCERT, which would make libpq
# check every other server against it too.
ADD --chmod=644 https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /etc/ssl/certs/rds-global-bundle.pem
ENV DATAFERRY_RDS_CA_BUNDLE=/etc/ssl/certs/rds-global-bundle.pem
USER 10001
WORKDIR /work
ENTRYPOINT ["dataferry"]
CMD ["--help"]

# The pipeline image the ECS task runs (deploy/aws, deploy/run-pipeline-task.sh): dataferry
# and the project, its specs, models and data files, read-only. What a run writes goes to
# /scratch, the task's own storage (see deploy/aws/pipeline_task.tf).
FROM runtime AS pipeline
COPY --chown=root:root examples/retail /work
CMD ["run", "-c", "production.yaml"]

# The default target: dataferry alone, for `docker run -v "$PWD:/work" ...`.
FROM runtime
