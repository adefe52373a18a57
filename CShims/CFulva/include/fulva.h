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
#define FULVA_ABI_VERSION 9u

enum {
    FULVA_OK = 0,
    /* RAMCloud client statuses (RAMCloud::Status) are passed through as is;
     * these lie above them. */
    FULVA_ERROR_INVALID_ARGUMENT = 1000,
    FULVA_ERROR_UNAVAILABLE = 1001,
    FULVA_ERROR_INTERNAL = 1002,
    /* The request is well formed but the migration cannot run (same source
     * and destination, a tablet already migrating, a range not owned by
     * the source, ...); the error text says which. */
    FULVA_ERROR_REFUSED = 1003,
    /* A struct or ABI version on the other side does not match. */
    FULVA_ERROR_ABI_MISMATCH = 1004,
    /* No migration with this id is known here. */
    FULVA_ERROR_UNKNOWN_MIGRATION = 1005,
    /* The migration was cancelled: its reverse run owns the tablet now. */
    FULVA_ERROR_CANCELLED = 1006
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
    uint64_t priorityPulls;        /* Fulva: keys a destination fetched
                                      ahead of their batch */
    uint64_t sourceReads;          /* Fulva: reads a source answered from
                                      its frozen copy (half a dual read) */
};

/* The counters of every master the coordinator knows as up (backup-only
 * servers are left out); at most `capacity` entries are written, and
 * *count says how many. */
int fulva_admin_server_counters(struct rc_client *client,
                                struct fulva_server_counters *counters,
                                size_t capacity, size_t *count, char *error,
                                size_t errorLength);

/* The ids of the masters the coordinator's server list says are up: a
 * master that crashed drops out once the coordinator has declared it
 * dead. Unlike the counters, it asks no master anything, so a busy master
 * is not mistaken for a dead one. */
int fulva_admin_live_masters(struct rc_client *client, uint64_t *serverIds,
                             size_t capacity, size_t *count, char *error,
                             size_t errorLength);

/* ======================================================================
 * The server plugin: Fulva's migration manager inside a RAMCloud master.
 *
 * The master (C++, CShims/ramcloud) dlopen()s the plugin, checks
 * fulva_plugin_abi_version(), and hands it a table of host operations.
 * The plugin (Swift) makes every protocol decision with FulvaCore and acts
 * only through these operations; the host moves the bytes (RPCs, hash
 * table, log). Host operations may block: the host calls
 * fulva_plugin_drive() on a thread of its own for each migration.
 * ====================================================================== */

/* A table's inclusive key-hash range, as RAMCloud's TabletManager keeps it. */
struct fulva_tablet {
    uint64_t tableId;
    uint64_t firstKeyHash;
    uint64_t lastKeyHash;
};

enum {
    FULVA_STRATEGY_FULVA = 0,
    FULVA_STRATEGY_ROCKSTEADY = 1
};

/* What the operator asked for, as the destination receives it. */
struct fulva_migration_request {
    uint64_t migrationId;
    struct fulva_tablet tablet;
    uint64_t source;             /* RAMCloud ServerId */
    uint64_t destination;
    uint32_t strategy;           /* FULVA_STRATEGY_* */
    uint32_t partitions;         /* 0: the plugin's default */
    /* 0, or the migration this one cancels (a reverse run: `source` is
     * that migration's destination, `destination` its source, which still
     * holds its old copy of the tablet). */
    uint64_t reverses;
};

/* The source's answer to Prepare, after it froze and drained the tablet. */
struct fulva_prepare_reply {
    uint64_t versionBound;       /* above every version the tablet ever had */
    uint64_t bucketCount;        /* the source's hash table */
    uint32_t partitions;         /* as requested */
    uint32_t completionRecords;  /* RIFL records handed over and installed */
};

/* One batch to pull: buckets [firstBucket, endBucket) of the source's hash
 * table, the tablet's live objects only. */
struct fulva_pull_request {
    uint32_t partition;
    uint32_t reserved;
    uint64_t firstBucket;
    uint64_t endBucket;
};

/* A pulled batch, already replayed into the destination's hash table
 * (higher version wins) when the host returns it. */
struct fulva_pull_reply {
    int32_t status;              /* FULVA_OK or the failure of this batch */
    uint32_t objects;
    uint64_t bytes;
    /* The batch covers [firstBucket, resumeBucket): equal to endBucket
     * unless the source cut the reply short (size limit). */
    uint64_t resumeBucket;
};

enum {
    FULVA_PHASE_PREPARING = 0,
    FULVA_PHASE_MOVING = 1,
    FULVA_PHASE_DONE = 2,
    FULVA_PHASE_FAILED = 3
};

struct fulva_migration_status {
    struct fulva_migration_request request;
    uint32_t phase;              /* FULVA_PHASE_* */
    int32_t lastStatus;          /* status of the failure, when FAILED */
    uint64_t versionBound;
    uint64_t bucketCount;
    uint64_t bucketsReplayed;    /* sum over partitions of watermark progress */
    uint64_t objectsMoved;
    uint64_t bytesMoved;
    uint64_t pullBatches;
    uint64_t startMicros;        /* wall clock, since the epoch */
    uint64_t endMicros;          /* 0 while running */
    char lastError[160];
};

/* Operations the host gives the plugin. Every one returns a status and
 * writes a message into `error` when it fails. */
struct fulva_host_ops {
    uint32_t structSize;         /* sizeof(struct fulva_host_ops) of the host */
    uint32_t abiVersion;         /* FULVA_ABI_VERSION of the host */
    void *context;               /* passed back to every operation */
    uint64_t serverId;           /* this master */
    /* Where the cluster keeps its state ("zk:host:port") and its name:
     * migration records live there too. Empty when unknown. */
    const char *externalStorage;
    const char *clusterName;

    /* level: 0 debug, 1 notice, 2 warning, 3 error */
    void (*log)(void *context, int level, const char *message);

    /* Destination side. Ask the source to freeze and drain the tablet and
     * hand over its completion records (installed here before returning). */
    int (*prepare_source)(void *context,
                          const struct fulva_migration_request *request,
                          struct fulva_prepare_reply *reply, char *error,
                          size_t errorLength);
    /* Raise this master's version floor to the bound, add the tablet in the
     * destination state, and have the coordinator map it here. */
    int (*take_ownership)(void *context,
                          const struct fulva_migration_request *request,
                          const struct fulva_prepare_reply *prepared,
                          char *error, size_t errorLength);
    /* Pull `count` batches from the source in parallel and replay each
     * into the hash table; one reply per request. Returns FULVA_OK when the
     * call itself worked, whatever the batches' own statuses. */
    int (*pull)(void *context, const struct fulva_migration_request *request,
                const struct fulva_pull_request *pulls, size_t count,
                struct fulva_pull_reply *replies);
    /* Every key of the partition whose bucket lies below `bucket` is here
     * now; per-request checks read this value. Only ever grows. */
    int (*publish_watermark)(void *context, uint64_t migrationId,
                             uint32_t partition, uint64_t bucket);
    /* Everything replayed: make the tablet normal here, have the source
     * drop it, and clear the tombstones kept during the move. */
    int (*finish)(void *context, const struct fulva_migration_request *request,
                  char *error, size_t errorLength);
    /* Give up: undo whatever of prepare/take_ownership happened (the source
     * unfreezes if it still owns the tablet). */
    int (*abandon)(void *context, const struct fulva_migration_request *request,
                   char *error, size_t errorLength);
};

/* Exported by the plugin. */
uint32_t fulva_plugin_abi_version(void);
/* Start the manager; *plugin is passed to every later call. */
int fulva_plugin_start(const struct fulva_host_ops *host, void **plugin,
                       char *error, size_t errorLength);
/* Destination: accept (or refuse, with the reason) a migration. On FULVA_OK
 * the host runs fulva_plugin_drive() for it on a thread of its own. */
int fulva_plugin_migrate(void *plugin,
                         const struct fulva_migration_request *request,
                         char *error, size_t errorLength);
/* Destination: run an accepted migration to its end (done or failed). */
int fulva_plugin_drive(void *plugin, uint64_t migrationId);
int fulva_plugin_status(void *plugin, uint64_t migrationId,
                        struct fulva_migration_status *status);
/* Source: Prepare is drained; admit the migration and compute its version
 * bound from the segment safeVersion and the tablet's highest version. */
int fulva_plugin_source_prepare(void *plugin,
                                const struct fulva_migration_request *request,
                                uint64_t bucketCount, uint64_t safeVersion,
                                uint64_t highestVersion, uint64_t *versionBound,
                                char *error, size_t errorLength);
/* Source: the migration ended (the tablet was dropped or unfrozen). */
int fulva_plugin_source_end(void *plugin, uint64_t migrationId);
void fulva_plugin_stop(void *plugin);

/* Client side of the control RPCs (libramcloud): ask the destination to
 * start a migration, and read its status from the destination. */
int fulva_admin_start_migration(struct rc_client *client,
                                const struct fulva_migration_request *request,
                                char *error, size_t errorLength);
int fulva_admin_migration_status(struct rc_client *client,
                                 uint64_t destination, uint64_t migrationId,
                                 struct fulva_migration_status *status,
                                 char *error, size_t errorLength);

/* Testing only: an INCREMENT of the key sent with a fresh RIFL id, whose
 * reply is thrown away as if the network lost it; *handle keeps the
 * request for fulva_testing_retry_increment, which sends it again
 * unchanged (same RIFL id) to the key's current owner and returns the
 * value that reply carries. */
int fulva_testing_increment_losing_reply(struct rc_client *client,
                                         uint64_t tableId, const void *key,
                                         uint16_t keyLength, int64_t delta,
                                         void **handle, char *error,
                                         size_t errorLength);
int fulva_testing_retry_increment(struct rc_client *client, void *handle,
                                  int64_t *newValue, char *error,
                                  size_t errorLength);

/* ======================================================================
 * Protocol clients (libramcloud side): a client that follows Fulva's
 * client rules (FulvaCore's ClientRead and ClientWrite) addresses the
 * source and the destination of a migration directly, one request per
 * server, and reads the migration tags of the replies itself.
 *
 * Reads travel as FULVA_READ, the opt-in read: its reply says what the
 * server knows of the key (an object, a tombstone, an authoritative miss,
 * or "not yet moved" at a destination) and, for a tablet in migration or a
 * migration the request names, the tag FulvaCore's MigrationTag decodes.
 * Writes, removes and increments travel as RAMCloud's own RPCs (with a
 * RIFL id); their replies carry no tag: a client learns of a migration
 * from a read's tag, or from STATUS_UNKNOWN_TABLET and a fresh tablet map.
 * ====================================================================== */

enum {
    FULVA_OPERATION_READ = 1,
    FULVA_OPERATION_WRITE = 2,
    FULVA_OPERATION_REMOVE = 3,
    FULVA_OPERATION_INCREMENT = 4
};

/* What a server knows of a key (FulvaCore's LookupAnswer). */
enum {
    FULVA_ANSWER_NONE = 0,          /* not a read, or no answer */
    FULVA_ANSWER_OBJECT = 1,        /* version and value follow */
    FULVA_ANSWER_TOMBSTONE = 2,     /* removed at this version */
    FULVA_ANSWER_ABSENT = 3,        /* authoritative: the key does not exist */
    FULVA_ANSWER_NOT_YET_MOVED = 4, /* a destination that cannot tell yet */
    /* A reverse run's destination that cannot tell yet, with the old copy
     * it still holds: the version and value of that copy follow, or (for
     * _OVER_ABSENT) it held none. The other server's answer decides. */
    FULVA_ANSWER_NOT_YET_MOVED_OVER_OBJECT = 5,
    FULVA_ANSWER_NOT_YET_MOVED_OVER_ABSENT = 6
};

/* Enough for any tag: 14 bytes of header, 47 of identity, 2 of count and
 * 6 per partition of the at most 256 a migration may have. */
#define FULVA_TAG_CAPACITY 1600u

/* RAMCloud's RejectRules, field for field. */
struct fulva_reject_rules {
    uint64_t givenVersion;
    uint8_t doesntExist;
    uint8_t exists;
    uint8_t versionLeGiven;
    uint8_t versionNeGiven;
    uint32_t reserved;              /* zero */
};

/* One request to one server. */
struct fulva_client_operation {
    uint64_t server;                /* RAMCloud ServerId to send it to */
    uint64_t tableId;
    const void *key;
    uint16_t keyLength;
    uint16_t reserved0;             /* zero */
    uint32_t kind;                  /* FULVA_OPERATION_* */
    const struct fulva_reject_rules *rejectRules;   /* NULL: none */
    const void *value;              /* WRITE: the new value */
    uint32_t valueLength;
    uint32_t hintEpoch;             /* READ: progress epoch the client has */
    uint64_t hintMigration;         /* READ: the migration the client knows
                                       the tablet to be in, or 0 */
    int64_t delta;                  /* INCREMENT */
    void *valueBuffer;              /* READ: where the value goes */
    uint32_t valueCapacity;
    uint32_t reserved1;             /* zero */
};

/* The reply to one request. */
struct fulva_client_outcome {
    int32_t status;                 /* RAMCloud status (STATUS_OK,
                                       STATUS_UNKNOWN_TABLET, STATUS_RETRY,
                                       reject-rule statuses, ...), or
                                       FULVA_ERROR_UNAVAILABLE: no reply
                                       before the deadline */
    uint32_t answer;                /* READ: FULVA_ANSWER_* */
    uint64_t version;               /* object, tombstone, write, remove
                                       (0: nothing removed), increment */
    int64_t newValue;               /* INCREMENT */
    uint32_t valueLength;           /* READ: the value's full length (only
                                       valueCapacity bytes are copied) */
    uint32_t tagLength;             /* 0: the reply carries no tag */
    uint8_t tag[FULVA_TAG_CAPACITY];
};

/* Sends every operation at once (a dual read is two) and waits for all
 * replies until timeoutMicros have passed; an operation without a reply
 * by then is cancelled and reports FULVA_ERROR_UNAVAILABLE. Nothing is
 * retried: a STATUS_UNKNOWN_TABLET or STATUS_RETRY is reported as is.
 * Returns FULVA_OK when every outcome was filled in. */
int fulva_client_execute(struct rc_client *client,
                         const struct fulva_client_operation *operations,
                         struct fulva_client_outcome *outcomes, size_t count,
                         uint32_t timeoutMicros, char *error,
                         size_t errorLength);

/* RAMCloud's hash of a primary key (Key::getHash), which places it in a
 * tablet and a bucket. */
uint64_t fulva_key_hash(uint64_t tableId, const void *key,
                        uint16_t keyLength);

/* What a migration of a tablet's key range from one master would move:
 * the objects its hash table holds, whatever the master's tablets say (a
 * dropped tablet should leave none), and their keys' and values' bytes.
 * The master counts; nothing but the totals crosses the network. */
struct fulva_tablet_inventory {
    uint64_t objects;
    uint64_t bytes;
};

int fulva_admin_inventory(struct rc_client *client, uint64_t server,
                          const struct fulva_tablet *tablet,
                          struct fulva_tablet_inventory *inventory,
                          char *error, size_t errorLength);

/* The raw transfer rate from one master to another over the cluster's
 * transport, the ceiling a migration's pulls run against: `destination`
 * fetches `bytes` from `source` in replies of `chunkBytes` (RAMCloud's
 * ECHO, served from the source's memory without copying), `outstanding`
 * requests at a time. */
struct fulva_transfer_probe {
    uint64_t source;
    uint64_t destination;
    uint64_t bytes;
    uint32_t chunkBytes;            /* 1 ... 1 MB */
    uint32_t outstanding;           /* 1 ... 64 */
};

struct fulva_transfer_result {
    uint64_t bytes;                 /* received by the destination */
    uint64_t nanos;                 /* first request sent to last reply */
};

int fulva_admin_transfer_probe(struct rc_client *client,
                               const struct fulva_transfer_probe *probe,
                               struct fulva_transfer_result *result,
                               char *error, size_t errorLength);

/* ======================================================================
 * The client shim: libramcloud (patched) hands operations on migrating
 * tablets to the plugin, which carries out FulvaCore's client rules, so
 * programs written against RAMCloud's client API run unchanged. One shim
 * per RamCloud connection, used from that connection's thread only.
 * libramcloud loads the plugin named by FULVA_PLUGIN (or the default path,
 * ~/.cache/fulva/plugin/libFulvaPlugin.so); without it, clients are stock.
 * ====================================================================== */

struct fulva_shim_host_ops {
    uint32_t structSize;            /* sizeof(struct fulva_shim_host_ops) */
    uint32_t abiVersion;            /* FULVA_ABI_VERSION */
    void *context;                  /* the connection */
    /* fulva_client_execute on this connection. */
    int (*execute)(void *context,
                   const struct fulva_client_operation *operations,
                   struct fulva_client_outcome *outcomes, size_t count,
                   uint32_t timeoutMicros, char *error, size_t errorLength);
    /* The key's owner by the connection's tablet map; `fresh` flushes the
     * table's entries and asks the coordinator. */
    int (*tablet_owner)(void *context, uint64_t tableId, const void *key,
                        uint16_t keyLength, int fresh, uint64_t *serverId);
    uint64_t (*key_hash)(uint64_t tableId, const void *key,
                         uint16_t keyLength);
};

/* What the shim did, for tests and operators. */
struct fulva_shim_counters {
    uint64_t reads;                 /* reads the shim decided */
    uint64_t dualReads;             /* of which went to both servers */
    uint64_t routed;                /* requests sent to a destination */
    uint64_t rounds;                /* request rounds sent */
    uint64_t tagBytes;              /* migration tags received */
    uint64_t migrationsLearned;
    uint64_t failed;                /* operations without an outcome */
};

uint32_t fulva_shim_abi_version(void);
int fulva_shim_start(const struct fulva_shim_host_ops *host, void **shim);
/* A tag that a stock reply carried. Returns 1 when the reply must not be
 * used on its own (it came from a migration's source), else 0. */
int fulva_shim_learn(void *shim, const uint8_t *tag, uint32_t tagLength);
/* Where a request for the key goes while a migration the shim knows covers
 * it: 1, *server (the destination) and *migration, or 0 (the tablet map
 * decides). */
int fulva_shim_route(void *shim, uint64_t tableId, uint64_t keyHash,
                     uint64_t *server, uint64_t *migration);
/* Runs one operation by the client rules until it has an outcome (the
 * operation's `server` is ignored); a read's outcome is OBJECT or ABSENT.
 * Returns FULVA_OK when *outcome holds the answer. */
int fulva_shim_execute(void *shim,
                       const struct fulva_client_operation *operation,
                       struct fulva_client_outcome *outcome,
                       uint32_t timeoutMicros);
/* How many running migrations the shim knows. While none, libramcloud
 * asks the shim nothing about the requests it sends. */
uint32_t fulva_shim_migrations(void *shim);
int fulva_shim_get_counters(void *shim, struct fulva_shim_counters *counters);
void fulva_shim_stop(void *shim);

/* The counters of the shim of a libramcloud connection (all zero without
 * one); *loaded says whether a shim is loaded. */
int fulva_client_shim_counters(struct rc_client *client,
                               struct fulva_shim_counters *counters,
                               int *loaded);

#ifdef __cplusplus
}
#endif

#endif /* FULVA_H */
