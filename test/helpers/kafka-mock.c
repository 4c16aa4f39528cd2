/*
 * A Kafka-protocol broker for tests: librdkafka's in-process mock cluster, listening on loopback.
 * Prints "bootstraps <host:port,...>" once ready, then takes one command per line on stdin and
 * answers "ok" or "error <reason>":
 *   topic <name> <partitions> <replication>   create a topic
 *   down <broker-id> | up <broker-id>         take a broker off the network and back
 *   errors <api-key> <error-code> <count>      fail the next <count> requests of that API
 *   quit                                       (or EOF) shut down
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  int brokers = argc > 1 ? atoi(argv[1]) : 3;
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  /* The handle only hosts the cluster; keep it quiet. */
  rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) { fprintf(stderr, "rd_kafka_new: %s\n", err); return 1; }
  rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (!mc) { fprintf(stderr, "rd_kafka_mock_cluster_new failed\n"); return 1; }
  printf("bootstraps %s\n", rd_kafka_mock_cluster_bootstraps(mc));
  fflush(stdout);

  char line[1024];
  while (fgets(line, sizeof line, stdin)) {
    char cmd[32] = {0}, name[512] = {0};
    int a = 0, b = 0, c = 0;
    rd_kafka_resp_err_t rc = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (sscanf(line, "%31s", cmd) != 1) continue;
    if (!strcmp(cmd, "quit")) break;
    if (!strcmp(cmd, "topic") && sscanf(line, "%*s %511s %d %d", name, &a, &b) == 3) {
      rc = rd_kafka_mock_topic_create(mc, name, a, b);
    } else if (!strcmp(cmd, "down") && sscanf(line, "%*s %d", &a) == 1) {
      rc = rd_kafka_mock_broker_set_down(mc, a);
    } else if (!strcmp(cmd, "up") && sscanf(line, "%*s %d", &a) == 1) {
      rc = rd_kafka_mock_broker_set_up(mc, a);
    } else if (!strcmp(cmd, "errors") && sscanf(line, "%*s %d %d %d", &a, &b, &c) == 3) {
      for (int i = 0; i < c; i++) rd_kafka_mock_push_request_errors(mc, a, 1, (rd_kafka_resp_err_t)b);
    } else {
      printf("error unknown command\n");
      fflush(stdout);
      continue;
    }
    if (rc) printf("error %s\n", rd_kafka_err2str(rc));
    else printf("ok\n");
    fflush(stdout);
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}
