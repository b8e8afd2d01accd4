"""Notebook 03: the Dockerfile (two graded cells: build rules, runtime rules) and the .dockerignore."""

from tests.notebook_variants import right, wrong

BUILD, RUNTIME = "ex1-dockerfile-build-tests", "ex1-dockerfile-runtime-tests"

VARIANTS = {
    "ex1-dockerfile": [
        right(
            "pip upgraded first, USER by uid, legacy ENV lines, shell-form python healthcheck",
            '''
DOCKERFILE = """
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
WORKDIR /app
RUN pip install --upgrade pip
COPY requirements.txt /app/requirements.txt
RUN pip install --no-cache-dir -r /app/requirements.txt && useradd --create-home --uid 1000 app
ENV PYTHONUNBUFFERED 1
ENV MODEL_DIR /app/model
ENV UVICORN_HOST=0.0.0.0 UVICORN_PORT=8000
COPY ./model ./model
COPY ./app.py ./
USER 1000
EXPOSE 8000
HEALTHCHECK CMD python -c \\
    "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health', timeout=2)"
CMD ["uvicorn", "app:app"]
"""
''',
        ),
        wrong(
            "USER app but no RUN creates the user: the container cannot start",
            '''
DOCKERFILE = """
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 MODEL_DIR=/app/model UVICORN_HOST=0.0.0.0 UVICORN_PORT=8000
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY model/ model/
COPY app.py .
USER app
EXPOSE 8000
HEALTHCHECK CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health')"]
CMD ["uvicorn", "app:app"]
"""
''',
            loses=(RUNTIME,),
        ),
        right(
            "lower-case instructions, adduser, exec-form CMD through python -m, COPY in JSON form",
            '''
DOCKERFILE = """
# syntax=docker/dockerfile:1
arg BASE_IMAGE=python:3.11-slim
from ${BASE_IMAGE}
workdir /app
copy ["requirements.txt", "./"]
run pip install --no-cache-dir --requirement requirements.txt \\\\
    && adduser --disabled-password --gecos "" app
copy ["model", "/app/model"]
copy ["app.py", "/app/app.py"]
env PYTHONUNBUFFERED=1 \\\\
    MODEL_DIR=/app/model \\\\
    UVICORN_HOST=0.0.0.0 \\\\
    UVICORN_PORT=8000
user app
expose 8000/tcp
healthcheck --interval=15s CMD ["python", "-c", \\
    "import urllib.request as u; u.urlopen('http://localhost:8000/health', timeout=3)"]
cmd ["python", "-m", "uvicorn", "app:app"]
"""
''',
        ),
        wrong(
            "HEALTHCHECK CMD true: it cannot fail, so a stuck service looks healthy",
            '''
DOCKERFILE = """
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 MODEL_DIR=/app/model UVICORN_HOST=0.0.0.0 UVICORN_PORT=8000
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
RUN useradd --create-home app
COPY model/ model/
COPY app.py .
USER app
EXPOSE 8000
HEALTHCHECK CMD true
CMD ["uvicorn", "app:app"]
"""
''',
            loses=(RUNTIME,),
        ),
        wrong(
            "COPY . . before pip install: every code edit reinstalls the dependencies, and data is copied",
            '''
DOCKERFILE = """
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 MODEL_DIR=/app/model UVICORN_HOST=0.0.0.0 UVICORN_PORT=8000
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir -r requirements.txt
RUN useradd --create-home app
USER app
EXPOSE 8000
HEALTHCHECK CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health')"]
CMD ["uvicorn", "app:app"]
"""
''',
            loses=(BUILD,),
        ),
        wrong(
            "FROM python:3.11-slim typed in, the BASE_IMAGE ARG unused: the course machines cannot build it",
            '''
DOCKERFILE = """
ARG BASE_IMAGE=python:3.11-slim
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 MODEL_DIR=/app/model UVICORN_HOST=0.0.0.0 UVICORN_PORT=8000
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
RUN useradd --create-home app
COPY model/ model/
COPY app.py .
USER app
EXPOSE 8000
HEALTHCHECK CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health')"]
CMD ["uvicorn", "app:app"]
"""
''',
            loses=(BUILD,),
        ),
        wrong(
            "port and host typed into CMD: docker run -e UVICORN_PORT=... cannot move it",
            '''
DOCKERFILE = """
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 MODEL_DIR=/app/model
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
RUN useradd --create-home app
COPY model/ model/
COPY app.py .
USER app
EXPOSE 8000
HEALTHCHECK CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health')"]
CMD ["uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8000"]
"""
''',
            loses=(RUNTIME,),
        ),
    ],
    "ex2-dockerignore": [
        wrong(
            "forgets .env: the secrets file is sent to the daemon",
            '''
DOCKERIGNORE = """
.git
data/
notebooks/
__pycache__/
.ipynb_checkpoints/
"""
''',
        ),
        right(
            "globs as Docker reads them: .env*, .git*, **/data",
            '''
DOCKERIGNORE = """
# secrets and history
.env*
.git*
**/data
notebooks
**/__pycache__
**/.ipynb_checkpoints
"""
''',
        ),
        wrong(
            "excludes data, then brings it back with !data",
            '''
DOCKERIGNORE = """
.git
.env
data
notebooks
__pycache__
.ipynb_checkpoints
!data
"""
''',
        ),
        right(
            "an allowlist: everything out, then the three things the image needs back in",
            '''
DOCKERIGNORE = """
*
!app.py
!requirements.txt
!model
"""
''',
        ),
        wrong(
            "ignores only the notebooks' files (notebooks/*.ipynb), not the folder, and .env.* misses .env",
            '''
DOCKERIGNORE = """
.git
.env.*
data/
notebooks/*.ipynb
"""
''',
        ),
        right(
            "leading slashes and ./ prefixes, one per line",
            """
DOCKERIGNORE = "\\n".join(["/.git", "/.env", "./data/", "/notebooks/", "__pycache__", ".ipynb_checkpoints"])
""",
        ),
    ],
}
