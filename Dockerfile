# facecore's dashboard as a read-only demo (presentation mode), CPU only.
#   docker build -t facecore-demo .
#   docker run -p 8501:8501 -v "$PWD/demo.zip:/bundle/demo.zip:ro" \
#       -e FACECORE_BUNDLE=/bundle/demo.zip facecore-demo
# See "Host a demo" in README.md: a bundle made by `python -m facecore demo bundle` is unpacked
# into the workspace (/workspace) at the first start when FACECORE_BUNDLE names it; it may also be
# a file of the build context (it is copied to /app with the code: FACECORE_BUNDLE=/app/demo.zip).
FROM python:3.11-slim

# No apt packages: the wheels bundle what they link (OpenCV headless, PyAV and torchvision carry
# their own libraries, torch its own libgomp, dlib-bin needs only libstdc++), and the slim base
# has libc, libstdc++ and zlib. No Chromium: the browser tests are not run in the image.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin facecore
WORKDIR /app

# CPU wheels of torch and torchvision (the pins of requirements.txt) first: a layer that changes
# only with them, and pip then finds them installed instead of pulling the CUDA builds from PyPI.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY --chown=facecore:facecore . /app
RUN mkdir /workspace && chown facecore:facecore /workspace

USER 1000:1000
ENV FACECORE_HOME=/workspace \
    FACECORE_MODE=demo \
    HOME=/home/facecore
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; r = urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=5); sys.exit(0 if r.read().strip() == b'ok' else 1)"]
CMD ["streamlit", "run", "streamlit_app.py", "--server.port=8501", "--server.address=0.0.0.0", "--server.headless=true"]
