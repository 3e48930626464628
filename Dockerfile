# One image for the three services; the command picks the service.
# The build stage has a C compiler so that setup.py compiles the classifier's
# engine with mypyc (DOHAWATCH_COMPILE=1); the image itself gets only the wheels.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY services ./services
COPY shared ./shared
RUN DOHAWATCH_COMPILE=1 pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 dohawatch
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels \
    && mkdir -p /var/lib/dohawatch && chown dohawatch /var/lib/dohawatch
USER dohawatch
ENV DOHAWATCH_STATE_DIR=/var/lib/dohawatch \
    DOHAWATCH_HTTP_HOST=0.0.0.0 \
    DOHAWATCH_LOG_FORMAT=json
ENTRYPOINT ["dohawatch"]
