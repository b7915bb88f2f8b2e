# syntax=docker/dockerfile:1
# Builds every command in ./cmd (paymentd, paymentctl, tosssim) into one small image.
#   docker build -t paymentledger .
#   docker run --rm -p 8080:8080 -e DATABASE_URL=postgres://... paymentledger
#   docker run --rm -p 8090:8090 paymentledger tosssim -addr 0.0.0.0:8090

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/ ./cmd/... \
 && mkdir -p /data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
COPY --from=build --chown=65532:65532 /data /data
ENV PATH=/usr/local/bin:/usr/bin:/bin \
    HTTP_ADDR=:8080 \
    DATA_DIR=/data
USER nonroot:nonroot
WORKDIR /data
EXPOSE 8080
CMD ["paymentd"]
