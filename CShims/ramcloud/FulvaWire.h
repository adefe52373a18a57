/* Copyright (c) 2026 Fulva authors.
 *
 * Wire formats of Fulva's RPCs, in RAMCloud's WireFormat style. WireFormat.h
 * (patched) carries their opcodes and includes this file. Only servers and
 * libramcloud built from the same tree speak them.
 */
#ifndef RAMCLOUD_FULVAWIRE_H
#define RAMCLOUD_FULVAWIRE_H

#include "fulva/fulva.h"

namespace RAMCloud {
namespace WireFormat {

/// Client -> destination: start a migration (fulva_admin_start_migration).
struct FulvaMigrate {
    static const Opcode opcode = FULVA_MIGRATE;
    static const ServiceType service = MASTER_SERVICE;
    struct Request {
        RequestCommon common;
        fulva_migration_request migration;
    } __attribute__((packed));
    struct Response {
        ResponseCommon common;
        int32_t fulvaStatus;        // FULVA_OK or why the migration was refused
        uint32_t errorLength;       // message bytes following this header
    } __attribute__((packed));
};

/// Client -> destination: where a migration stands.
struct FulvaStatus {
    static const Opcode opcode = FULVA_STATUS;
    static const ServiceType service = MASTER_SERVICE;
    struct Request {
        RequestCommon common;
        uint64_t migrationId;
    } __attribute__((packed));
    struct Response {
        ResponseCommon common;
        int32_t fulvaStatus;
        fulva_migration_status status;
    } __attribute__((packed));
};

/// Destination -> source: freeze and drain the tablet, report the version
/// bound and the hash table's size, hand over the tablet's completion
/// records (each a uint32_t length and an RpcResult log entry, following
/// the header, after the error message).
struct FulvaPrepare {
    static const Opcode opcode = FULVA_PREPARE;
    static const ServiceType service = MASTER_SERVICE;
    struct Request {
        RequestCommonWithId common;
        fulva_migration_request migration;
    } __attribute__((packed));
    struct Response {
        ResponseCommon common;
        int32_t fulvaStatus;
        uint32_t errorLength;
        uint64_t versionBound;
        uint64_t bucketCount;
        uint32_t completionRecords;
    } __attribute__((packed));
};

/// One object as pulls carry it; its keys and value follow. A reverse
/// run's pulls also carry removals: `tombstone` 1, and the primary key's
/// bytes follow (keysAndValueLength of them), removed at `version`.
struct FulvaObject {
    uint64_t version;
    uint32_t timestamp;
    uint32_t keysAndValueLength;
    uint8_t tombstone;
} __attribute__((packed));

/// Destination -> source: the tablet's live objects in buckets
/// [firstBucket, endBucket) of the source's hash table, up to maxBytes
/// (the reply is cut only at a bucket boundary). With migrationId 0 it is
/// an inventory (fulva_admin_inventory): the objects of the key range that
/// the hash table holds, whatever the tablet's state, counted and not
/// carried (no objects follow; the reply stops after a bounded number of
/// buckets so that one worker is not held for the whole table).
struct FulvaPull {
    static const Opcode opcode = FULVA_PULL;
    static const ServiceType service = MASTER_SERVICE;
    struct Request {
        RequestCommonWithId common;
        uint64_t migrationId;
        fulva_tablet tablet;
        uint64_t firstBucket;
        uint64_t endBucket;
        uint32_t maxBytes;
    } __attribute__((packed));
    struct Response {
        ResponseCommon common;
        uint64_t resumeBucket;      // endBucket, or where a cut reply stops
        uint32_t objects;           // FulvaObjects following the header
        uint64_t bytes;             // their keys' and values' bytes
    } __attribute__((packed));
};

/// Destination -> source: one key, now (a request at the destination needs
/// it before its batch arrives). The key follows the header.
struct FulvaPriorityPull {
    static const Opcode opcode = FULVA_PRIORITY_PULL;
    static const ServiceType service = MASTER_SERVICE;
    struct Request {
        RequestCommonWithId common;
        uint64_t migrationId;
        uint64_t tableId;
        uint16_t keyLength;
    } __attribute__((packed));
    struct Response {
        ResponseCommon common;
        uint8_t found;              // 1: a FulvaObject follows
    } __attribute__((packed));
};

/// Destination -> source: the migration ended. `release` 0: every object
/// is at the destination, drop the tablet; 1: it never took the tablet,
/// unfreeze it.
struct FulvaDrop {
    static const Opcode opcode = FULVA_DROP;
    static const ServiceType service = MASTER_SERVICE;
    struct Request {
        RequestCommonWithId common;
        uint64_t migrationId;
        fulva_tablet tablet;
        uint8_t release;
    } __attribute__((packed));
    struct Response {
        ResponseCommon common;
    } __attribute__((packed));
};

/// Protocol client -> source or destination: the opt-in read (fulva.h's
/// FULVA_OPERATION_READ). The key follows the request header; the value,
/// then the tag (Fulva::encodeTag), follow the response header. The hint
/// names the migration the client believes the tablet to be in (0: none)
/// and the progress epoch it has seen, so the reply carries only news.
struct FulvaRead {
    static const Opcode opcode = FULVA_READ;
    static const ServiceType service = MASTER_SERVICE;
    struct Request {
        RequestCommon common;
        uint64_t tableId;
        uint16_t keyLength;
        uint64_t hintMigration;
        uint32_t hintEpoch;
    } __attribute__((packed));
    struct Response {
        ResponseCommon common;
        uint8_t answer;             // FULVA_ANSWER_*
        uint64_t version;
        uint32_t valueLength;
        uint16_t tagLength;
    } __attribute__((packed));
};

/// Client -> destination: fetch `bytes` from `source` as ECHO replies of
/// chunkBytes, `outstanding` at a time, and report how long it took
/// (fulva_admin_transfer_probe).
struct FulvaTransferProbe {
    static const Opcode opcode = FULVA_TRANSFER_PROBE;
    static const ServiceType service = MASTER_SERVICE;
    struct Request {
        RequestCommon common;
        uint64_t source;
        uint64_t bytes;
        uint32_t chunkBytes;
        uint32_t outstanding;
    } __attribute__((packed));
    struct Response {
        ResponseCommon common;
        int32_t fulvaStatus;
        uint32_t errorLength;       // message bytes following this header
        uint64_t bytes;
        uint64_t nanos;
    } __attribute__((packed));
};

} // namespace WireFormat
} // namespace RAMCloud

#endif // RAMCLOUD_FULVAWIRE_H
