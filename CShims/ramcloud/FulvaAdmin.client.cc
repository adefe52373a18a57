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

#include <cstdio>
#include <exception>

#include "ClientException.h"
#include "ObjectFinder.h"
#include "PerfStats.h"
#include "RamCloud.h"
#include "ServerId.h"
#include "fulva.h"

/*
 * CRamCloud.cc defines struct rc_client with the RamCloud pointer as its
 * first member and no virtual functions (a standard-layout class), so a
 * pointer to it is also a pointer to that member. CRamCloud.h offers no
 * accessor, and this is the one place that relies on the layout.
 */
struct rc_client;

namespace {

RAMCloud::RamCloud*
ramcloudOf(struct rc_client* client)
{
    return *reinterpret_cast<RAMCloud::RamCloud**>(client);
}

/// Writes a message into the caller's buffer, always terminated.
void
report(char* error, size_t errorLength, const char* what)
{
    if (error != NULL && errorLength > 0)
        snprintf(error, errorLength, "%s", what);
}

/**
 * Runs one administrative call and turns every exception into a status:
 * nothing may unwind into C or Swift callers.
 */
template<typename Call>
int
guarded(struct rc_client* client, char* error, size_t errorLength, Call call)
{
    if (client == NULL || ramcloudOf(client) == NULL) {
        report(error, errorLength, "no RAMCloud client");
        return FULVA_ERROR_INVALID_ARGUMENT;
    }
    try {
        call(*ramcloudOf(client));
        report(error, errorLength, "");
        return FULVA_OK;
    } catch (RAMCloud::ClientException& e) {
        report(error, errorLength, e.str().c_str());
        return static_cast<int>(e.status);
    } catch (RAMCloud::Exception& e) {
        report(error, errorLength, e.str().c_str());
        return FULVA_ERROR_UNAVAILABLE;
    } catch (std::exception& e) {
        report(error, errorLength, e.what());
        return FULVA_ERROR_INTERNAL;
    } catch (...) {
        report(error, errorLength, "unknown C++ exception");
        return FULVA_ERROR_INTERNAL;
    }
}

} // namespace

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
            struct fulva_server_counters* c = &counters[(*count)++];
            c->serverId = header->serverId;
            c->readCount = s.readCount;
            c->writeCount = s.writeCount;
            c->networkInputBytes = s.networkInputBytes;
            c->networkOutputBytes = s.networkOutputBytes;
            c->dpdkPacketsReceived = s.dpdkPacketsReceived;
            c->dpdkPacketsSent = s.dpdkPacketsSent;
        }
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
    });
}
