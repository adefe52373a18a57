/* Copyright (c) 2026 Fulva authors.
 *
 * Cluster administration entry points of fulva.h, over RAMCloud's client
 * library. Linked into libramcloud, so a program that dlopen()s the library
 * (rc-migrate, the tests, the workload driver) reaches calls that
 * CRamCloud.h does not offer, without linking any RAMCloud header.
 *
 * Every call works on the caller's existing connection (a CRamCloud.h
 * rc_client) rather than opening its own: a process may hold only one
 * DPDK driver, so a second RamCloud object in it could not reach a
 * cluster that runs over DPDK.
 */

#include <set>

#include "AbstractServerList.h"
#include "CoordinatorClient.h"
#include "ObjectFinder.h"
#include "PerfStats.h"
#include "ServerId.h"
#include "fulva/FulvaClient.h"

using RAMCloud::FulvaClient::guarded;
using RAMCloud::FulvaClient::report;

extern "C" uint32_t
fulva_abi_version(void)
{
    return FULVA_ABI_VERSION;
}

extern "C" int
fulva_admin_migrate_tablet(struct rc_client* client, uint64_t tableId,
                           uint64_t firstKeyHash, uint64_t lastKeyHash,
                           uint64_t newOwner, char* error, size_t errorLength)
{
    if (firstKeyHash > lastKeyHash) {
        report(error, errorLength, "first key hash above the last one");
        return FULVA_ERROR_INVALID_ARGUMENT;
    }
    return guarded(client, error, errorLength,
                   [&](RAMCloud::RamCloud& ramcloud) {
        ramcloud.migrateTablet(tableId, firstKeyHash, lastKeyHash,
                               RAMCloud::ServerId(newOwner));
        return FULVA_OK;
    });
}

extern "C" int
fulva_admin_split_tablet(struct rc_client* client, const char* table,
                         uint64_t splitKeyHash, char* error,
                         size_t errorLength)
{
    if (table == NULL) {
        report(error, errorLength, "no table name");
        return FULVA_ERROR_INVALID_ARGUMENT;
    }
    return guarded(client, error, errorLength,
                   [&](RAMCloud::RamCloud& ramcloud) {
        ramcloud.splitTablet(table, splitKeyHash);
        return FULVA_OK;
    });
}

namespace {

/// The masters the coordinator's server list says are up.
std::set<uint64_t>
liveMasters(RAMCloud::RamCloud& ramcloud)
{
    RAMCloud::ProtoBuf::ServerList masterList;
    RAMCloud::CoordinatorClient::getMasterList(ramcloud.clientContext,
                                               &masterList);
    std::set<uint64_t> masters;
    for (int i = 0; i < masterList.server_size(); i++) {
        if (masterList.server(i).status() ==
                static_cast<uint32_t>(RAMCloud::ServerStatus::UP))
            masters.insert(masterList.server(i).server_id());
    }
    return masters;
}

} // namespace

extern "C" int
fulva_admin_live_masters(struct rc_client* client, uint64_t* serverIds,
                         size_t capacity, size_t* count, char* error,
                         size_t errorLength)
{
    if (serverIds == NULL || count == NULL) {
        report(error, errorLength, "no output buffer");
        return FULVA_ERROR_INVALID_ARGUMENT;
    }
    *count = 0;
    return guarded(client, error, errorLength,
                   [&](RAMCloud::RamCloud& ramcloud) {
        for (uint64_t id : liveMasters(ramcloud)) {
            if (*count == capacity)
                break;
            serverIds[(*count)++] = id;
        }
        return FULVA_OK;
    });
}

extern "C" int
fulva_admin_server_counters(struct rc_client* client,
                            struct fulva_server_counters* counters,
                            size_t capacity, size_t* count, char* error,
                            size_t errorLength)
{
    if (counters == NULL || count == NULL) {
        report(error, errorLength, "no output buffer");
        return FULVA_ERROR_INVALID_ARGUMENT;
    }
    *count = 0;
    return guarded(client, error, errorLength,
                   [&](RAMCloud::RamCloud& ramcloud) {
        // The coordinator forwards the request to every server it knows and
        // concatenates the replies, each a ServerControl response header
        // (with the server's id) followed by that server's PerfStats.
        RAMCloud::Buffer replies;
        ramcloud.serverControlAll(RAMCloud::WireFormat::GET_PERF_STATS, NULL,
                                  0, &replies);
        // Masters only: a backup-only server answers too, but it holds no
        // tablet, and no migration can move one to it.
        std::set<uint64_t> masters = liveMasters(ramcloud);
        uint32_t offset = static_cast<uint32_t>(
                sizeof(RAMCloud::WireFormat::ServerControlAll::Response));
        while (offset < replies.size() && *count < capacity) {
            const RAMCloud::WireFormat::ServerControl::Response* header =
                    replies.getOffset<
                    RAMCloud::WireFormat::ServerControl::Response>(offset);
            if (header == NULL) {
                break;
            }
            offset += static_cast<uint32_t>(sizeof(*header));
            if (header->common.status != RAMCloud::STATUS_OK ||
                    header->outputLength < sizeof(RAMCloud::PerfStats) ||
                    offset + header->outputLength > replies.size()) {
                offset += header->outputLength;
                continue;
            }
            RAMCloud::PerfStats s;
            replies.copy(offset, static_cast<uint32_t>(sizeof(s)), &s);
            offset += header->outputLength;
            if (masters.count(header->serverId) == 0)
                continue;
            struct fulva_server_counters* c = &counters[(*count)++];
            c->serverId = header->serverId;
            c->readCount = s.readCount;
            c->writeCount = s.writeCount;
            c->networkInputBytes = s.networkInputBytes;
            c->networkOutputBytes = s.networkOutputBytes;
            c->dpdkPacketsReceived = s.dpdkPacketsReceived;
            c->dpdkPacketsSent = s.dpdkPacketsSent;
            c->priorityPulls = s.fulvaPriorityPulls;
            c->sourceReads = s.fulvaSourceReads;
        }
        return FULVA_OK;
    });
}

extern "C" int
fulva_admin_tablet_owner(struct rc_client* client, uint64_t tableId,
                         uint64_t keyHash, uint64_t* serverId, char* error,
                         size_t errorLength)
{
    if (serverId == NULL) {
        report(error, errorLength, "no output for the server id");
        return FULVA_ERROR_INVALID_ARGUMENT;
    }
    return guarded(client, error, errorLength,
                   [&](RAMCloud::RamCloud& ramcloud) {
        // Refresh first: the map cached in this client may predate a
        // migration or split made by another client.
        RAMCloud::ObjectFinder* finder =
                ramcloud.clientContext->objectFinder;
        finder->flush(tableId);
        *serverId = finder->lookupTablet(tableId, keyHash)->tablet.serverId
                .getId();
        return FULVA_OK;
    });
}
