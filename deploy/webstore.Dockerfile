# The WebStore services (webstore serve) and traffic generator.
# Build from the repository root:  docker build -f deploy/webstore.Dockerfile .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -o /out/webstore ./cmd/webstore \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/webstore /usr/local/bin/webstore
COPY --from=build --chown=65532:65532 /out/data /data
ENTRYPOINT ["/usr/local/bin/webstore"]
CMD ["serve", "--data-dir", "/data", "--main-listen", "0.0.0.0:8080"]
