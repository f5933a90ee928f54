# Dataflow Flex Template launcher: builds the job graph with Thresher and submits it.
# Build from the repository root:
#   docker build -f docker/Dockerfile.flex -t REGION-docker.pkg.dev/PROJECT/thresher/flex .
#   gcloud dataflow flex-template build gs://BUCKET/thresher.json \
#       --image REGION-docker.pkg.dev/PROJECT/thresher/flex --sdk-language PYTHON \
#       --metadata-file docker/flex_metadata.json
FROM gcr.io/dataflow-templates-base/python311-template-launcher-base

ARG WORKDIR=/template
WORKDIR ${WORKDIR}
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY transforms ./transforms
COPY trainer ./trainer
COPY docker/flex_main.py ./flex_main.py
RUN pip install --no-cache-dir ".[gcp]"

ENV FLEX_TEMPLATE_PYTHON_PY_FILE=${WORKDIR}/flex_main.py
# Workers run the SDK image of Dockerfile.worker (pass --sdk_container_image when launching), so the
# launcher does not stage the package again.
ENV PIP_NO_DEPS=True
