#!/bin/sh
# Entry point of the offline Kafka-protocol test image: a tansu broker configured from the
# apache/kafka image's variables, so the plugin starts both the same way.
#   KAFKA_LISTENERS=PLAINTEXT://:9092,CONTROLLER://:9093  (the PLAINTEXT one is served)
#   KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://127.0.0.1:9092
#   CLUSTER_ID (optional)
set -eu
plaintext() {
    printf '%s' "$1" | tr ',' '\n' | sed -n 's#^PLAINTEXT://##p' | head -n 1
}
listen=$(plaintext "${KAFKA_LISTENERS:-PLAINTEXT://:9092}")
advertised=$(plaintext "${KAFKA_ADVERTISED_LISTENERS:-PLAINTEXT://localhost:9092}")
case "$listen" in :*) listen="0.0.0.0$listen" ;; esac
exec /usr/local/bin/tansu broker \
    --listener-url "tcp://$listen" \
    --advertised-listener-url "tcp://$advertised" \
    --storage-engine memory://tansu/ \
    --cluster-id "${CLUSTER_ID:-pytest-pipeline-test}"
