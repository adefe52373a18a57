/*
 * fulva_zk.h: the few ZooKeeper calls Fulva's migration records need, over
 * libzookeeper_mt's synchronous API. Every symbol is prefixed fulva_zk_;
 * return values are ZooKeeper's codes (0 = ZOK, negative = error).
 */
#ifndef FULVA_ZK_H
#define FULVA_ZK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct fulva_zk;

enum {
    FULVA_ZK_OK = 0,
    FULVA_ZK_CONNECTION_LOSS = -4,
    FULVA_ZK_OPERATION_TIMEOUT = -7,
    FULVA_ZK_NO_NODE = -101,
    FULVA_ZK_BAD_VERSION = -103,
    FULVA_ZK_NODE_EXISTS = -110,
    FULVA_ZK_SESSION_EXPIRED = -112
};

/* Connects to `hosts` ("host:port[,host:port]") and waits until the
 * session is established, at most connectTimeoutMillis; NULL with a
 * message in `error` otherwise. The session lives sessionTimeoutMillis
 * without contact (the server may cap it). */
struct fulva_zk *fulva_zk_open(const char *hosts, int connectTimeoutMillis,
                               int sessionTimeoutMillis, char *error,
                               size_t errorLength);
void fulva_zk_close(struct fulva_zk *zk);

/* Creates a persistent node. With `sequential`, ZooKeeper appends a
 * 10-digit counter; the created path goes to createdPath. */
int fulva_zk_create(struct fulva_zk *zk, const char *path, const void *data,
                    int length, int sequential, char *createdPath,
                    int createdPathLength);
/* Reads a node: *length is the buffer's size on entry, the data's on
 * return; *version is the node's version (for conditional writes). */
int fulva_zk_get(struct fulva_zk *zk, const char *path, void *buffer,
                 int *length, int32_t *version);
/* Writes a node only if its version is still expectedVersion (-1: any). */
int fulva_zk_set(struct fulva_zk *zk, const char *path, const void *data,
                 int length, int32_t expectedVersion, int32_t *newVersion);
int fulva_zk_delete(struct fulva_zk *zk, const char *path,
                    int32_t expectedVersion);
/* The names of a node's children, '\n'-separated, into `names`. */
int fulva_zk_children(struct fulva_zk *zk, const char *path, char *names,
                      int namesLength);
const char *fulva_zk_error(int code);

#ifdef __cplusplus
}
#endif

#endif /* FULVA_ZK_H */
