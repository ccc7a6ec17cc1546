# streamer's image: the worker and the simulator (ONNX Runtime serves the model; no PyTorch).
#   docker build -t streamer .                                        # CPU
#   docker build -t streamer:gpu --build-arg ONNXRUNTIME_EXTRAS=cuda,cudnn .   # + CUDA libraries
# compose/docker-compose.yml builds both (the GPU one for the `gpu` profile).
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY streamer ./streamer
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim
# "cuda,cudnn": onnxruntime-gpu's extras that bring the CUDA and cuDNN libraries as wheels; the
# host's NVIDIA container toolkit brings the driver.
ARG ONNXRUNTIME_EXTRAS=""
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl \
    && if [ -n "$ONNXRUNTIME_EXTRAS" ]; then \
         version="$(pip show onnxruntime-gpu | sed -n 's/^Version: //p')" \
         && pip install "onnxruntime-gpu[${ONNXRUNTIME_EXTRAS}]==${version}" \
         && python -c "import glob, site; print('\n'.join(sorted(glob.glob(site.getsitepackages()[0] + '/nvidia/**/lib', recursive=True))))" \
            > /etc/ld.so.conf.d/nvidia-wheels.conf \
         && ldconfig; \
       fi \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /app streamer \
    && mkdir -p /data \
    && chown streamer /data
WORKDIR /app
COPY models ./models
USER streamer
ENV STREAMER_WEB_HOST=0.0.0.0 \
    STREAMER_STATE_DIR=/data \
    STREAMER_MODELS_DIR=/app/models
VOLUME ["/data"]
EXPOSE 6066
ENTRYPOINT ["streamer"]
CMD ["worker", "-l", "info"]
