/*
 * Layout checks for fulva.h: both sides of the ABI (the C++ compiled into
 * RAMCloud and the Swift that loads it) compile this header, and a struct
 * whose size changes without a FULVA_ABI_VERSION bump fails the build here.
 */
#include <stddef.h>

#include "fulva.h"

_Static_assert(sizeof(struct fulva_server_counters) == 72,
               "fulva_server_counters changed: bump FULVA_ABI_VERSION");
_Static_assert(offsetof(struct fulva_server_counters, dpdkPacketsSent) == 48,
               "fulva_server_counters changed: bump FULVA_ABI_VERSION");
_Static_assert(offsetof(struct fulva_server_counters, sourceReads) == 64,
               "fulva_server_counters changed: bump FULVA_ABI_VERSION");
_Static_assert(sizeof(struct fulva_tablet_inventory) == 16, "bump FULVA_ABI_VERSION");

_Static_assert(sizeof(struct fulva_tablet) == 24, "bump FULVA_ABI_VERSION");
_Static_assert(sizeof(struct fulva_migration_request) == 64, "bump FULVA_ABI_VERSION");
_Static_assert(sizeof(struct fulva_prepare_reply) == 24, "bump FULVA_ABI_VERSION");
_Static_assert(sizeof(struct fulva_pull_request) == 24, "bump FULVA_ABI_VERSION");
_Static_assert(sizeof(struct fulva_pull_reply) == 24, "bump FULVA_ABI_VERSION");
_Static_assert(sizeof(struct fulva_migration_status) == 64 + 8 + 7 * 8 + 8 + 160,
               "bump FULVA_ABI_VERSION");

_Static_assert(sizeof(struct fulva_reject_rules) == 16, "bump FULVA_ABI_VERSION");
_Static_assert(sizeof(struct fulva_client_operation) == 88, "bump FULVA_ABI_VERSION");
_Static_assert(offsetof(struct fulva_client_operation, valueBuffer) == 72,
               "bump FULVA_ABI_VERSION");
_Static_assert(sizeof(struct fulva_client_outcome) == 32 + FULVA_TAG_CAPACITY,
               "bump FULVA_ABI_VERSION");
_Static_assert(sizeof(struct fulva_shim_host_ops) == 40, "bump FULVA_ABI_VERSION");
_Static_assert(sizeof(struct fulva_shim_counters) == 56, "bump FULVA_ABI_VERSION");
