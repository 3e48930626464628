# One image for the three services; the command picks the service.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 dohawatch
WORKDIR /app
COPY pyproject.toml README.md ./
COPY services ./services
COPY shared ./shared
RUN pip install --no-cache-dir . && mkdir -p /var/lib/dohawatch && chown dohawatch /var/lib/dohawatch
USER dohawatch
ENV DOHAWATCH_STATE_DIR=/var/lib/dohawatch \
    DOHAWATCH_HTTP_HOST=0.0.0.0 \
    DOHAWATCH_LOG_FORMAT=json
ENTRYPOINT ["dohawatch"]
