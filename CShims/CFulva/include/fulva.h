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
#define FULVA_ABI_VERSION 1u

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
 * Cluster administration from outside the servers (libramcloud side).
 * `coordinator` is a RAMCloud locator or "zk:host:port"; `cluster` is the
 * cluster name ("main" when NULL).
 */

/* RAMCloud's own source-driven migration (RamCloud::migrateTablet) of the
 * tablet [firstKeyHash, lastKeyHash] of tableId to the master newOwner. */
int fulva_admin_migrate_tablet(const char *coordinator, const char *cluster,
                               uint64_t tableId, uint64_t firstKeyHash,
                               uint64_t lastKeyHash, uint64_t newOwner,
                               char *error, size_t errorLength);

/* RamCloud::splitTablet: tablets of `table` split at splitKeyHash. */
int fulva_admin_split_tablet(const char *coordinator, const char *cluster,
                             const char *table, uint64_t splitKeyHash,
                             char *error, size_t errorLength);

#ifdef __cplusplus
}
#endif

#endif /* FULVA_H */
