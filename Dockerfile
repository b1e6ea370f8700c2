# The provgraph image: the SDK and CLI plus the services (projector, launcher, API).
# Kubernetes Jobs created by the launcher run user code in images built FROM this one.
FROM python:3.11-slim
WORKDIR /opt/provgraph
COPY pyproject.toml README.md ./
COPY sdk sdk
COPY events events
COPY graph graph
COPY api api
COPY services services
RUN pip install --no-cache-dir ".[all]"
RUN useradd --create-home provgraph
USER provgraph
ENV PROVGRAPH_HOME=/home/provgraph/.provgraph
ENTRYPOINT ["provgraph"]
CMD ["--help"]
