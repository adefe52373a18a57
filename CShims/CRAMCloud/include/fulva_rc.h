/*
 * fulva_rc.h: RAMCloud's client C API (CRamCloud.h) and fulva.h's admin
 * calls, resolved at run time from a libramcloud.so that the caller names.
 *
 * Swift links no RAMCloud code: a machine without RAMCloud builds and tests
 * the package, and a program that needs RAMCloud says clearly which library
 * it could not load or which symbol is missing. Types mirror CRamCloud.h
 * (a Status is an int; rc_client is opaque); every symbol is prefixed
 * fulva_rc_.
 */
#ifndef FULVA_RC_H
#define FULVA_RC_H

#include <stddef.h>
#include <stdint.h>

#include "fulva.h"

#ifdef __cplusplus
extern "C" {
#endif


/* RAMCloud's RejectRules, byte for byte (packed, as in RejectRules.h). */
struct fulva_rc_reject_rules {
    uint64_t givenVersion;
    uint8_t doesntExist;
    uint8_t exists;
    uint8_t versionLeGiven;
    uint8_t versionNeGiven;
} __attribute__((packed));

/* The functions, once loaded. */
struct fulva_rc_api {
    int (*connect)(const char *locator, const char *clusterName,
                   struct rc_client **client);
    void (*disconnect)(struct rc_client *client);
    int (*createTable)(struct rc_client *client, const char *name,
                       uint32_t serverSpan);
    int (*dropTable)(struct rc_client *client, const char *name);
    int (*getTableId)(struct rc_client *client, const char *name,
                      uint64_t *tableId);
    int (*read)(struct rc_client *client, uint64_t tableId,
                const void *key, uint16_t keyLength,
                const struct fulva_rc_reject_rules *rules, uint64_t *version,
                void *buf, uint32_t maxLength, uint32_t *actualLength);
    int (*write)(struct rc_client *client, uint64_t tableId,
                 const void *key, uint16_t keyLength, const void *buf,
                 uint32_t length, const struct fulva_rc_reject_rules *rules,
                 uint64_t *version);
    int (*remove)(struct rc_client *client, uint64_t tableId,
                  const void *key, uint16_t keyLength,
                  const struct fulva_rc_reject_rules *rules,
                  uint64_t *version);
    int (*incrementInt64)(struct rc_client *client, uint64_t tableId,
                          const void *key, uint16_t keyLength,
                          int64_t incrementValue,
                          const struct fulva_rc_reject_rules *rules,
                          uint64_t *version, int64_t *newValue);
    int (*testingGetServerId)(struct rc_client *client,
                              uint64_t tableId, const void *key,
                              uint16_t keyLength, uint64_t *serverId);
    /* fulva.h (absent from a libramcloud built without Fulva's shims). */
    uint32_t (*abiVersion)(void);
    __typeof__(fulva_admin_migrate_tablet) *migrateTablet;
    __typeof__(fulva_admin_split_tablet) *splitTablet;
    __typeof__(fulva_admin_server_counters) *serverCounters;
    __typeof__(fulva_admin_live_masters) *liveMasters;
    __typeof__(fulva_admin_tablet_owner) *tabletOwner;
    __typeof__(fulva_admin_start_migration) *startMigration;
    __typeof__(fulva_admin_migration_status) *migrationStatus;
    __typeof__(fulva_testing_increment_losing_reply) *incrementLosingReply;
    __typeof__(fulva_testing_retry_increment) *retryIncrement;
    __typeof__(fulva_client_execute) *execute;
    __typeof__(fulva_key_hash) *keyHash;
    __typeof__(fulva_admin_inventory) *inventory;
    __typeof__(fulva_admin_transfer_probe) *transferProbe;
};

/*
 * Loads the library at `path` (RTLD_NOW | RTLD_NODELETE: it is never
 * unloaded) and fills `api`. Returns 0, or -1 with a message in `error`.
 * The fulva.h entries stay NULL when the library lacks them.
 */
int fulva_rc_load(const char *path, struct fulva_rc_api *api, char *error,
                  size_t errorLength);

/* RAMCloud's statusToString(), or NULL when not loaded. */
const char *fulva_rc_status_string(int status);

#ifdef __cplusplus
}
#endif

#endif /* FULVA_RC_H */
