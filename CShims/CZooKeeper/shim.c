/* libzookeeper_mt declares its synchronous API only with THREADED. */
#define THREADED
#include <zookeeper/zookeeper.h>

#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

#include "fulva_zk.h"

struct fulva_zk {
    zhandle_t *handle;
};

static void ignoreEvents(zhandle_t *zh, int type, int state, const char *path,
                         void *context)
{
    (void)zh; (void)type; (void)state; (void)path; (void)context;
}

struct fulva_zk *fulva_zk_open(const char *hosts, int timeoutMillis,
                               int sessionTimeoutMillis, char *error,
                               size_t errorLength)
{
    /* The client library logs every connection at INFO on stderr. */
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    zhandle_t *handle = zookeeper_init(hosts, ignoreEvents,
                                       sessionTimeoutMillis < 4000 ? 4000 : sessionTimeoutMillis,
                                       NULL, NULL, 0);
    if (handle == NULL) {
        snprintf(error, errorLength, "cannot start a ZooKeeper client for %s", hosts);
        return NULL;
    }
    struct timespec pause = {0, 10 * 1000 * 1000};
    for (int waited = 0; waited < timeoutMillis; waited += 10) {
        if (zoo_state(handle) == ZOO_CONNECTED_STATE) {
            struct fulva_zk *zk = malloc(sizeof(*zk));
            if (zk == NULL) {
                zookeeper_close(handle);
                snprintf(error, errorLength, "out of memory");
                return NULL;
            }
            zk->handle = handle;
            return zk;
        }
        nanosleep(&pause, NULL);
    }
    zookeeper_close(handle);
    snprintf(error, errorLength, "ZooKeeper at %s did not answer within %d ms",
             hosts, timeoutMillis);
    return NULL;
}

void fulva_zk_close(struct fulva_zk *zk)
{
    if (zk == NULL)
        return;
    zookeeper_close(zk->handle);
    free(zk);
}

int fulva_zk_create(struct fulva_zk *zk, const char *path, const void *data,
                    int length, int sequential, char *createdPath,
                    int createdPathLength)
{
    return zoo_create(zk->handle, path, data, length, &ZOO_OPEN_ACL_UNSAFE,
                      sequential ? ZOO_PERSISTENT_SEQUENTIAL : ZOO_PERSISTENT,
                      createdPath, createdPathLength);
}

int fulva_zk_get(struct fulva_zk *zk, const char *path, void *buffer,
                 int *length, int32_t *version)
{
    struct Stat stat;
    int rc = zoo_get(zk->handle, path, 0, buffer, length, &stat);
    if (rc == ZOK && version != NULL)
        *version = stat.version;
    return rc;
}

int fulva_zk_set(struct fulva_zk *zk, const char *path, const void *data,
                 int length, int32_t expectedVersion, int32_t *newVersion)
{
    struct Stat stat;
    int rc = zoo_set2(zk->handle, path, data, length, expectedVersion, &stat);
    if (rc == ZOK && newVersion != NULL)
        *newVersion = stat.version;
    return rc;
}

int fulva_zk_delete(struct fulva_zk *zk, const char *path,
                    int32_t expectedVersion)
{
    return zoo_delete(zk->handle, path, expectedVersion);
}

int fulva_zk_children(struct fulva_zk *zk, const char *path, char *names,
                      int namesLength)
{
    struct String_vector children;
    int rc = zoo_get_children(zk->handle, path, 0, &children);
    if (rc != ZOK)
        return rc;
    size_t used = 0;
    if (namesLength > 0)
        names[0] = '\0';
    for (int i = 0; i < children.count; i++) {
        size_t n = strlen(children.data[i]);
        if (used + n + 2 > (size_t)namesLength) {
            deallocate_String_vector(&children);
            return ZBADARGUMENTS;
        }
        memcpy(names + used, children.data[i], n);
        used += n;
        names[used++] = '\n';
        names[used] = '\0';
    }
    deallocate_String_vector(&children);
    return ZOK;
}

const char *fulva_zk_error(int code)
{
    return zerror(code);
}
