/*
 * fulva.h: the one C ABI between RAMCloud and Fulva's Swift code.
 *
 * Every function returns a status (0 = FULVA_OK) and never throws or aborts
 * across the boundary; errors carry a message in a caller-owned buffer.
 * Swift never links RAMCloud: it dlopen()s libramcloud.so (or runs inside a
 * RAMCloud process) and resolves these symbols by name, checking
 * fulva_abi_version() first.
 *
 * This header includes no RAMCloud header.
 */
#ifndef FULVA_H
#define FULVA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a declaration below changes meaning or layout. */
#define FULVA_ABI_VERSION 2u

enum {
    FULVA_OK = 0,
    /* RAMCloud client statuses (RAMCloud::Status) are passed through as is;
     * these lie above them. */
    FULVA_ERROR_INVALID_ARGUMENT = 1000,
    FULVA_ERROR_UNAVAILABLE = 1001,
    FULVA_ERROR_INTERNAL = 1002
};

/* The ABI version the library was built with. */
uint32_t fulva_abi_version(void);

/*
 * Cluster administration from outside the servers (libramcloud side). Each
 * call works on an existing connection, a CRamCloud.h `struct rc_client`
 * from rc_connect: one process holds at most one DPDK driver, so these
 * calls cannot open connections of their own.
 */
struct rc_client;

/* RAMCloud's own source-driven migration (RamCloud::migrateTablet) of the
 * tablet [firstKeyHash, lastKeyHash] of tableId to the master newOwner. */
int fulva_admin_migrate_tablet(struct rc_client *client, uint64_t tableId,
                               uint64_t firstKeyHash, uint64_t lastKeyHash,
                               uint64_t newOwner, char *error,
                               size_t errorLength);

/* RamCloud::splitTablet: tablets of `table` split at splitKeyHash. */
int fulva_admin_split_tablet(struct rc_client *client, const char *table,
                             uint64_t splitKeyHash, char *error,
                             size_t errorLength);

/* The master that owns keyHash of tableId, per the coordinator's tablet
 * map (read afresh). */
int fulva_admin_tablet_owner(struct rc_client *client, uint64_t tableId,
                             uint64_t keyHash, uint64_t *serverId,
                             char *error, size_t errorLength);

/* Counters of one server, from RAMCloud's PerfStats. */
struct fulva_server_counters {
    uint64_t serverId;             /* RAMCloud ServerId (generation << 32
                                      | index) */
    uint64_t readCount;            /* objects read */
    uint64_t writeCount;           /* objects written */
    uint64_t networkInputBytes;    /* all transports */
    uint64_t networkOutputBytes;
    uint64_t dpdkPacketsReceived;  /* frames through the DPDK port */
    uint64_t dpdkPacketsSent;
};

/* The counters of every server the coordinator knows; at most `capacity`
 * entries are written, and *count says how many. */
int fulva_admin_server_counters(struct rc_client *client,
                                struct fulva_server_counters *counters,
                                size_t capacity, size_t *count, char *error,
                                size_t errorLength);

#ifdef __cplusplus
}
#endif

#endif /* FULVA_H */
