# streamer worker/simulator image. Build from the repo root: docker build -t streamer .
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streamer ./streamer
COPY models ./models
RUN pip install .
ENV STREAMER_WEB_HOST=0.0.0.0 STREAMER_STATE_DIR=/data
VOLUME ["/data"]
EXPOSE 6066
ENTRYPOINT ["streamer"]
CMD ["worker", "-l", "info"]
