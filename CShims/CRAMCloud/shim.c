#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "fulva_rc.h"

static const char *(*statusToString)(int);

/* Resolves one symbol; a missing required one fails the load. */
static int resolve(void *library, const char *name, void **slot, int required,
                   char *error, size_t errorLength)
{
    dlerror();
    *slot = dlsym(library, name);
    if (*slot == NULL && required) {
        snprintf(error, errorLength, "symbol %s missing from libramcloud: %s", name,
                 dlerror());
        return -1;
    }
    return 0;
}

int fulva_rc_load(const char *path, struct fulva_rc_api *api, char *error,
                  size_t errorLength)
{
    memset(api, 0, sizeof(*api));
    void *library = dlopen(path, RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE);
    if (library == NULL) {
        snprintf(error, errorLength, "cannot load %s: %s", path, dlerror());
        return -1;
    }
    struct { const char *name; void **slot; int required; } symbols[] = {
        {"rc_connect", (void **)&api->connect, 1},
        {"rc_disconnect", (void **)&api->disconnect, 1},
        {"rc_createTable", (void **)&api->createTable, 1},
        {"rc_dropTable", (void **)&api->dropTable, 1},
        {"rc_getTableId", (void **)&api->getTableId, 1},
        {"rc_read", (void **)&api->read, 1},
        {"rc_write", (void **)&api->write, 1},
        {"rc_remove", (void **)&api->remove, 1},
        {"rc_incrementInt64", (void **)&api->incrementInt64, 1},
        {"rc_testing_get_server_id", (void **)&api->testingGetServerId, 1},
        {"fulva_abi_version", (void **)&api->abiVersion, 0},
        {"fulva_admin_migrate_tablet", (void **)&api->migrateTablet, 0},
        {"fulva_admin_split_tablet", (void **)&api->splitTablet, 0},
        {"fulva_admin_server_counters", (void **)&api->serverCounters, 0},
        {"fulva_admin_live_masters", (void **)&api->liveMasters, 0},
        {"fulva_admin_tablet_owner", (void **)&api->tabletOwner, 0},
        {"fulva_admin_start_migration", (void **)&api->startMigration, 0},
        {"fulva_admin_migration_status", (void **)&api->migrationStatus, 0},
        {"fulva_testing_increment_losing_reply", (void **)&api->incrementLosingReply, 0},
        {"fulva_testing_retry_increment", (void **)&api->retryIncrement, 0},
        {"fulva_client_execute", (void **)&api->execute, 0},
        {"fulva_key_hash", (void **)&api->keyHash, 0},
        {"fulva_admin_inventory", (void **)&api->inventory, 0},
        {"fulva_admin_transfer_probe", (void **)&api->transferProbe, 0},
        /* RAMCloud::statusToString(Status), a C++ symbol. */
        {"_ZN8RAMCloud14statusToStringENS_6StatusE", (void **)&statusToString, 0},
    };
    for (size_t i = 0; i < sizeof(symbols) / sizeof(symbols[0]); i++) {
        if (resolve(library, symbols[i].name, symbols[i].slot, symbols[i].required,
                    error, errorLength) != 0)
            return -1;
    }
    return 0;
}

const char *fulva_rc_status_string(int status)
{
    return statusToString != NULL ? statusToString(status) : NULL;
}
