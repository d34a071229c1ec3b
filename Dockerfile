# parkcarbon service image: `parkcarbon run` by default (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN useradd --system --uid 10001 --home-dir /app parkcarbon
# The CJK font of the monthly PDF reports (Typst bundles none): Noto Sans CJK SC.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

COPY pyproject.toml README.md ./
COPY parkcarbon ./parkcarbon
COPY schema ./schema
COPY ingest ./ingest
COPY carbon ./carbon
COPY alerts ./alerts
COPY grafana ./grafana
COPY reports ./reports
COPY security ./security
RUN pip install .
COPY config ./config
# reports are written here (PARKCARBON_REPORT_DIR); /app itself is not writable
RUN mkdir -p /var/lib/parkcarbon/reports && chown parkcarbon /var/lib/parkcarbon/reports
ENV PARKCARBON_REPORT_DIR=/var/lib/parkcarbon/reports

USER parkcarbon
EXPOSE 9108
ENTRYPOINT ["parkcarbon"]
CMD ["run"]
